"""model.progress: plain lines off a terminal (one per tenth, one at the end, never a carriage
return), tqdm's own bar on one."""

import io

from tqdm import tqdm

from model.progress import PlainLines, progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_each_tenth_is_one_whole_line():
    out = io.StringIO()
    bar = progress(total=20, desc="train", unit="epoch", file=out, mininterval=0)
    assert isinstance(bar, PlainLines)
    for _ in range(20):
        bar.update()
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("train:   0% (0/20 epoch)")
    assert [ln.split("%")[0].split()[-1] for ln in lines] == \
        [str(p) for p in range(0, 101, 10)]
    assert lines[-1].startswith("train: 100% (20/20 epoch)")


def test_the_end_is_shown_once_and_without_a_total_the_count():
    out = io.StringIO()
    with progress(total=3, desc="cosim", unit="step", file=out, leave=False) as bar:
        for _ in range(3):
            bar.update()
            bar.set_postfix(mismatches=0)
    assert out.getvalue().count("100%") == 1 and "mismatches=0" in out.getvalue()
    out = io.StringIO()
    bar = progress(desc="synth", unit="word", file=out)
    bar.update(5)
    bar.close()
    assert out.getvalue().splitlines()[-1].startswith("synth: 5 word")


def test_writes_between_updates_stay_whole_and_disabled_prints_nothing():
    out = io.StringIO()
    bar = progress(total=2, desc="fuzz", file=out)
    tqdm.write("seed 3: mismatch", file=out)
    bar.update(2)
    bar.close()
    assert "\r" not in out.getvalue() and "seed 3: mismatch\n" in out.getvalue()
    out = io.StringIO()
    bar = progress(total=4, desc="quiet", file=out, disable=True)
    bar.update(4)
    bar.close()
    assert out.getvalue() == ""


def test_on_a_terminal_it_is_tqdm_itself():
    bar = progress(total=2, file=_Tty())
    assert type(bar) is tqdm
    bar.close()


def test_a_new_description_is_a_line_and_a_new_postfix_is_not():
    out = io.StringIO()
    bar = progress(total=100, desc="epoch 1", file=out, mininterval=0)
    for k in range(3):
        bar.update()
        bar.set_postfix(loss=1.0 / (k + 1))      # every batch: no line of its own
    bar.set_description("epoch 2")
    bar.close()
    lines = out.getvalue().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1", "epoch 2"]
    assert lines[1].startswith("epoch 2:   3% (3/100 it)")   # one colon, the count so far
