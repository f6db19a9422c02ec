"""Export a network core as Verilog plus a JSON manifest that describes its ports bit by bit."""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data

from model.ir import Network
from .core import NetworkCore, Fault
from .interface import step_in_layout, step_out_layout

__all__ = ["generate", "layout_fields", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1


def layout_fields(layout: data.StructLayout) -> dict[str, dict]:
    """Each field's bit offset, width and signedness inside the flattened payload vector."""
    out = {}
    for name, f in layout:
        shape = Shape.cast(f.shape)
        out[name] = {"offset": f.offset, "width": shape.width, "signed": shape.signed}
    return out


def generate(net: Network, out_dir: str | Path, *, name: str = "polychrony_core",
             fault: Fault = None) -> dict:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; return the manifest.

    The Verilog carries no source locations, so the same IR gives byte-identical files on any
    machine. The manifest names the top module, the ports (Amaranth flattens ``i.payload`` to
    ``i__payload``), the payload fields and the IR digest.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    core = NetworkCore(net, fault=fault)
    text = verilog.convert(core, name=name, emit_src=False)
    v_path = out / f"{name}.v"
    v_path.write_text(text)
    layer = net.layers[1]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "top": name,
        "verilog": v_path.name,
        "ir_digest": net.digest,
        "fault": fault,
        "clock": "clk", "reset": "rst", "reset_active_high": True,
        "n": core.n, "forced_layer": 1 if layer.forced else None,
        "in": {"payload": "i__payload", "valid": "i__valid", "ready": "i__ready",
               "fields": layout_fields(step_in_layout(net))},
        "out": {"payload": "o__payload", "valid": "o__valid", "ready": "o__ready",
                "fields": layout_fields(step_out_layout(net))},
        "memory_bits": core.memory_bits,
    }
    (out / f"{name}.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
