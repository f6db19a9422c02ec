"""Export a network core as Verilog plus a JSON manifest that describes its ports bit by bit."""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data

from model.ir import Network
from .core import Fault
from .cores import core as core_named
from .loaded import LOADED_RAM_MODULE
from .interface import step_in_layout, step_out_layout

__all__ = ["generate", "layout_fields", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1


def layout_fields(layout: data.StructLayout) -> dict[str, dict]:
    """Each field's bit offset, element width, signedness and element count inside the
    flattened payload vector (element k of an array field starts at ``offset + k * width``)."""
    out = {}
    for name, f in layout:
        if isinstance(f.shape, data.ArrayLayout):
            elem = Shape.cast(f.shape.elem_shape)
            out[name] = {"offset": f.offset, "width": elem.width, "signed": elem.signed,
                         "count": f.shape.length}
        else:
            shape = Shape.cast(f.shape)
            out[name] = {"offset": f.offset, "width": shape.width, "signed": shape.signed,
                         "count": 1}
    return out


def generate(net: Network, out_dir: str | Path, *, name: str = "polychrony_core",
             lanes: int = 1, fault: Fault = None, family: str | None = None,
             memories: dict[str, str] | None = None, spram_cells: bool | None = None,
             core: str = "network", observe=None, rows=None) -> dict:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; return the manifest.

    The Verilog carries no source locations, so the same IR gives byte-identical files on any
    machine. The manifest names the top module, the ports (Amaranth flattens ``i.payload`` to
    ``i__payload``), the payload fields and the IR digest. When weight arrays are in SPRAM
    or ``loaded`` (``memories``, ``family``, or automatically for weight arrays too large to
    emit initialised, see :func:`rtl.memplan.memory_kinds`), it also names the ``wl`` load stream
    and writes the words to load after reset into ``<name>_load.hex`` (one hex word per line,
    in order). ``loaded`` arrays are instances of :data:`~rtl.loaded.LOADED_RAM_MODULE`,
    whose Verilog (a RAM without initial contents) follows the core's in ``<name>.v``.
    ``spram_cells`` builds those arrays from ``SB_SPRAM256KA`` primitives, as on the device;
    the manifest then lists ``cell_models: ["ice40"]`` (Yosys's simulation models, which
    :func:`sim.cosim.run_cosim` adds to the sources).

    ``core`` names a core of :data:`rtl.cores.CORES`; a knob the core does not take raises
    ``ValueError``. ``observe`` (cores that take it) lists the layers whose records the core
    sends; the manifest names them, and the co-simulation then compares those layers (every
    neuron, every step). ``rows`` is the stack core's rows per cycle.
    """
    spec = core_named(core)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    knobs = spec.check_knobs(dict(fault=fault, memories=memories or None,
                                  spram_cells=spram_cells or None,
                                  observe=observe, rows=rows))
    if "loaded_cells" in spec.knobs:
        knobs["loaded_cells"] = True      # loaded arrays as LOADED_RAM_MODULE instances
    core = spec.build(net, lanes=lanes, family=family, **knobs)
    text = verilog.convert(core, name=name, emit_src=False)
    if "loaded" in core.kinds.values():
        text += "\n" + LOADED_RAM_MODULE
    v_path = out / f"{name}.v"
    v_path.write_text(text)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "top": name,
        "core": spec.name,
        "verilog": v_path.name,
        "ir_digest": net.digest,
        "fault": fault,
        "clock": "clk", "reset": "rst", "reset_active_high": True,
        "lanes": lanes,
        "layers": [{"n": l.n, "spiking": bool(getattr(l, "spiking", False))}
                   for l in net.layers],
        "forced_layers": net.forced_layers,
        "in": {"payload": "i__payload", "valid": "i__valid", "ready": "i__ready",
               "fields": layout_fields(step_in_layout(net))},
        "out": {"payload": "o__payload", "valid": "o__valid", "ready": "o__ready",
                "fields": layout_fields(step_out_layout(net, lanes))},
        "memory_bits": core.memory_bits,
        **({"observe": list(core.observe)} if "observe" in spec.knobs else {}),
        "memory_kinds": core.kinds,
    }
    width = core.load_width
    if width:
        image = core.load_image()
        hex_path = out / f"{name}_load.hex"
        digits = (width + 3) // 4
        hex_path.write_text("".join(f"{w:0{digits}x}\n" for w in image))
        if spram_cells:
            manifest["cell_models"] = ["ice40"]
        manifest["load"] = {"payload": "wl__payload", "valid": "wl__valid",
                            "ready": "wl__ready", "width": width, "words": len(image),
                            "image": hex_path.name}
    (out / f"{name}.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
