"""The README's first command: the whole path on the embedded default, end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = subprocess.run([sys.executable, "-m", "polychrony_cli", "demo", "--json",
                          "-o", str(tmp_path / "demo")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout)
    assert s["f1_float"] == 1.0 and s["f1_int"] == 1.0
    for simulator in ("icarus", "verilator"):
        c = s["cosim"][simulator]
        assert c["mismatches"] == 0 and c["steps"] == s["reference"]["steps"] > 0
    h = s["host_link"]          # the recall through the UART protocol on the simulated board
    assert h["bit_exact"] and h["steps"] == s["reference"]["steps"] and h["bytes_in"] > 0
    assert h["trials"] == s["reference"]["trials"] == s["settings"]["m"]
    assert h["f1"] == s["reference"]["f1"] == s["f1_int"]
    assert Path(s["ir"]["workload"]).exists()
    assert Path(s["bitstream"]).stat().st_size > 0
    assert s["timing_met"] and s["fmax_mhz"] >= s["constraint_mhz"] > 12.0
    assert s["utilisation"]["logic"]["used"] > 0
    assert s["ok"] is True
    # Progress went to stderr, one line per stage.
    assert "[7/7]" in out.stderr
