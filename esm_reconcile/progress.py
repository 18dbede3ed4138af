"""Apply's progress messages as lines a person can read later.

On a terminal the engine's messages are shown as they are. Elsewhere (cron, CI logs) each line
gets a UTC timestamp, and each line that announces a call sent to AWS gets `[n/N]`: the how-many-th
mutating call of the run it is, of how many the plan needs:

    2026-11-30T13:20:01Z [3/200] orders[arn:aws:sqs:...]: creating

The engine announces each create, update and delete call once, when it is first sent, as
`ADDRESS: creating`, `ADDRESS: updating UUID` or `ADDRESS: deleting UUID` (prefixed with
`[REGION] ` when several regions are applied); other messages (waits, adoptions, retries,
interrupts) get the timestamp only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from .plan import Change, Plan
from .render import terminal_safe

# A message announcing a mutating call: it ends with the verb (and the mapping's UUID).
_CALL = re.compile(r": (?:creating|updating \S+|deleting \S+)\Z")


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """`2026-11-30T13:20:01Z`: RFC 3339 in UTC, to the second."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def calls_of(change: Change) -> int:
    """The create/update/delete calls carrying out `change` announces: a replace two (delete,
    then create); an update one, or none when only its tags change (tag calls are not
    announced)."""
    if change.action == "replace":
        return 2
    if change.action == "update":
        return 1 if change.update_request else 0
    return 1


def calls_planned(plans: Plan | Iterable[Plan]) -> int:
    """The announced calls `apply` will send for these plans (the N of `n/N`). An adopted create
    may add an update; the count then grows with it."""
    if isinstance(plans, Plan):
        plans = [plans]
    return sum(calls_of(change) for plan in plans for change in plan.changes)


def is_call(message: str) -> bool:
    """Whether `message` announces a create, update or delete call."""
    return _CALL.search(message) is not None


def _to_stderr(line: str) -> None:
    import click

    click.echo(line, err=True)


class ProgressSink:
    """A progress callback for app.apply (`progress=`): each message becomes one line, given
    to `emit` (stderr by default). Lines are terminal-safe (messages carry addresses from specs
    and endpoints). Safe to call from several threads (one engine per region)."""

    def __init__(
        self,
        total: int,
        tty: bool,
        clock: Callable[[], datetime] = utc_now,
        emit: Callable[[str], None] = _to_stderr,
    ) -> None:
        self.total = max(total, 0)
        self.tty = tty
        self.clock = clock
        self.emit = emit
        self.sent = 0  # announced calls so far
        self._lock = threading.RLock()  # __call__ holds it across line()

    def line(self, message: str) -> str:
        """The line for one message (counting it when it announces a call)."""
        with self._lock:
            counter = ""
            if is_call(message):
                self.sent += 1
                self.total = max(self.total, self.sent)  # an adoption's extra update
                counter = f"[{self.sent}/{self.total}] "
            if self.tty:
                return terminal_safe(message)
            return terminal_safe(f"{timestamp(self.clock())} {counter}{message}")

    def __call__(self, message: str) -> None:
        # One at a time, so that lines of several regions come out in the order counted.
        with self._lock:
            self.emit(self.line(message))
