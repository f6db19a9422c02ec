"""Plots of the audio networks: the confusion counts are right and the files are written."""

import numpy as np
import pytest

from model.audio.plots import confusion, plot_ablation, plot_confusion, plot_training


def test_confusion_counts_rows_true_columns_predicted():
    m = confusion([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert m.sum() == 6 and np.trace(m) == 4


def test_confusion_rejects_labels_out_of_range_and_shape_mismatch():
    with pytest.raises(ValueError, match="y_pred must lie in 0..1"):
        confusion([0, 1], [0, 2], 2)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion([0, 1], [0], 2)


def test_plots_are_written_and_deterministic(tmp_path):
    hist = [{"phase": "float", "epoch": e, "train_loss": 2.0 / (e + 1), "val_acc": 0.1 * e}
            for e in range(4)] + [{"phase": "quant", "epoch": -1, "val_acc": 0.3},
                                  {"phase": "quant", "epoch": 0, "train_loss": 0.4,
                                   "val_acc": 0.35}]
    a = plot_training({"dense": hist, "conv": hist[:2]}, out=tmp_path / "a.png")
    b = plot_training({"dense": hist, "conv": hist[:2]}, out=tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 1000
    c = plot_confusion([0, 1, 1], [0, 1, 0], ["zero", "one"], out=tmp_path / "c.png")
    assert c.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ablation_plot_is_deterministic_and_refuses_tables_it_cannot_draw(tmp_path):
    rows = {"none (all on)": [86.0, 86.4, 84.3], "warp": [89.0, 85.2, 86.4], "gain": [80.5]}
    a = plot_ablation([("first", rows), ("second", dict(rows, noise=[91.2]))],
                      out=tmp_path / "a.png")
    b = plot_ablation([("first", rows), ("second", dict(rows, noise=[91.2]))],
                      out=tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 1000
    with pytest.raises(ValueError, match="panel 'x' has no row 'none \\(all on\\)'"):
        plot_ablation([("x", {"warp": [1.0]})], out=tmp_path / "c.png")
    with pytest.raises(ValueError, match="panel 'x', rows without seeds: warp"):
        plot_ablation([("x", {"none (all on)": [1.0], "warp": []})], out=tmp_path / "c.png")
    with pytest.raises(ValueError, match="no panels"):
        plot_ablation([], out=tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
