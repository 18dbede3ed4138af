"""Carry out a Plan: send the calls as fast as the region's limiter allows, then watch.

No thread is held by a waiting mapping. One loop (the caller's thread) owns all state: it sends
ready calls to at most `parallelism` threads (inline when 1, so a Stubber test sees one fixed
order), hands what must settle to the region's Watcher, and starts what a gone mapping frees.
Order (ordering.py): every delete is sent at once; every update and create is sent as soon as
the last delete is gone.

A change's life: a delete is sent, then watched until gone; an update is sent, watched until
settled, then its tags are set; a create is sent, then watched until settled. A replace is a
delete, then a create. A create that meets its own mapping already there
(ResourceConflictException, typically an earlier attempt whose answer was lost) adopts it. What
became of each change is an Outcome (step_progress.py words it).

Retries: throttled and unavailable answers are retried inside the call (protocol.py); a mapping
in transition (ResourceInUseException), a role IAM has not propagated yet, and failures that
outlasted those retries are sent again later by this loop, with backoff, within the step's
timeout. Ctrl-C: the first stops sending (calls out finish, what is pending and settling is
reported); the second leaves at once (pool.interruptible).
"""

from __future__ import annotations

import heapq
import itertools
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .. import rules
from ..diff import reconcile_existing
from ..model import LiveMapping
from ..outcomes import ApplyResult, Outcome
from ..plan import Change, Plan
from ..step_progress import (
    StepProgress,
    Unreconcilable,
    WaitTimeout,
    finished,
    not_started,
    unfinished,
)
from .ordering import deleted_first
from .protocol import Failure, MappingApi, classify
from .watcher import GONE, SETTLED, TIMED_OUT, Poll, Wait, Watcher

