"""Package boundaries: sim, rtl and boards run without PyTorch."""

import subprocess
import sys


def _python_prints_ok(code: str) -> None:
    """Run ``code`` in a fresh interpreter and require that it printed ``ok``."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_sim_rtl_boards_do_not_import_torch():
    code = ("import sys\n"
            "import model, model.ir, sim, rtl, boards\n"
            "import sim.reference, sim.literal, sim.randnet, sim.vectors, sim.cosim\n"
            "import rtl.core, rtl.export, rtl.pysim, boards.build, boards.icebreaker\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    _python_prints_ok(code)


def test_the_check_above_can_fail():
    """Guard against a vacuous check: importing the trainer does pull torch in."""
    _python_prints_ok("import sys, model.wm; assert 'torch' in sys.modules; print('ok')")


def test_rtl_and_boards_do_not_import_sim_and_sim_does_not_import_amaranth():
    code = ("import sys\n"
            "import rtl.core, rtl.pysim, rtl.export, rtl.cost, boards.build, boards.icebreaker\n"
            "import boards.ulx3s, boards.catalog\n"
            "bad = sorted(m for m in sys.modules if m == 'sim' or m.startswith('sim.'))\n"
            "assert not bad, bad\n"
            "for m in [m for m in sys.modules if m.split('.')[0] in ('rtl', 'boards', 'amaranth',\n"
            "                                                       'amaranth_boards')]:\n"
            "    del sys.modules[m]\n"
            "import sim.reference, sim.literal, sim.randnet, sim.vectors, sim.units, sim.cosim\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('amaranth', 'rtl'))\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    _python_prints_ok(code)
