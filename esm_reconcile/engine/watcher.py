"""Watching mappings settle: one Watcher per region and account tracks every mapping that apply
waits on, and decides how to look at them.

A mapping spends seconds to a minute Creating, Updating, Enabling, Disabling or Deleting
(reference B), and every look is a request against the account's ~15/s Lambda quota. One List
page answers for 100 mappings, so while many mappings wait, one sweep of the region's List pages
looks at all of them; when few wait, a Get each is cheaper. Looks back off per mapping
(`poll_start`, doubling to `poll_max`, jittered). While sweeps answer, they come every
`poll_start` seconds per page of the last sweep when something waits for a mapping to be gone,
twice that otherwise (so sweeping costs at most one request a `poll_start`, however big the
region), and no wait backs off past that: one sweep serves them all, so looking at a mapping
more often costs nothing more, and a mapping is seen settled soon after it settles. While apply
still has calls to send, a wait
that nothing else depends on is looked at only rarely (IDLE_LOOK): each look would take a
request from the calls, and a mapping that settles unseen loses nothing.

What a read can be trusted to say (reference B, and its notes on List):
- A Get is the confirmation: settled, gone (ResourceNotFoundException) or in transition, as
  AWS has it now.
- A List may lag behind: it is a different read, and LocalStack's keeps a deleted mapping
  Deleting long after Get says it is gone. A lagging read can only show a state the mapping
  *had*, never one it has not reached yet. So a sweep that began after a call's answer ends
  that mapping's wait when what it shows cannot be an older state:
  - gone: absent from every page of an unfiltered List. Before the Delete it existed, so an
    older read would list it; absence is news.
  - settled after a Create: no older state of a new mapping is settled (before the Create it
    did not exist, and its answer said Creating).
  - settled after an Update: its state before the Update was settled too, so a settled record
    only counts when its LastModified (which AWS moves on every update and state change) is
    later than the Update answer's. Otherwise, a Get decides.
  - absent after a Create or Update: the List may simply not show it yet; a Get decides.
  A wait that sweeps leave unresolved for long (GET_AFTER, or twice the longest any sweep
  ended) may be a List lagging: each poll asks the oldest such wait by Get (a probe). Once a
  probe's Get ends a wait the List still showed in transition, the List is known to lag here,
  and every such wait is asked by Get from then on. So a List that lags for good costs a few
  requests, never a timeout, and one that does not costs a Get per poll at most.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import rules
from ..errors import EsmError
from .protocol import Failure, MappingApi, classify

SWEEP_MIN_WAITS = 4  # below this, Gets are as cheap and fresher
SWEEP_FAILURES = 3  # sweeps failing this many times in a row: Gets only from then on
IDLE_LOOK = 30.0  # while calls are being sent: how often a wait nothing depends on is looked at
GET_AFTER = 20.0  # a wait sweeps leave open this long (at least) is asked by Get

# How a wait ends.
SETTLED, GONE, MISSING, TIMED_OUT, UNREADABLE = "settled", "gone", "missing", "timeout", "error"


@dataclass(eq=False)
class Wait:
    """One mapping apply waits on: until settled (Enabled/Disabled) or gone."""

    uuid: str
    goal: str  # SETTLED or GONE
    kind: str  # the call it follows: "create", "update" or "delete"
    since: float  # when the call's answer came (when the wait began, for a wait of no call)
    deadline: float
    on_end: Callable[[str, Any], None]  # (how it ended, the record / the exception)
    what: str = ""  # the change's address, for progress lines
    baseline: Any = None  # an Update answer's LastModified: a settled record must be later
    blocking: bool = False  # something else waits for this one
    delay: float = 1.0
    next_look: float = 0.0
    last_look: float = -math.inf
    last_get: float = -math.inf
    ask_get: bool = False
    state: str | None = None  # as last seen
    last_sweep_state: str | None = None  # as the last sweep showed it


@dataclass
class Poll:
    """One round of looking: a sweep of every List page, and/or Gets of a few mappings."""

    sweep: bool = False
    gets: list[str] = field(default_factory=list)
    started: float = 0.0
    # Filled by run():
    listed: dict[str, dict[str, Any]] | None = None  # the sweep's mappings by UUID
    pages: int = 0
    found: dict[str, Any] = field(default_factory=dict)  # UUID -> record | exception


class Watcher:
    """Not thread-safe: the engine's loop owns it; only `run` (which touches no state of
    the watcher) may run on another thread."""

    def __init__(
        self,
        api: MappingApi,
        *,
        poll_start: float = 1.0,
        poll_max: float = 10.0,
    ) -> None:
        self.api = api
        self.poll_start, self.poll_max = poll_start, poll_max
        self.waits: dict[str, list[Wait]] = {}
        self.pages = 1  # pages the last sweep took: the price of the next one
        self.last_sweep = -math.inf
        self.longest_swept = 0.0  # longest wait a sweep ended
        self.list_lags = False  # a Get ended a wait that the List showed in transition
        self.failed_sweeps = 0  # in a row
        self.busy = False  # a poll is out
        self.sweeps = 0
        self.gets = 0

    # -- waits ---------------------------------------------------------------------------------

    def add(self, wait: Wait, answered: bool) -> None:
        """Watch `wait`. `answered`: it follows a call whose answer said the mapping is in
        transition, so there is no point looking at once; else the first look is now."""
        if answered:
            wait.next_look = wait.since + _jitter(self.poll_start)
            wait.delay = min(2 * self.poll_start, self.poll_max)
        else:
            wait.next_look = wait.since
            wait.delay = self.poll_start
        wait.last_look = wait.last_get = wait.since
        self.waits.setdefault(wait.uuid, []).append(wait)

    def block(self, uuid: str) -> None:
        """Something waits for `uuid` to be gone: look at it as often as backoff allows."""
        for wait in self.waits.get(uuid, []):
            wait.blocking = True

    @property
    def pending(self) -> list[Wait]:
        return [w for waits in self.waits.values() for w in waits]

    def __len__(self) -> int:
        return sum(len(waits) for waits in self.waits.values())

    # -- when to look --------------------------------------------------------------------------

    def _eligible_at(self, wait: Wait, submitting: bool) -> float:
        if not submitting or wait.blocking or wait.ask_get:
            return wait.next_look
        idle = min(wait.last_look + IDLE_LOOK, wait.deadline - IDLE_LOOK)
        return max(wait.next_look, idle)

    def next_poll(self, now: float, submitting: bool) -> Poll | None:
        """The poll to make now, if any. `submitting`: calls are waiting to be sent."""
        if self.busy:
            return None
        # Looks due within poll_start join this one: jitter spreads looks that a single sweep
        # could make, and each taken alone would be a Get.
        soon = [
            w for w in self.pending if self._eligible_at(w, submitting) <= now + self.poll_start
        ]
        due = [w for w in soon if self._eligible_at(w, submitting) <= now]
        if not due:
            return None
        poll = Poll(started=now)
        stale = sorted(
            (
                w
                for w in due
                if not w.ask_get and w.last_sweep_state is not None and self._stale(w, now)
            ),
            key=lambda w: w.last_get,
        )
        for wait in stale if self.list_lags else stale[:1]:
            wait.ask_get = True
        by_get = {w.uuid for w in due if w.ask_get}
        rest = {w.uuid for w in due if not w.ask_get} - by_get
        sweepable = {w.uuid for w in soon if not w.ask_get}
        can_sweep = len(self) >= SWEEP_MIN_WAITS and self.failed_sweeps < SWEEP_FAILURES
        if rest and can_sweep and len(sweepable) > self.pages:
            if now >= self._next_sweep():
                poll.sweep = True
            rest = set()  # sweep soon rather than Get each
        poll.gets = sorted(by_get | rest)
        if not poll.sweep and not poll.gets:
            return None
        self.busy = True
        return poll

    def _stale(self, wait: Wait, now: float) -> bool:
        """Sweeps have left `wait` open so long that the List may be lagging behind."""
        return now - wait.last_get >= max(GET_AFTER, 2 * self.longest_swept)

    def _sweep_gap(self) -> float:
        blocking = any(w.blocking for w in self.pending)
        return self.pages * self.poll_start * (1 if blocking else 2)

    def _next_sweep(self) -> float:
        return self.last_sweep + self._sweep_gap()

    def wake_at(self, now: float, submitting: bool) -> float | None:
        """When something may next be due: a look, a sweep allowed again, or a deadline."""
        if not len(self):
            return None
        times = [min(self._eligible_at(w, submitting), w.deadline) for w in self.pending]
        soonest = min(times)
        if soonest <= now and not self.busy:
            soonest = max(now + 0.01, self._next_sweep())
        return soonest

    # -- looking (any thread) ------------------------------------------------------------------

    def run(self, poll: Poll) -> Poll:
        """Make the poll's requests; what they found goes into `poll`."""
        for uuid in poll.gets:
            try:
                poll.found[uuid] = self.api.get(uuid)
            except (ClientError, BotoCoreError) as exc:
                poll.found[uuid] = exc
        if poll.sweep:
            listed: dict[str, dict[str, Any]] = {}
            try:
                for page in self.api.pages():
                    poll.pages += 1
                    for item in page.get("EventSourceMappings", []):
                        if isinstance(item, dict) and isinstance(item.get("UUID"), str):
                            listed[item["UUID"]] = item
            except (ClientError, BotoCoreError, EsmError):  # EsmError: paging gone wrong
                return poll  # nothing learned: the waits look again later
            poll.listed = listed
        return poll

    # -- what a poll says (the loop's thread) ------------------------------------------------

    def absorb(self, poll: Poll, now: float) -> None:
        """Take in what a poll found: end the waits it decides, back off the others."""
        self.busy = False
        self.gets += len(poll.gets)
        if poll.sweep:
            self.last_sweep = poll.started
            if poll.listed is None:  # no answer: the waits look again later, not at once
                self.failed_sweeps += 1
                for wait in self.pending:
                    if wait.since <= poll.started and wait.uuid not in poll.found:
                        self._looked(wait, now)
            else:
                self.sweeps += 1
                self.pages, self.failed_sweeps = max(1, poll.pages), 0
        for uuid, found in poll.found.items():
            for wait in list(self.waits.get(uuid, [])):
                if wait.since <= poll.started:
                    self._by_get(wait, found, now)
        if poll.listed is not None:
            for wait in self.pending:
                if wait.since <= poll.started and wait.uuid not in poll.found:
                    self._by_sweep(wait, poll.listed.get(wait.uuid), poll.started, now)

    def expire(self, now: float) -> None:
        """End the waits past their deadline."""
        for wait in self.pending:
            if now >= wait.deadline:
                self._end(wait, TIMED_OUT, None)

    def _looked(self, wait: Wait, now: float) -> None:
        wait.last_look = now
        wait.next_look = now + _jitter(wait.delay)
        longest = self.poll_max
        if len(self) >= SWEEP_MIN_WAITS:  # swept: looking again costs nothing more
            longest = min(longest, max(self.poll_start, self._sweep_gap()))
        wait.delay = min(2 * wait.delay, longest)

    def _by_get(self, wait: Wait, found: Any, now: float) -> None:
        self._looked(wait, now)
        wait.last_get, wait.ask_get = now, False
        swept_in_transition = wait.last_sweep_state in rules.TRANSITION_STATES
        if isinstance(found, Exception):
            failure = classify(found)
            if failure is Failure.NOT_FOUND:
                self.list_lags |= swept_in_transition and wait.goal == GONE
                self._end(wait, GONE if wait.goal == GONE else MISSING, found)
            elif failure not in (Failure.THROTTLED, Failure.UNAVAILABLE):
                self._end(wait, UNREADABLE, found)
            return  # "not now": look again later
        wait.state = found.get("State") or wait.state
        if wait.goal == SETTLED and wait.state in rules.SETTLED_STATES:
            self.list_lags |= swept_in_transition
            self._end(wait, SETTLED, found)

    def _by_sweep(self, wait: Wait, record: dict[str, Any] | None, started: float, now: float):
        self._looked(wait, now)
        if wait.goal == GONE and record is None:
            self.longest_swept = max(self.longest_swept, started - wait.since)
            self._end(wait, GONE, None)
            return
        if record is None:  # a new or updated mapping the List does not show (yet)
            wait.ask_get = True
            return
        wait.state = wait.last_sweep_state = record.get("State") or wait.state
        if wait.goal == SETTLED and wait.state in rules.SETTLED_STATES:
            if wait.kind == "create" or _later(record.get("LastModified"), wait.baseline):
                self.longest_swept = max(self.longest_swept, started - wait.since)
                self._end(wait, SETTLED, record)
                return
            wait.ask_get = True  # settled, but maybe the state before the Update

    def _end(self, wait: Wait, how: str, found: Any) -> None:
        waits = self.waits.get(wait.uuid, [])
        if wait in waits:
            waits.remove(wait)
            if not waits:
                del self.waits[wait.uuid]
            wait.on_end(how, found)


def _jitter(seconds: float) -> float:
    """±20 %, so looks at many mappings do not fall in step."""
    return seconds * random.uniform(0.8, 1.2)


def _later(value: Any, baseline: Any) -> bool:
    """`value` is a later LastModified than `baseline` (both as AWS answered them)."""
    if value is None or baseline is None:
        return False
    try:
        return bool(value > baseline)
    except TypeError:  # e.g. a naive and an aware datetime: no verdict
        return False
