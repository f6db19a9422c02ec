"""NIR (Neuromorphic Intermediate Representation) in and out of polychrony's integer IR.

* :func:`to_nir` / :func:`write_nir`: an IR network as a NIR graph a float NIR reader can run,
  with what NIR cannot say (widths, saturation, floor leak, subtract reset, forced layers,
  read-out rule) in ``metadata["polychrony"]``, so that :func:`from_nir` gives the same IR
  back byte for byte;
* :func:`from_nir` / :func:`read_nir`: any float NIR graph of LIF/IF/LI/I neurons joined by
  Linear, Affine, Scale, Conv1d, Flatten and Delay nodes, quantised into the IR with a report
  of every approximation (:class:`ImportReport`).

The conversion rules are in ``docs/nir.md``. numpy, h5py and ``nir`` only (no torch, except to
size membranes on calibration data).
"""

from .convention import DT, NIRError
from .export import summary, to_nir, write_nir
from .graph import read_graph
from .importer import ImportReport, from_nir, read_nir

__all__ = ["DT", "NIRError", "to_nir", "write_nir", "summary", "read_graph", "from_nir",
           "read_nir", "ImportReport"]
