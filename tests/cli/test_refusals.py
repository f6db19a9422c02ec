"""A new user's mistakes: each gets one clear error and a non-zero exit, never a traceback.

Numeric flags are checked when the command line is parsed (argparse prints the usage and one
``error:`` line naming the flag and its limit); files are checked when they are read."""

from __future__ import annotations

import numpy as np
import pytest

from polychrony_cli import main
from tests import ROOT

DELREC = str(ROOT / "bench/networks/delrec.npz")


def _refused(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].count("error:") == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "wm", "--n", "0"], "argument --n: must be at least 1, got 0"),
    (["train", "wm", "--d", "0"], "argument --d: must be at least 1, got 0"),
    (["train", "wm", "--n", "-5"], "argument --n: must be at least 1, got -5"),
    (["train", "wm", "--m", "0"], "argument --m: must be at least 1"),
    (["train", "wm", "--w-bits", "1"], "argument --w-bits: must be at least 2, got 1"),
    (["train", "wm", "--p", "0"], "argument --p: must be above 0.0"),
    (["train", "wm", "--p", "nan"], "argument --p: expected a finite number, got nan"),
    (["train", "wm", "--train-steps", "-1"], "argument --train-steps: must be at least 0"),
    (["train", "wm", "--beta", "300"], "argument --beta: must be at most 256"),
    (["train", "shd", "--epochs", "-1"], "argument --epochs: must be at least 1, got -1"),
    (["train", "shd", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["train", "shd", "--hidden", "x"], "argument --hidden: expected an integer, got 'x'"),
    (["data", "baseline", "--time-bins", "0"], "argument --time-bins: must be at least 1"),
    (["data", "frames", "default-test", "-o", "x.npy", "--window", "0"],
     "argument --window: must be at least 1"),
])
def test_numeric_flags_are_checked_at_parse_time(capsys, argv, message):
    _refused(capsys, argv, message)


