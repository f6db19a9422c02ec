"""The command line fuzzed: thousands of generated invocations of every subcommand, each with
one thing wrong (a bad number, a bad choice, a missing, empty, corrupt or oddly named file),
the rest random. Every one must be refused with a non-zero exit, no Python traceback, within a
bound.

The invocations are drawn from the parser itself (every option of every subcommand), so a new
option is fuzzed without touching this file. ``POLYCHRONY_CLI_FUZZ=N`` runs N of them
(default 2,000: about a minute)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import signal

import numpy as np
import pytest

from model.ir import save
from polychrony_cli import build_parser, main
from tests import ROOT
from tests.nets import tiny_net

COUNT = int(os.environ.get("POLYCHRONY_CLI_FUZZ", "2000"))
#: Seconds one refused invocation may take (imports of torch or amaranth included).
BOUND = 30

NOT_INTS = ["x", "1.5", "", "nan", "0x", "1e400", "--", "3x"]
NOT_FLOATS = ["nan", "-inf", "inf", "1e999", "x", ""]
ODD_NAMES = ["with space.npz", "ünïcødé.npz", "semi;colon.npz", "#hash.npz", "-dash.npz"]


class Hang(Exception):
    pass


def _commands(parser, path=()):
    """(command path, parser) of every leaf subcommand."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                if sub is not parser:
                    yield from _commands(sub, (*path, name))
            return
    yield path, parser


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Files of every kind a user might hand over by mistake, and a few good ones."""
    d = tmp_path_factory.mktemp("fuzz")
    good = save(tiny_net(), d / "good.npz")
    files = {"good": [str(good), str(ROOT / "bench/networks/convdelrec_k31_w4.npz")]}
    (d / "empty.npz").write_bytes(b"")
    (d / "garbage.npz").write_bytes(os.urandom(300))
    (d / "text.npz").write_text("hello\n")
    (d / "wav.npy").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(40))
    np.save(d / "floats.npy", np.random.default_rng(0).random((3, 4)))
    np.save(d / "empty3.npy", np.zeros((0, 0, 0), np.int64))
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "adir").mkdir()
    (d / "truncated.npz").write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    odd = d / "odd dir ü"
    odd.mkdir()
    for name in ODD_NAMES:
        shutil.copy(good, odd / name)
    files["bad"] = [str(d / f) for f in ("empty.npz", "garbage.npz", "text.npz", "wav.npy",
                                          "floats.npy", "empty3.npy", "objects.npy", "adir",
                                          "truncated.npz", "missing.npz", "missing dir/x.npz")]
    files["odd"] = [str(odd / n) for n in ODD_NAMES]
    return files


#: Options that name something the command writes (any path is fine: never poisoned).
OUTPUTS = {"output", "out", "work", "markdown", "checkpoint", "pack", "build_dir", "labels",
           "dump_state", "plot", "cache"}
#: Flags that print something and stop, ignoring the rest (never combined with others).
TERMINAL = {"list"}
#: Free text a command takes as it is (never poisoned).
FREE = {"cable", "name"}
#: Strings with a grammar: a value each must refuse.
GRAMMAR = {"memory": "proj0.weights=nowhere", "rows": "x=y", "port": "/dev/no-such-tty",
           "lanes": "zero", "offset": "0xZZ", "sim": "spice", "seeds": "x-y"}


def _kind(action) -> str:
    if action.dest in OUTPUTS:
        return "output"
    if action.dest in FREE:
        return "free"
    if action.choices:
        return "choice"
    if action.dest in GRAMMAR:
        return "grammar"
    t = getattr(action.type, "__name__", "")
    if t in ("int", "float"):
        return t
    return "input"


def _value(rng, action, pool, tmp):
    """A plausible value for ``action``."""
    kind = _kind(action)
    if kind == "choice":
        return str(rng.choice(list(action.choices)))
    if kind == "int":
        return str(rng.choice([1, 2, 3, 8]))
    if kind == "float":
        return str(rng.choice([0.1, 0.5, 2.0]))
    if kind == "output":
        return str(tmp / f"out{rng.randrange(10**6)}" / rng.choice(["x.npz", "o ü.nir"]))
    if kind == "free":
        return rng.choice(["ft232", "my net"])
    if kind == "grammar":
        return {"lanes": "2", "offset": "0x100000", "rows": "2=2", "port": "/dev/ttyUSB0",
                "memory": "proj0.weights=ebr", "sim": "icarus", "seeds": "0-1"
                }.get(action.dest, "1")
    return rng.choice(pool["good"] + pool["odd"])


def _poison(rng, action, pool):
    """A value of ``action`` that must be refused, or None when it has none."""
    kind = _kind(action)
    if kind == "choice":
        return "bogus-choice"
    if kind in ("int", "float"):
        bad = list(NOT_INTS if kind == "int" else NOT_FLOATS)
        lo, hi, above = getattr(action.type, "bounds", (None, None, False))
        if lo is not None:   # out of the flag's range, as argparse must say
            bad += [str(lo if above else lo - 1), str(lo - 10**6)]
        if hi is not None:
            bad += [str(hi + 1), str(hi * 1000 + 1)]
        return rng.choice(bad)
    if kind == "grammar":
        return GRAMMAR[action.dest]
    if kind == "input":
        return rng.choice(pool["bad"])
    return None


def _invocation(rng, path, parser, pool, tmp):
    """argv with exactly one poisoned argument (positional or option value)."""
    pos = [a for a in parser._actions if not a.option_strings]
    opts = [a for a in parser._actions if a.option_strings and a.dest != "help"
            and a.dest not in TERMINAL]
    can_poison = [a for a in (*pos, *opts) if a.nargs != 0 and _poison(rng, a, pool)]
    target = rng.choice(can_poison) if can_poison else None
    argv = list(path)
    for a in pos:
        n = 1 if a.nargs in (None, "+") else (rng.choice([0, 1]) if a.nargs == "?" else 1)
        if a is target:
            n = 1
        for _ in range(n):
            argv.append(_poison(rng, a, pool) if a is target else
                        rng.choice(pool["good"] + pool["odd"]))
    chosen = rng.sample(opts, k=min(len(opts), rng.randint(0, 4)))
    if target is not None and target not in pos and target not in chosen:
        chosen.append(target)
    for a in chosen:
        flag = rng.choice(a.option_strings)
        if a.nargs == 0:
            argv.append(flag)
        else:
            argv += [flag, _poison(rng, a, pool) if a is target else _value(rng, a, pool, tmp)]
    return argv, target is not None


def _alarm(signum, frame):
    raise Hang()


def test_no_tracebacks_no_hangs(pool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(20261205)
    commands = list(_commands(build_parser()))
    failures, refused, ran = [], 0, 0
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i in range(COUNT):
            path, parser = commands[i % len(commands)]
            argv, poisoned = _invocation(rng, path, parser, pool, tmp_path)
            if not poisoned:
                continue
            out, err = io.StringIO(), io.StringIO()
            signal.alarm(BOUND)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        code = main(argv)
                    except SystemExit as e:
                        code = e.code
            except Hang:
                failures.append(("hang", argv, ""))
                continue
            except BaseException as e:  # an exception main() let through: a traceback
                failures.append(("traceback", argv, f"{type(e).__name__}: {e}"))
                continue
            finally:
                signal.alarm(0)
            ran += 1
            text = err.getvalue()
            if "Traceback" in text:
                failures.append(("traceback text", argv, text[-300:]))
            elif code in (0, None):
                failures.append(("accepted", argv, out.getvalue()[-200:]))
            else:
                refused += 1
    finally:
        signal.signal(signal.SIGALRM, old)
    assert ran >= COUNT * 0.9
    assert not failures, "\n".join(f"{kind}: {' '.join(a)}\n    {msg}"
                                   for kind, a, msg in failures[:15])
    assert refused == ran
