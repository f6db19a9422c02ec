"""Run one call in a fresh child process and measure its wall time and peak resident memory.

    from bench.peak import run_measured
    m = run_measured(fn, *args, threads=2, **kwargs)
    m.result, m.seconds, m.peak_bytes, m.base_bytes

The child is started with the ``"spawn"`` start method, so it shares nothing with the parent
(no inherited heap, no copy-on-write pages) and its peak memory belongs to the call alone plus
the interpreter, its imports and the unpickled arguments. ``fn`` must be picklable (a
top-level function), as must its arguments and result.

- ``seconds``: ``time.perf_counter`` around the call only (not process start-up, imports or
  argument transfer).
- ``peak_bytes``: the child's ``VmHWM`` (peak resident set) read from ``/proc/self/status``
  after the call: the absolute peak of the whole child process.
- ``base_bytes``: ``VmHWM`` read in the child right before the call (interpreter, imports,
  arguments); ``peak_bytes - base_bytes`` is what the call added on top.
- ``cpu_seconds``: the child's user + system CPU time over the call (all its threads);
  ``cpu_seconds / seconds`` well below the thread count hints at contention (other jobs on the
  same cores) or at single-threaded work.

An exception in the child is re-raised in the parent (the original exception when it can be
pickled, else a :class:`ChildError`), with the child's traceback text attached as its cause
and as a note. A child that dies without answering (e.g. killed by the OOM killer) raises
:class:`ChildError` with its exit code.

Linux only (``/proc``).
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import resource
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Measured", "ChildError", "run_measured", "vm_hwm_bytes", "fill_bytes"]


@dataclass
class Measured:
    """What :func:`run_measured` returns."""

    result: Any
    seconds: float
    peak_bytes: int
    base_bytes: int
    cpu_seconds: float = float("nan")

    @property
    def added_bytes(self) -> int:
        """Peak resident memory the call added on top of the child's state before it."""
        return self.peak_bytes - self.base_bytes


class ChildError(RuntimeError):
    """The child failed in a way that cannot be re-raised as the original exception."""


class RemoteTraceback(Exception):
    """Carries the child's traceback text (set as ``__cause__`` of the re-raised exception)."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.tb}\"\"\""


def vm_hwm_bytes() -> int:
    """This process's peak resident set size (``VmHWM`` of ``/proc/self/status``), in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                value, unit = line.split()[1:3]
                if unit != "kB":
                    raise RuntimeError(f"unexpected VmHWM unit {unit!r}")
                return int(value) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def fill_bytes(nbytes: int) -> int:
    """Allocate ``nbytes`` and write every page; return the sum of a few bytes (small result).

    A calibration / test workload for :func:`run_measured`: the child's peak grows by about
    ``nbytes``.
    """
    buf = bytearray(nbytes)
    for i in range(0, nbytes, 4096):
        buf[i] = 1
    return sum(buf[::1 << 20])


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(conn, fn: Callable, args: tuple, kwargs: dict, threads: int | None) -> None:
    try:
        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        base = vm_hwm_bytes()
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        peak = vm_hwm_bytes()
        conn.send(("ok", result, seconds, peak, base, cpu))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        tb = traceback.format_exc()
        try:
            payload = pickle.dumps(exc)
            pickle.loads(payload)
        except Exception:  # noqa: BLE001 - unpicklable exception: send its text only
            payload = None
        conn.send(("err", payload, tb, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_measured(fn: Callable, *args, threads: int | None = 2, **kwargs) -> Measured:
    """Run ``fn(*args, **kwargs)`` in a fresh spawned child; return a :class:`Measured`.

    ``threads``: ``torch.set_num_threads(threads)`` in the child before the call (imports torch
    there); ``None`` leaves torch alone. (``threads`` is therefore not passed on to ``fn``.)
    """
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, kwargs, threads), daemon=True)
    proc.start()
    send.close()  # only the child holds the write end now: EOF if it dies
    try:
        msg = recv.recv()  # before join: a large result would block the child's send
    except EOFError:
        proc.join()
        raise ChildError(f"child process died without a result (exit code {proc.exitcode})")
    finally:
        recv.close()
    proc.join()
    if msg[0] == "ok":
        _, result, seconds, peak, base, cpu = msg
        return Measured(result=result, seconds=seconds, peak_bytes=peak, base_bytes=base,
                        cpu_seconds=cpu)
    _, payload, tb, text = msg
    exc = pickle.loads(payload) if payload is not None else ChildError(text)
    exc.add_note(f"raised in the child process; its traceback:\n{tb}")
    raise exc from RemoteTraceback(tb)


if __name__ == "__main__":
    m = run_measured(fill_bytes, 256 << 20, threads=None)
    print(f"fill 256 MiB: {m.seconds:.3f} s, peak {m.peak_bytes / 2**20:.0f} MiB, "
          f"base {m.base_bytes / 2**20:.0f} MiB, added {m.added_bytes / 2**20:.0f} MiB, "
          f"cpu {m.cpu_seconds:.3f} s")
