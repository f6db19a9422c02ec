"""Fingerprints of the generated Verilog: the same IR and knobs must give the same bytes.

A restructuring of the generators must not change the hardware they write unless it means to.
This bench generates the Verilog of a fixed set of networks (the demo working memory, the
trained audio networks of ``bench/networks/``, a working memory of N = 128, and random networks
of every profile) for every core and knob set that applies, plus the simulated board's host-link
top, and records a SHA-256 of each file::

    python -m bench.verilog_identity --write bench/results/verilog_identity.json   # record
    python -m bench.verilog_identity --check bench/results/verilog_identity.json   # compare

``--check`` prints every case whose Verilog (or whose IR, or whose support verdict) differs
from the record and exits 1 if any does. ``--quick`` limits the run to the demo network and
five random networks (the sample the test suite uses).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

NETWORKS_DIR = Path(__file__).resolve().parent / "networks"

#: (core, knobs) pairs tried on every network; a pair the core refuses is recorded as such.
CASES: list[tuple[str, dict]] = [
    ("network", {"lanes": 1}),
    ("network", {"lanes": 4, "family": "ice40"}),
    ("network", {"lanes": 8, "family": "ecp5"}),
    ("stack", {"lanes": 16}),
    ("lean", {"lanes": 4}),
    ("lean", {"lanes": 4, "spram_cells": True}),
]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def shipped_networks() -> list[Path]:
    """The IR files of ``bench/networks`` (not the workloads and float checkpoints beside
    them)."""
    return [p for p in sorted(NETWORKS_DIR.glob("*.npz"))
            if not p.name.endswith((".workload.npz", ".float.npz"))]


def networks(quick: bool = False):
    """(name, network) pairs, built deterministically from their seeds and files."""
    from model.ir import load
    from sim.randnet import random_network

    out = []
    from model.wm.run import run_wm
    out.append(("demo-wm", run_wm(seed=0)["net"]))
    if not quick:
        for path in shipped_networks():
            out.append((path.stem, load(path)))
        from sim.shaped import wm_network
        out.append(("wm-128", wm_network(n=128, d=41)))
    count = 5 if quick else 20
    profiles = ("full", "wm", "stack")
    for seed in range(count):
        profile = profiles[seed % len(profiles)]
        out.append((f"random-{profile}-{seed}", random_network(seed, profile=profile)))
    return out


def _core_verilog(net, core: str, knobs: dict, work: Path) -> str:
    from rtl.export import generate
    man = generate(net, work, core=core, **knobs)
    text = (work / man["verilog"]).read_text()
    if man.get("load"):
        text += "\n// load image\n" + (work / man["load"]["image"]).read_text()
    return text


def _link_verilog(net, core: str, knobs: dict) -> str:
    """The simulated board's host-link top, as ``boards.simboard.simulated_board`` builds it
    (without source locations, which name the generator's files and lines)."""
    from amaranth.back import verilog
    from rtl.link import HostLink
    from boards.simboard import SIM_DIVISOR
    from rtl.spram import RomLoader
    top = HostLink.around(net, core=core, divisor=SIM_DIVISOR, clock_hz=0, baud=0,
                          lanes=knobs["lanes"], max_steps=4096, heartbeat=False,
                          loader=RomLoader)
    return verilog.convert(top, name="board", ports=[top.rx, top.tx, top.leds], emit_src=False)


def fingerprints(quick: bool = False, log=print) -> dict[str, dict]:
    """{case name: {"ir": digest, "verilog": sha256 or None, "refused": reason or None}}."""
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks(quick):
            for core, knobs in CASES:
                key = f"{name}/{core}/" + ",".join(f"{k}={v}" for k, v in knobs.items())
                t0 = time.monotonic()
                work = Path(tmp) / key.replace("/", "_").replace(",", "_")
                rec = {"ir": net.digest, "verilog": None, "refused": None}
                try:
                    rec["verilog"] = _digest(_core_verilog(net, core, knobs, work))
                except (ValueError, NotImplementedError) as e:
                    rec["refused"] = type(e).__name__
                out[key] = rec
                log(f"{key}: {rec['verilog'] or rec['refused']} ({time.monotonic() - t0:.1f} s)")
                if rec["verilog"] and knobs.get("family") is None and not knobs.get(
                        "spram_cells") and name in ("demo-wm", "random-stack-2"):
                    lk = f"{name}/{core}/link"
                    out[lk] = {"ir": net.digest, "refused": None,
                               "verilog": _digest(_link_verilog(net, core, knobs))}
                    log(f"{lk}: {out[lk]['verilog']}")
    return out


def compare(got: dict, want: dict) -> list[str]:
    """Lines naming each case that differs; cases absent from ``got`` (a quick run) are skipped."""
    bad = []
    for key, rec in got.items():
        if key not in want:
            bad.append(f"{key}: not in the record")
        elif rec != want[key]:
            bad.append(f"{key}: recorded {want[key]}, now {rec}")
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="JSON", help="record the fingerprints here")
    g.add_argument("--check", metavar="JSON", help="compare against this record")
    p.add_argument("--quick", action="store_true", help="demo + 5 random networks only")
    args = p.parse_args(argv)
    got = fingerprints(args.quick, log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.write:
        Path(args.write).write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"{len(got)} cases written to {args.write}")
        return 0
    bad = compare(got, json.loads(Path(args.check).read_text()))
    for line in bad:
        print(line)
    print(f"{len(got)} cases, {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