def test_missing_training_data_is_one_line(tmp_path, capsys):
    assert main(["train", "shd", "--data", str(tmp_path / "nowhere"), "-o",
                 str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and err.count("\n") == 1 and "Traceback" not in err
    (tmp_path / "my_train.h5").write_bytes(b"")
    assert main(["train", "shd", "--data", str(tmp_path / "my_train.h5"), "-o",
                 str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "t.npz").exists()


def test_a_plain_npy_is_not_a_vector_bundle(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 4)))
    assert main(["estimate", DELREC, "--board", "ulx3s-85f", "--core", "network", "--lanes",
                 "16", "--vectors", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "a single .npy array, not a vector bundle" in err and "--inputs" in err


@pytest.mark.parametrize("shape", [(1, 0, 140), (0, 5, 140), (0, 140)])
def test_inputs_without_steps_or_samples_are_refused(tmp_path, capsys, shape):
    np.save(tmp_path / "z.npy", np.zeros(shape, np.int64))
    assert main(["cosim", DELREC, "--inputs", str(tmp_path / "z.npy"), "--work",
                 str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "at least one sample of at least one step" in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()


def test_a_projection_from_an_empty_input_builds(tmp_path, capsys):
    """A valid IR whose input layer has no channels but a projection leaving it: the
    projection has no synapse, so the hardware builds without it, bit-exact."""
    from model.ir import InputLayer, LIFLayer, Network, Projection, save
    net = Network(layers=[InputLayer(n=0),
                          LIFLayer(n=4, v_bits=8, acc_bits=8, beta=1, beta_shift=1, threshold=3,
                                   bias=np.array([1, 2, 0, 1]), name="a")],
                  projections=[Projection("dense", 0, 1, 4, np.zeros((4, 0), int),
                                          np.int64(0))], max_delay=0)
    path = str(save(net, tmp_path / "n0.npz"))
    assert main(["generate", path, "-o", str(tmp_path / "v")]) == 0
    assert main(["cosim", path, "--steps", "30", "--work", str(tmp_path / "w"), "--json"]) == 0
    assert '"mismatches": 0' in capsys.readouterr().out


def test_misleading_messages_are_now_clear(tmp_path, capsys):
    wm = tmp_path / "wm.npz"
    assert main(["train", "wm", "-o", str(wm)]) == 0
    capsys.readouterr()
    # a WAV (or anything not .npy) given as input frames
    (tmp_path / "a.npy").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    assert main(["cosim", str(wm), "--inputs", str(tmp_path / "a.npy")]) == 2
    assert "a WAV file, but inputs must be a .npy array" in capsys.readouterr().err
    # the wrong core: named by its flag, and the way out
    assert main(["generate", str(wm), "--core", "lean", "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "lean core: layer 1" in err and "network core builds it" in err
    assert "rtl.core" not in err and "stack core" not in err
    # a window shorter than a sample: the flag that exists
    assert main(["data", "frames", "default-test", "-o", str(tmp_path / "f.npy"),
                 "--window", "5"]) == 2
    err = capsys.readouterr().err
    assert "pass --truncate" in err and "truncate=True" not in err
    assert main(["data", "frames", "default-test", "-o", str(tmp_path / "f.npy"),
                 "--window", "5", "--truncate", "--count", "2"]) == 0
    assert np.load(tmp_path / "f.npy").shape == (2, 5, 140)


@pytest.mark.parametrize("argv, message", [
    (["run", DELREC, "--port", "/dev/null", "--timeout", "-1"],
     "argument --timeout: must be above 0.0, got -1"),
    (["cosim", DELREC, "--lanes", "0"], "argument --lanes: must be at least 1, got 0"),
    (["build", DELREC, "--board", "icebreaker", "--tries", "0"], "argument --tries"),
    (["fuzz", "--count", "-3"], "argument --count: must be at least 1"),
])
def test_more_flags_checked_at_parse_time(capsys, argv, message):
    _refused(capsys, argv, message)


def test_make_safe_keeps_plain_paths_and_moves_odd_ones(tmp_path, capsys):
    from polychrony_cli.common import make_safe
    plain = make_safe(tmp_path / "plain")
    assert plain == tmp_path / "plain" and plain.is_dir()
    odd = make_safe(tmp_path / "with space" / "w#1")
    assert " " not in str(odd) and "#" not in str(odd) and odd.is_dir()
    assert make_safe(tmp_path / "with space" / "w#1") == odd  # the same place each time
    assert "make cannot build in" in capsys.readouterr().err


@pytest.mark.slow
def test_verilator_in_a_directory_with_a_space(tmp_path, capsys, monkeypatch):
    """GNU make refuses paths with spaces: cosim --sim verilator and run --simulate still
    work from such a directory (they build elsewhere and say where)."""
    odd = tmp_path / "my work"
    odd.mkdir()
    monkeypatch.chdir(odd)
    wm = odd / "wm.npz"
    assert main(["train", "wm", "-o", str(wm)]) == 0
    assert main(["cosim", str(wm), "--sim", "verilator", "--work", str(odd / "cosim"),
                 "--json"]) == 0
    out = capsys.readouterr()
    assert '"mismatches": 0' in out.out and "make cannot build in" in out.err
    assert main(["run", str(wm), "--simulate"]) == 0
    assert "equal to the reference's" in capsys.readouterr().out


def test_the_default_board_is_said(tmp_path, capsys):
    wm = tmp_path / "wm.npz"
    assert main(["train", "wm", "-o", str(wm)]) == 0
    capsys.readouterr()
    assert main(["estimate", str(wm), "--core", "network", "--lanes", "2", "--json"]) == 0
    out = capsys.readouterr()
    assert "no --board given: icebreaker (iCE40UP5K)" in out.err
    assert '"icebreaker"' in out.out
    assert main(["estimate", str(wm), "--board", "ulx3s-85f", "--core", "network", "--lanes",
                 "2", "--json"]) == 0
    assert "no --board given" not in capsys.readouterr().err


def test_demo_port_needs_the_build(capsys):
    assert main(["demo", "--port", "/dev/ttyUSB9", "--no-build"]) == 2
    assert "--port loads the bitstream this demo builds" in capsys.readouterr().err


@pytest.mark.slow
def test_a_missing_perl_is_one_line(tmp_path):
    """Verilator's front end is a perl script: without perl on PATH the simulated board cannot
    be built, and the user reads why in one line, not a traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    from model.ir import InputLayer, LIFLayer, Network, Projection, save
    fake = tmp_path / "bin"
    fake.mkdir()
    for d in (Path(sys.executable).parent, Path("/usr/local/bin"), Path("/usr/bin"),
              Path("/bin")):
        for exe in d.glob("*") if d.is_dir() else ():
            if not exe.name.startswith("perl") and not (fake / exe.name).exists():
                (fake / exe.name).symlink_to(exe.resolve() if exe.is_symlink() else exe)
    net = save(Network(layers=[InputLayer(n=2),
                               LIFLayer(n=2, v_bits=8, acc_bits=8, beta=1, beta_shift=1,
                                        threshold=3, name="h")],
                       projections=[Projection("dense", 0, 1, 4, np.eye(2, dtype=int) * 3,
                                               np.int64(0))], max_delay=0),
               tmp_path / "n.npz")
    np.save(tmp_path / "x.npy", np.ones((1, 5, 2), np.int64))
    out = subprocess.run([sys.executable, "-m", "polychrony_cli", "run", str(net),
                          "--simulate", "--inputs", str(tmp_path / "x.npy"), "--work",
                          str(tmp_path / "w")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PATH=str(fake)))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    err = [line for line in out.stderr.splitlines() if line.startswith("polychrony: error:")]
    assert len(err) == 1 and "simulated board build failed" in err[0]
    assert "perl" in out.stderr