CREATE_TIMEOUT = 600.0
UPDATE_TIMEOUT = 600.0
DELETE_TIMEOUT = 300.0
# A new execution role takes a while to be usable by Lambda; Terraform retries these for minutes.
PROPAGATION_TIMEOUT = 120.0
ADOPT_ATTEMPTS = 3  # creates that found their identity held by a mapping still Deleting
_UUID_IN_MESSAGE = re.compile(
    r"UUID\s+([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
# Ranks among ready calls: deletes first, since they free what creates may wait for.
_RANK = {"delete": 0, "update": 1, "tags": 1, "read": 1, "create": 2}


@dataclass(eq=False)
class Track:
    """One change as the engine carries it out."""

    change: Change
    phase: str = ""  # the step under way: "delete", "update" or "create"
    progress: StepProgress = field(default_factory=StepProgress)
    outcome: Outcome | None = None
    started: bool = False  # a call of the current step was sent
    blocked_on: set[str] = field(default_factory=set)  # UUIDs it waits to be gone
    required: set[str] = field(default_factory=set)  # of those, the ones it cannot do without
    settling: bool = False  # a call's mapping is being watched
    tags_pending: bool = False
    adopt_attempts: int = 0


@dataclass(eq=False)
class Job:
    """One call to send (and send again, on a retryable failure)."""

    track: Track
    step: str  # "delete", "update", "tags", "create" or "read"
    call: Callable[[], Any]
    on_answer: Callable[[Any], None]
    on_failure: Callable[[Exception], None] | None = None
    announce: str = ""  # the progress line said when it is first sent
    first_sent: float | None = None
    delay: float = 0.0

    @property
    def sends(self) -> bool:
        """A call that changes something (reads are not held back for it)."""
        return self.step != "read"


class Engine:
    def __init__(
        self,
        api: MappingApi,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any],
        stop: threading.Event,
        progress: Callable[[str], None] = lambda _msg: None,
        waiting: Callable[[str], None] | None = None,
        poll_start: float = 1.0,
        poll_max: float = 10.0,
        timeouts: dict[str, float] | None = None,
        parallelism: int = 1,
    ) -> None:
        self.api, self.clock, self.sleep, self.stop = api, clock, sleep, stop
        self.progress, self.waiting = progress, waiting
        self.poll_start, self.poll_max = poll_start, poll_max
        self.timeouts = {
            "create": CREATE_TIMEOUT,
            "update": UPDATE_TIMEOUT,
            "delete": DELETE_TIMEOUT,
            **(timeouts or {}),
        }
        self.parallelism = max(1, parallelism)
        self.watcher = Watcher(api, poll_start=poll_start, poll_max=poll_max)
        self._ready: list[tuple[int, int, Job]] = []  # (rank, seq, job)
        self._later: list[tuple[float, int, Job]] = []  # (not before, seq, job)
        self._seq = itertools.count()
        self._in_flight = 0
        self._done: queue.SimpleQueue[tuple[Job | Poll, Any, BaseException | None]] = (
            queue.SimpleQueue()
        )
        self._gone: set[str] = set()  # UUIDs seen gone
        self._gone_waiters: dict[str, list[Track]] = {}
        self._watched_gone: set[str] = set()  # UUIDs with a gone-wait

    # -- the loop -------------------------------------------------------------------------------

    def run(self, plan: Plan) -> ApplyResult:
        tracks = [Track(change) for change in plan.changes]
        first = deleted_first(plan.changes)
        for track in (t for t in tracks if t.change.action != "delete"):
            for uuid in first:
                if uuid != track.change.uuid:  # a replace waits for its own delete anyway
                    track.blocked_on.add(uuid)
                    self._gone_waiters.setdefault(uuid, []).append(track)
        pool = (
            ThreadPoolExecutor(self.parallelism + 1, thread_name_prefix="esm-apply")
            if self.parallelism > 1
            else None
        )
        try:
            for track in tracks:
                self._begin(track)
            self._loop(pool)
        except BaseException:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        if pool is not None:
            pool.shutdown(wait=True)
        for track in tracks:
            if track.outcome is None:
                track.outcome = (
                    self._interrupted(track)
                    if self.stop.is_set()
                    else unfinished(track.phase, track.change, track.progress, _STRANDED)
                )
        return ApplyResult([t.outcome for t in tracks if t.outcome], self.stop.is_set())

    def _loop(self, pool: ThreadPoolExecutor | None) -> None:
        while True:
            now = self.clock()
            while self._later and self._later[0][0] <= now:
                _, seq, job = heapq.heappop(self._later)
                heapq.heappush(self._ready, (_RANK[job.step], seq, job))
            stopping = self.stop.is_set()
            if not stopping:
                self.watcher.expire(now)
                while self._ready and self._in_flight < self.parallelism and not self.stop.is_set():
                    _, _, job = heapq.heappop(self._ready)
                    self._dispatch(pool, job, job.call)
                    if pool is None:
                        self._take_done()
                poll = self.watcher.next_poll(self.clock(), self._submitting())  # None: busy
                if poll is not None:
                    self._dispatch(pool, poll, lambda p=poll: self.watcher.run(p))
                    if pool is None:
                        self._take_done()
                        continue
            idle = not self._in_flight and not self.watcher.busy
            if idle and (stopping or not (self._ready or self._later or len(self.watcher))):
                return
            if pool is not None and (self._in_flight or self.watcher.busy):
                self._take_done(timeout=self._idle(now))
            elif not (self._ready and self._in_flight < self.parallelism):
                self.sleep(self._idle(now))

    def _idle(self, now: float) -> float:
        """How long nothing needs doing, at most."""
        times = [t for t, _, _ in self._later[:1]]
        wake = self.watcher.wake_at(now, self._submitting())
        if wake is not None:
            times.append(wake)
        if self._ready and self._in_flight < self.parallelism:
            return 0.0
        return max(0.0, min(times) - now) if times else 0.2

    def _submitting(self) -> bool:
        return any(job.sends for _, _, job in self._ready) or self._in_flight > 0

    def _dispatch(self, pool: ThreadPoolExecutor | None, item: Job | Poll, call: Any) -> None:
        if isinstance(item, Job):
            self._in_flight += 1
            if item.first_sent is None:
                item.first_sent = self.clock()
                if item.announce:
                    self.progress(item.announce)
            item.track.started = True

        def run() -> None:
            try:
                self._done.put((item, call(), None))
            except BaseException as exc:  # handed to the loop's thread
                self._done.put((item, None, exc))

        if pool is None:
            run()
        else:
            pool.submit(run)

    def _take_done(self, timeout: float | None = None) -> None:
        """Handle one finished call or poll (waiting up to `timeout` for it), and any others
        already finished."""
        try:
            # At least 10 ms: a due look whose poll is still out must not spin the loop.
            wait = min(max(timeout, 0.01), 0.2) if timeout is not None else None
            first = self._done.get(timeout=wait) if wait is not None else None
        except queue.Empty:
            return
        items = [first] if first is not None else []
        while True:
            try:
                items.append(self._done.get_nowait())
            except queue.Empty:
                break
        for item, answer, exc in items:
            if isinstance(item, Poll):
                if exc is not None:
                    raise exc
                self.watcher.absorb(answer, self.clock())
                self._report_waiting()
                continue
            self._in_flight -= 1
            if exc is None:
                item.on_answer(answer)
            elif isinstance(exc, Exception):  # an AWS failure, or an endpoint answering nonsense
                self._failed(item, exc)
            else:
                raise exc

    # -- calls ----------------------------------------------------------------------------------

    def _send(
        self,
        track: Track,
        step: str,
        call: Callable[[], Any],
        on_answer: Callable[[Any], None],
        on_failure: Callable[[Exception], None] | None = None,
        announce: str = "",
    ) -> None:
        job = Job(track, step, call, on_answer, on_failure, announce, delay=self.poll_start)
        heapq.heappush(self._ready, (_RANK[step], next(self._seq), job))

    def _again(self, job: Job) -> None:
        """Send `job` again after a backoff."""
        wait = job.delay * random.uniform(0.8, 1.2)
        job.delay = min(2 * job.delay, self.poll_max)
        heapq.heappush(self._later, (self.clock() + wait, next(self._seq), job))

    def _failed(self, job: Job, exc: Exception) -> None:
        failure = classify(exc)
        elapsed = self.clock() - (job.first_sent or self.clock())
        budget = self.timeouts.get(_timeout_kind(job.step), self.timeouts["update"])
        track = job.track
        if failure is Failure.IN_USE and job.step != "create" and elapsed < budget:
            self._again(job)  # mid-transition: its next attempt is the look at its state
            return
        if failure is Failure.ROLE_NOT_READY and elapsed < PROPAGATION_TIMEOUT:
            self.progress(f"{track.change.address}: the execution role is not usable yet; retrying")
            self._again(job)
            return
        if failure in (Failure.THROTTLED, Failure.UNAVAILABLE) and elapsed < budget:
            self._again(job)
            return
        if job.on_failure is not None:
            job.on_failure(exc)
        else:
            self._fail(track, exc)

    # -- steps ----------------------------------------------------------------------------------

    def _begin(self, track: Track) -> None:
        change = track.change
        if change.action in ("delete", "replace"):
            self._delete(track)
        elif change.action == "update":
            track.phase = "update"
            if not track.blocked_on:
                self._update(track, change)
        else:
            self._create_when_free(track)

    def _delete(self, track: Track) -> None:
        change = track.change
        assert change.uuid
        uuid = change.uuid
        track.phase, track.progress.uuid = "delete", uuid

        def answered(deleted: dict[str, Any] | None) -> None:
            track.progress.call, track.progress.complete = "delete", True
            if deleted is None:  # already gone
                self._on_gone(track, uuid, GONE, None)
                return
            track.progress.state = deleted.get("State")
            self._watch(track, uuid, GONE, "delete", deleted, self._on_gone_of(track, uuid))

        def refused(exc: Exception) -> None:
            if classify(exc) is Failure.NOT_FOUND:
                answered(None)
            else:
                self._fail(track, exc)

        self._send(
            track,
            "delete",
            lambda: self.api.delete(uuid),
            answered,
            refused,
            f"{change.address}: deleting {uuid}",
        )

    def _on_gone_of(self, track: Track, uuid: str) -> Callable[[str, Any], None]:
        return lambda how, found: self._on_gone(track, uuid, how, found)

    def _on_gone(self, track: Track, uuid: str, how: str, found: Any) -> None:
        """A delete's wait ended: gone, or not seen gone (timeout, unreadable)."""
        track.settling = False
        if how == GONE:
            self._mark_gone(uuid)
            if track.change.action == "replace":
                track.progress = StepProgress()
                track.started = False
                self._create_when_free(track)
            else:
                self._finish(track)
            return
        track.progress.state = track.progress.state or "Deleting"
        self._fail(track, _wait_error(how, found, self.timeouts["delete"]))

    def _update(self, track: Track, change: Change) -> None:
        """Send `change`'s update (the track's own change, or what adopting left to do)."""
        assert change.uuid
        uuid = change.uuid
        track.progress.uuid = uuid
        track.tags_pending = bool(change.tag_changes)
        if not change.update_request:
            self._tags(track, change)
            return
        request = change.update_request

        def answered(updated: dict[str, Any]) -> None:
            state = updated.get("State")
            track.progress.call, track.progress.state = "update", state
            track.progress.complete = not change.tag_changes
            if state in rules.SETTLED_STATES:
                self._settled(track, change)
            else:
                settled = self._on_settled_of(track, lambda: self._settled(track, change))
                self._watch(track, uuid, SETTLED, "update", updated, settled)

        self._send(
            track,
            "update",
            lambda: self.api.update(request),
            answered,
            announce=f"{track.change.address}: updating {uuid}",
        )

    def _settled(self, track: Track, change: Change) -> None:
        """The update settled: its tags now (whether Lambda tags a mapping mid-transition is
        not documented), else it is done."""
        if change.tag_changes:
            self._tags(track, change)
        else:
            self._maybe_done(track)

    def _tags(self, track: Track, change: Change) -> None:
        tags = change.tag_changes or {}

        def converge() -> None:
            if tags.get("set"):
                self.api.tag(tags["arn"], tags["set"])
            if tags.get("remove"):
                self.api.untag(tags["arn"], tags["remove"])

        def answered(_: Any) -> None:
            track.tags_pending = False
            track.progress.call = track.progress.call or "update"
            self._maybe_done(track)

        self._send(track, "tags", converge, answered)

    def _create_when_free(self, track: Track) -> None:
        change = track.change
        track.phase = "create"
        for uuid in change.wait_gone:  # still Deleting at plan time, holding this identity
            track.blocked_on.add(uuid)
            track.required.add(uuid)
            self._gone_waiters.setdefault(uuid, []).append(track)
            self._watch_gone(uuid, change.address)
        track.blocked_on -= self._gone
        if track.blocked_on:
            for uuid in track.blocked_on:
                self.watcher.block(uuid)
            return
        self._create(track)

    def _watch_gone(self, uuid: str, what: str) -> None:
        """Watch a mapping that no call of this plan deletes (it was Deleting already)."""
        if uuid in self._gone or uuid in self._watched_gone:
            return
        self._watched_gone.add(uuid)
        now = self.clock()
        wait = Wait(
            uuid,
            GONE,
            "delete",
            since=now,
            deadline=now + self.timeouts["delete"],
            on_end=lambda how, found: self._plan_time_gone(uuid, how, found),
            what=what,
            blocking=True,
        )
        self.watcher.add(wait, answered=False)

    def _plan_time_gone(self, uuid: str, how: str, found: Any) -> None:
        self._watched_gone.discard(uuid)
        if how == GONE:
            self._mark_gone(uuid)
        else:
            self._release(uuid, _wait_error(how, found, self.timeouts["delete"]))

    def _mark_gone(self, uuid: str) -> None:
        self._gone.add(uuid)
        self._release(uuid, None)

    def _release(self, uuid: str, error: Exception | None) -> None:
        """`uuid` is gone (`error` None), or will not be seen gone. Its waiters go on, but
        for those that cannot do without it gone (`required`): a create that merely might
        conflict goes on anyway, and AWS refuses it if the mapping still holds what it asks."""
        for track in self._gone_waiters.pop(uuid, []):
            track.blocked_on.discard(uuid)
            if track.outcome is not None:
                continue
            if error is not None and uuid in track.required:
                self._fail(track, error)
            elif track.blocked_on or track.started:
                continue
            elif track.phase == "create":
                self._create(track)
            elif track.phase == "update":
                self._update(track, track.change)

    def _create(self, track: Track) -> None:
        change = track.change
        assert change.create_request
        request = change.create_request

        def answered(created: dict[str, Any]) -> None:
            progress = track.progress
            progress.uuid, progress.state = created["UUID"], created.get("State")
            progress.call, progress.complete = "create", True
            if progress.state in rules.SETTLED_STATES:
                self._finish(track)
            else:
                self._watch(
                    track, created["UUID"], SETTLED, "create", created, self._on_settled_of(track)
                )

        def refused(exc: Exception) -> None:
            if classify(exc) is Failure.CONFLICT:
                self._adopt(track, exc)
            else:
                self._fail(track, exc)

        self._send(
            track,
            "create",
            lambda: self.api.create(request),
            answered,
            refused,
            f"{change.address}: creating",
        )

    # -- a create that found its mapping already there ----------------------------------------

    def _adopt(self, track: Track, conflict: Exception) -> None:
        """ResourceConflictException on create: typically an earlier attempt of this very
        create succeeded but its answer was lost (timeout, 5xx, then a retry). Read the
        mapping that holds the identity and make it the desired one instead of failing."""
        change = track.change

        def found(live: LiveMapping | None) -> None:
            if live is None:
                self._fail(track, conflict)  # another function's (e.g. a Kafka consumer group)
                return
            uuid = live.uuid
            if live.state == "Deleting":
                track.adopt_attempts += 1
                if track.adopt_attempts >= ADOPT_ATTEMPTS:
                    self._fail(track, conflict)
                    return
                self.progress(f"{change.address}: {uuid} is still being deleted; waiting to create")
                track.started = False
                track.blocked_on.add(uuid)
                track.required.add(uuid)
                self._gone.discard(uuid)
                self._gone_waiters.setdefault(uuid, []).append(track)
                self._watch_gone(uuid, change.address)
                return
            rest = reconcile_existing(change, live)
            if rest is not None and rest.action == "replace":
                names = ", ".join(f.name for f in rest.fields if f.forces_replacement)
                self._fail(
                    track,
                    Unreconcilable(
                        f"a mapping for this source already exists ({uuid}) and "
                        f"differs in {names}, which only re-creating it changes; plan again"
                    ),
                )
                return
            self.progress(f"{change.address}: already exists as {uuid}; adopting it")
            progress = track.progress
            progress.uuid, progress.adopted, progress.state = uuid, True, live.state
            if rest is not None:
                self._update(track, rest)
                return
            progress.complete = True
            if progress.state in rules.SETTLED_STATES:
                self._finish(track)
            else:
                self._watch(track, uuid, SETTLED, "create", None, self._on_settled_of(track))

        self._send(track, "read", lambda: self._find_existing(change, conflict), found)

    def _find_existing(self, change: Change, conflict: Exception) -> LiveMapping | None:
        """The mapping of this function and source that the conflict is about, if any (with
        its tags read when the create sets tags)."""
        assert isinstance(conflict, ClientError)
        message = conflict.response.get("Error", {}).get("Message", "")
        named = _UUID_IN_MESSAGE.search(message)
        candidates: list[dict[str, Any]] = []
        if named:
            try:
                candidates.append(self.api.get(named.group(1)))
            except ClientError as exc:
                if classify(exc) is not Failure.NOT_FOUND:
                    raise
        else:
            request = change.create_request or {}
            # Few mappings share one source; self-managed Kafka has no ARN to filter by.
            scope = (
                {"EventSourceArn": request["EventSourceArn"]}
                if request.get("EventSourceArn")
                else {"FunctionName": change.function_arn}
            )
            for page in self.api.pages(**scope):
                candidates.extend(page.get("EventSourceMappings", []))
        for item in candidates:
            live = LiveMapping.from_response(item)
            if live.function_arn == change.function_arn and live.source == change.event_source:
                if "Tags" in (change.create_request or {}) and live.esm_arn:
                    live.tags = self.api.list_tags(live.esm_arn)
                return live
        return None

    # -- settling -------------------------------------------------------------------------------

    def _watch(
        self,
        track: Track,
        uuid: str,
        goal: str,
        kind: str,
        answer: dict[str, Any] | None,
        on_end: Callable[[str, Any], None],
    ) -> None:
        now = self.clock()
        track.settling = True
        wait = Wait(
            uuid,
            goal,
            kind,
            since=now,
            deadline=now + self.timeouts[kind],
            on_end=on_end,
            what=track.change.address,
            baseline=(answer or {}).get("LastModified") if kind == "update" else None,
            blocking=uuid in self._gone_waiters,
        )
        self.watcher.add(wait, answered=answer is not None)

    def _on_settled_of(
        self, track: Track, then: Callable[[], None] | None = None
    ) -> Callable[[str, Any], None]:
        def ended(how: str, found: Any) -> None:
            track.settling = False
            if how == SETTLED:
                track.progress.state = found.get("State") or track.progress.state
                (then or (lambda: self._maybe_done(track)))()
                return
            self._fail(track, _wait_error(how, found, self.timeouts[track.phase]))

        return ended

    def _maybe_done(self, track: Track) -> None:
        if track.outcome is None and not track.settling and not track.tags_pending:
            track.progress.complete = True
            self._finish(track)

    def _report_waiting(self) -> None:
        if self.waiting is None or not len(self.watcher):
            return
        pending = self.watcher.pending
        elapsed = self.clock() - min(w.since for w in pending)
        if len(pending) == 1:
            self.waiting(f"{pending[0].what}: waiting ({elapsed:.0f} s)")
        else:
            self.waiting(f"{len(pending)} mappings settling: waiting ({elapsed:.0f} s)")

    # -- outcomes -------------------------------------------------------------------------------

    def _finish(self, track: Track) -> None:
        if track.outcome is None:
            track.outcome = finished(track.phase, track.change, track.progress)

    def _fail(self, track: Track, exc: Exception) -> None:
        if track.outcome is not None:
            return
        track.outcome = unfinished(track.phase, track.change, track.progress, exc)
        if track.phase == "delete" and track.change.uuid:
            self._release(track.change.uuid, exc)

    def _interrupted(self, track: Track) -> Outcome:
        """The outcome of a change an interrupt left unfinished."""
        if not track.started and not track.progress.complete:
            return not_started(track.phase or "create", track.change)
        return unfinished(track.phase, track.change, track.progress, None)


# A change the loop never came back to: a bug, reported rather than passed off as interrupted.
_STRANDED = RuntimeError("apply never came back to this change (a bug in esm: please report it)")


def _timeout_kind(step: str) -> str:
    return {"delete": "delete", "create": "create"}.get(step, "update")


def _wait_error(how: str, found: Any, seconds: float) -> Exception:
    if how == TIMED_OUT:
        return WaitTimeout(seconds)
    if isinstance(found, Exception):
        return found
    return WaitTimeout(seconds)
