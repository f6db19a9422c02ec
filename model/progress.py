"""Progress of long work on stderr: a tqdm bar on a terminal, plain lines otherwise.

A bar redrawn with carriage returns is what a person at a terminal wants; in a log file, a CI
job or a pipe it becomes one unreadable line. :func:`progress` takes tqdm's arguments and
returns a tqdm bar when stderr is a terminal, else a :class:`PlainLines` bar that prints a
whole line each time another tenth of the work is done, the description changes (a new
stage; a postfix such as a running loss does not count), or :data:`QUIET_S` seconds passed without one (the total is unknown or a tenth
takes long), and one at the end.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

__all__ = ["PlainLines", "QUIET_S", "progress"]

#: Longest silence between two plain lines while work goes on.
QUIET_S = 30.0


class PlainLines(tqdm):
    """A tqdm bar that writes plain lines: ``desc: 40% (4/10 unit) 00:12<00:18``."""

    def __init__(self, *args, **kwargs):
        self._shown = -1            # the last tenth printed
        self._shown_n = None        # the count it showed
        self._shown_label = None    # and its description (a new stage: a line)
        self._shown_at = time.monotonic()
        self._ended = False
        kwargs.setdefault("bar_format", "{desc}: {percentage:3.0f}% ({n_fmt}/{total_fmt} "
                          "{unit}) {elapsed}<{remaining}{postfix}")
        super().__init__(*args, **kwargs)

    def _line(self) -> str:
        d = dict(self.format_dict)
        d["prefix"] = (d.get("prefix") or "").removesuffix(": ")    # set_description's colon
        if not d.get("total"):      # no total: no percentage either
            d["bar_format"] = "{desc}: {n_fmt} {unit} {elapsed}{postfix}"
        return self.format_meter(**d)

    def display(self, msg=None, pos=None, force=False):
        if self._ended:
            return False            # nothing drawn: tqdm's close writes no '\r' after it
        tenth = int(10 * self.n / self.total) if self.total else -1
        now = time.monotonic()
        label = self.desc
        if force or tenth > self._shown or now - self._shown_at >= QUIET_S or \
                self._shown_n is None or label != self._shown_label:
            self._shown, self._shown_at, self._shown_n = max(tenth, self._shown), now, self.n
            self._shown_label = label
            print(self._line(), file=self.fp or sys.stderr, flush=True)
        return True

    def clear(self, nolock=False):
        """Nothing to wipe: lines already written stay (``tqdm.write`` calls this)."""

    def close(self):
        if self.disable or self._ended:
            return super().close()
        if self.n != self._shown_n:
            self.display(force=True)    # the closing line, unless the last one showed it
        self._ended = True
        self.leave = False          # tqdm's close would add an empty line
        return super().close()


def progress(*args, **kwargs) -> tqdm:
    """``tqdm(*args, **kwargs)`` on a terminal, :class:`PlainLines` otherwise (stderr, or the
    ``file`` given)."""
    out = kwargs.get("file") or sys.stderr
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return (tqdm if tty else PlainLines)(*args, **kwargs)
