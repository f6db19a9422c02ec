"""QuantNet IR: the integer description of a network, its file format, its design rules and
the types of what a run of it produces.

Everything here is an integer. The semantics are in ``docs/semantics.md``; the file format is
in ``docs/ir.md``. This package imports numpy only (no torch), so that ``sim``, ``rtl`` and
``boards`` can use it on a machine without PyTorch.

A network is an ordered tuple of layers (layer 0 is the :class:`InputLayer`, the rest are
:class:`LIFLayer`) and a tuple of :class:`Projection` objects that feed a layer either from the
layer before it (feed-forward, delay >= 0) or from itself (recurrent, delay >= 1).

Modules: :mod:`.layers` (limits, :class:`IRError`, layer and projection records),
:mod:`.network` (:class:`Network`), :mod:`.rules` (design rules and :func:`check`),
:mod:`.canonical` (canonical header and content digest), :mod:`.fileformat` (:func:`save`,
:func:`load`), :mod:`.trace` (:class:`Trace`, :class:`Mismatch`, :func:`prediction`,
:func:`validate_inputs`), :mod:`.widths`, :mod:`.workload` (the stimulus that represents a
network's job, in a file beside its IR) and :mod:`.archive` (the container both files share).
"""

from .canonical import FORMAT, VERSION, digest
from .fileformat import load, save
from .layers import MAX_BETA_SHIFT, MAX_BITS, MAX_DELAY, MAX_IN_BITS, InputLayer, IRError, LIFLayer, Projection
from .network import Network
from .rules import RULES, check, current_bounds
from .trace import Mismatch, Trace, prediction, validate_inputs
from .widths import index_bits, signed_bits
from .workload import Workload, find_workload, load_workload, save_workload, workload_path

__all__ = [
    "FORMAT", "VERSION", "MAX_BITS", "MAX_IN_BITS", "MAX_BETA_SHIFT", "MAX_DELAY", "IRError",
    "InputLayer", "LIFLayer", "Projection", "Network", "RULES", "check", "save", "load",
    "digest", "current_bounds", "Trace", "Mismatch", "prediction", "validate_inputs",
    "signed_bits", "index_bits", "Workload", "workload_path", "save_workload", "load_workload",
    "find_workload",
]
