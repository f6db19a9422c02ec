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
    (["train", "wm", "--p", "nan"], "argument --p: expected a number, got NaN"),
    (["train", "wm", "--train-steps", "-1"], "argument --train-steps: must be at least 0"),
    (["train", "wm", "--beta", "300"], "argument --beta: must be at most 256"),
    (["train", "shd", "--epochs", "-1"], "argument --epochs: must be at least 1, got -1"),
    (["train", "shd", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["train", "shd", "--hidden", "x"], "argument --hidden: expected an integer, got 'x'"),
    (["data", "baseline", "--time-bins", "0"], "argument --time-bins: must be at least 1"),
    (["data", "frames", "default-test", "-o", "x.npy", "--steps", "0"],
     "argument --steps: must be at least 1"),
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
