"""The generators write the same Verilog bytes as recorded (``bench/results/verilog_identity.json``).

CI runs the quick sample (the demo network and five random networks, every core and knob set
that applies, plus their host-link tops); ``python -m bench.verilog_identity --check
bench/results/verilog_identity.json`` runs all of it. A change meant to alter the logic
re-records the file and says so in its commit.
"""

import json
import subprocess
import sys

from bench.verilog_identity import shipped_networks
from tests import ROOT

RECORD = ROOT / "bench" / "results" / "verilog_identity.json"


def test_quick_sample_matches_the_record():
    out = subprocess.run([sys.executable, "-m", "bench.verilog_identity", "--quick", "--check",
                          str(RECORD)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert out.stdout.strip().endswith("40 cases, 0 differ"), out.stdout


def test_the_record_covers_every_core():
    record = json.loads(RECORD.read_text())
    built = {key.split("/")[1] for key, rec in record.items() if rec["verilog"]}
    assert built == {"network", "stack", "lean"}


def test_the_record_covers_every_shipped_network():
    """Every IR in bench/networks has its cases in the record; its workload and float
    checkpoint beside it are not networks (the full run skips them)."""
    record = json.loads(RECORD.read_text())
    names = {key.split("/")[0] for key in record}
    shipped = shipped_networks()
    assert len(shipped) >= 4
    assert {p.stem for p in shipped} <= names
    assert not any(n.endswith((".workload", ".float")) for n in names)
