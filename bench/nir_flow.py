"""The bench networks through NIR and back, then through the Verilog (run on demand).

    python -m bench.nir_flow [--networks wm-demo wm-128 ...] [--samples 2] [--lanes 16]
                             [--sim verilator]

For each network: ``polychrony export`` -> ``polychrony import`` (byte-identical IR required),
then ``polychrony cosim`` of the imported file on its workload (the first ``--samples``
samples or recall trials) on each simulator, bit-exact with the reference at every step. The
imported IR has the original's digest, so its bitstreams are the board table's
(``bench/results/boards_auto.md``); the e2e test builds one for the iCEBreaker.

Results: ``bench/results/nir_flow.json`` (seconds per stage, file sizes, cosim results).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("wm-demo", "delrec", "convdelrec", "convdelrec-w4", "wm-128", "wm-144")
_FILES = {"delrec": "delrec", "convdelrec": "convdelrec_k31", "convdelrec-w4": "convdelrec_k31_w4"}


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def _source(name: str, tmp: Path) -> Path:
    """The IR file of a bench network, with its workload beside it."""
    from model.ir import save, save_workload, workload_path
    if name in _FILES:
        src = ROOT / f"bench/networks/{_FILES[name]}.npz"
        shutil.copy(src, tmp / f"{name}.npz")
        shutil.copy(workload_path(src), workload_path(tmp / f"{name}.npz"))
        return tmp / f"{name}.npz"
    from model.wm.run import run_wm
    wm = run_wm(seed=0) if name == "wm-demo" else \
        run_wm(n=int(name[3:]), d=41, m=8, t=281, p=2e-3, w_bits=4, seed=0)
    path = save(wm["net"], tmp / f"{name}.npz")
    save_workload(wm["workload"], workload_path(path))
    return path


def run(name: str, tmp: Path, samples: int, sims: list[str], lanes: int) -> dict:
    from model.ir import workload_path
    rec: dict = {"network": name}
    src = _source(name, tmp)
    t = time.monotonic()
    out = _cli("export", src, "-o", tmp / f"{name}.nir", "--json")
    if out.returncode:
        return {**rec, "error": out.stderr.strip()}
    rec["export"] = {**json.loads(out.stdout), "seconds": round(time.monotonic() - t, 2)}
    t = time.monotonic()
    back = tmp / f"{name}.back.npz"
    out = _cli("import", tmp / f"{name}.nir", "-o", back)
    if out.returncode:
        return {**rec, "error": out.stderr.strip()}
    rec["import_seconds"] = round(time.monotonic() - t, 2)
    rec["byte_identical"] = back.read_bytes() == src.read_bytes()
    shutil.copy(workload_path(src), workload_path(back))  # same digest: the same workload
    t = time.monotonic()
    args = ["cosim", back, "--count", samples, "--lanes", lanes, "--json", "--work",
            tmp / f"{name}.cosim"]
    for s in sims:
        args += ["--sim", s]
    out = _cli(*args)
    rec["cosim_seconds"] = round(time.monotonic() - t, 1)
    if out.returncode:
        rec["cosim_error"] = out.stderr.strip()[-600:]
    else:
        rec["cosim"] = json.loads(out.stdout)
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--lanes", type=int, default=16, help="lanes of the co-simulated core")
    ap.add_argument("--sim", action="append", default=None, choices=("icarus", "verilator"))
    ap.add_argument("-o", "--output", default=str(ROOT / "bench/results/nir_flow.json"))
    args = ap.parse_args(argv)
    sims = args.sim or ["icarus", "verilator"]
    records = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.networks:
            print(f"{name} ...", flush=True)
            rec = run(name, Path(d), args.samples, sims, args.lanes)
            records.append(rec)
            ok = rec.get("byte_identical") and "cosim" in rec and all(
                r["mismatches"] == 0 and r["ok"] for runs in rec["cosim"].values() for r in runs)
            print(f"  byte-identical {rec.get('byte_identical')}, cosim "
                  f"{'bit-exact' if ok else rec.get('cosim_error') or rec.get('error')} "
                  f"({rec.get('cosim_seconds')} s)", flush=True)
            Path(args.output).write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
