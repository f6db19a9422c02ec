"""Package boundaries: sim, rtl and boards run without PyTorch."""

import subprocess
import sys


def test_sim_rtl_boards_do_not_import_torch():
    code = ("import sys\n"
            "import model, model.ir, sim, rtl, boards\n"
            "import sim.reference, sim.literal, sim.randnet, sim.vectors, sim.cosim\n"
            "import rtl.core, rtl.export, rtl.pysim, boards.build, boards.icebreaker\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_check_above_can_fail():
    """Guard against a vacuous check: importing the trainer does pull torch in."""
    code = "import sys, model.wm; assert 'torch' in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
