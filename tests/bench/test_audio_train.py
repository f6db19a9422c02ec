"""``bench.audio_train``: runs trained in parallel processes give the same rows as one after
the other in one process (a seed fixes everything, the validation split included), and
recorded runs are not trained again."""

import json

import pytest

pytest.importorskip("torch")

from bench.audio_train import main  # noqa: E402

TINY = ["--archs", "dense", "conv", "--seeds", "0", "1", "--hidden", "12", "--kernel", "3",
        "--epochs", "1", "--qat-epochs", "1", "--limit", "96", "--batch", "32"]
KEYS = ("float_acc", "int_acc", "val_acc", "params", "digest")


def _rows(path):
    runs = json.loads(path.read_text())["runs"]
    return {(r["settings"]["arch"], r["settings"]["seed"]): r for r in runs}


def test_jobs_2_equals_jobs_1_and_skips_recorded_runs(tmp_path, capsys):
    main(TINY + ["--out", str(tmp_path / "a"), "--json", str(tmp_path / "a.json")])
    main(TINY + ["--jobs", "2", "--out", str(tmp_path / "b"), "--json",
                 str(tmp_path / "b.json")])
    one, two = _rows(tmp_path / "a.json"), _rows(tmp_path / "b.json")
    assert sorted(one) == sorted(two) == [("conv", 0), ("conv", 1), ("dense", 0), ("dense", 1)]
    for run in one:
        assert one[run]["settings"] == two[run]["settings"]
        assert one[run]["settings"]["limit"] == 96
        for k in KEYS:
            assert one[run][k] == two[run][k], (run, k)
    capsys.readouterr()
    main(TINY + ["--jobs", "2", "--out", str(tmp_path / "b"), "--json",
                 str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    assert out.count("already in") == 4
    assert len(json.loads((tmp_path / "b.json").read_text())["runs"]) == 4


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["--jobs", "0"])
    assert "--jobs must be >= 1" in capsys.readouterr().err
