"""Execute a Plan: ordering, bounded concurrency, waiting until AWS settles, retries, partial
failure, interrupts.

Order (SPEC): deletes (and the delete half of replaces) first, each waited until gone; then
updates; then creates. Each phase ends before the next starts, so a replace never creates before
its old mapping is gone (AWS refuses a second mapping for one identity), and a Kafka consumer
group freed by a delete is free before any create asks for it. Within a phase, changes concern
different mappings and run on a bounded pool of workers that share the run's rate limiter.
"""

from __future__ import annotations

import functools
import math
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from . import rules
from .aws import describe_error, error_code
from .diff import reconcile_existing
from .model import LiveMapping, function_of_address
from .plan import Change, Plan
from .render import terminal_safe
from .states import StateReader, is_transient

T = TypeVar("T")

CREATE_TIMEOUT = 600.0
UPDATE_TIMEOUT = 600.0
DELETE_TIMEOUT = 300.0
# A new execution role takes a while to be usable by Lambda; Terraform retries these for minutes.
PROPAGATION_TIMEOUT = 120.0
IAM_PROPAGATION_MESSAGES = (
    "cannot be assumed by lambda",
    "execution role does not have permissions",
    "ensure the role can perform",
)
_UUID_IN_MESSAGE = re.compile(
    r"UUID\s+([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)


class WaitTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"still not settled after {seconds:.0f} s")


class Interrupted(Exception):
    pass


class Unreconcilable(Exception):
    """A create met an existing mapping that cannot be made the desired one in place."""


@dataclass
class Outcome:
    """What became of one change. "done": AWS accepted every call the change needs (its mapping
    exists, changed, or is being deleted), even if apply stopped watching before it settled;
    "failed": a call was refused or could not be made; "skipped": not (fully) carried out
    because apply was interrupted."""

    change: Change
    status: str  # "done", "failed", "skipped"
    message: str = ""
    step: str = ""  # for a replace: which half failed
    created_uuid: str | None = None  # the plan stays as it was made; new UUIDs land here
    # A create met ResourceConflictException and made the mapping already there the desired one.
    adopted: bool = False
    # Done, but still in transition (Creating, Updating, Deleting...) when apply stopped watching
    # it: interrupted, timed out, or its state could not be read.
    settling: bool = False

    @property
    def uuid(self) -> str | None:
        """The mapping's UUID after the change (the new one for a create or replace)."""
        return (
            self.created_uuid if self.change.action in ("create", "replace") else self.change.uuid
        )

    def to_json(self) -> dict[str, Any]:
        """The SPEC's per-outcome shape, plus `adopted` and `settling`."""
        return {
            "address": self.change.address,
            "action": self.change.action,
            "status": self.status,
            "message": self.message,
            "uuid": self.uuid,
            "adopted": self.adopted,
            "settling": self.settling,
        }


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def settling(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "done" and o.settling]

    @property
    def adopted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "done" and o.adopted]

    @property
    def ok(self) -> bool:
        """Everything done and settled: an apply that stopped watching a mapping mid-transition
        has not shown that it converged."""
        return not (
            self.interrupted
            or self.by_status("failed")
            or self.by_status("skipped")
            or self.settling
        )

    @property
    def changed(self) -> bool:
        return bool(self.by_status("done"))

    def summary(self) -> dict[str, int]:
        """Counts of what AWS accepted, by action; adopted mappings are counted apart (not as
        created or replaced); `settling` counts the done ones still in transition."""
        done = self.by_status("done")
        made = [o for o in done if not o.adopted]
        return {
            "created": sum(o.change.action == "create" for o in made),
            "adopted": len(self.adopted),
            "updated": sum(o.change.action == "update" for o in done),
            "replaced": sum(o.change.action == "replace" for o in made),
            "deleted": sum(o.change.action == "delete" for o in done),
            "failed": len(self.by_status("failed")),
            "skipped": len(self.by_status("skipped")),
            "settling": len(self.settling),
        }


def report_lines(result: ApplyResult) -> list[str]:
    """The end-of-apply report: counts, then what needs a reader's attention, change by change.
    Each line is one line, safe for a terminal: messages carry whatever an endpoint answered."""
    counts = result.summary()
    head = f"Apply {'complete' if result.ok else 'incomplete'}: {counts['created']} created, "
    if counts["adopted"]:
        head += f"{counts['adopted']} adopted, "
    head += (
        f"{counts['updated']} updated, {counts['replaced']} replaced, {counts['deleted']} deleted"
    )
    if counts["settling"]:
        head += f" ({counts['settling']} still settling)"
    lines = [head + "."]
    for outcome in result.adopted:
        lines.append(f"  adopted: {outcome.change.address}: {outcome.message}")
    for outcome in result.settling:
        lines.append(
            f"  still settling: {outcome.change.address} ({outcome.step}): {outcome.message}"
        )
    for outcome in result.by_status("failed"):
        lines.append(f"  failed: {outcome.change.address} ({outcome.step}): {outcome.message}")
    for outcome in result.by_status("skipped"):
        lines.append(f"  not done: {outcome.change.address}: {outcome.message}")
    if result.interrupted:
        lines.append("Interrupted: re-run apply to converge.")
    elif result.settling:
        lines.append("Still settling: re-run apply (or plan) to see them settle and converge.")
    return [terminal_safe(line) for line in lines]


@dataclass
class _Progress:
    """What AWS has accepted so far of one step of one change (each worker keeps its own), so
    that a step that stops early is reported by what was really done."""

    uuid: str | None = None  # the mapping the accepted calls concern
    call: str = ""  # the last mutating call AWS accepted: "create", "update" or "delete"
    complete: bool = False  # AWS accepted every call of the step; at most settling is left
    adopted: bool = False
    state: str | None = None  # the mapping's state as last seen

    def accepted(self) -> str:
        """What AWS accepted, in words."""
        if self.adopted:
            found = f"a mapping for this source already existed ({self.uuid})"
            if self.call == "update":
                return f"{found}; esm adopted it and AWS accepted its update to the spec"
            return f"{found} and matches the spec; esm adopted it"
        if self.call == "create":
            return f"AWS created {self.uuid}"
        return f"AWS accepted the {self.call} of {self.uuid}"

    def unsettled(self, stopped: Exception | None) -> str:
        """Why settling was not seen: interrupted (None), a timeout, or a failed state read."""
        state = self.state or {"create": "Creating", "update": "Updating"}.get(self.call, "")
        state = state or "Deleting"
        if stopped is None:
            return f"it was still {state} when apply was interrupted"
        if isinstance(stopped, WaitTimeout):
            return f"it was still {state}, not settled after {stopped.seconds:.0f} s"
        return f"its state could not be read: {_reason(stopped)}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, (ClientError, BotoCoreError)):
        failure = describe_error("", exc)
        return f"{failure.code}: {failure.aws_message}"
    return str(exc)


def is_propagation_error(exc: Exception) -> bool:
    """AWS refusing a role it will accept once IAM has propagated (reference A.5)."""
    if not isinstance(exc, ClientError) or error_code(exc) != "InvalidParameterValueException":
        return False
    message = exc.response.get("Error", {}).get("Message", "").lower()
    return any(text in message for text in IAM_PROPAGATION_MESSAGES)


class Applier:
    def __init__(
        self,
        lambda_client: Any,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] = lambda _msg: None,
        waiting: Callable[[str], None] | None = None,
        poll_start: float = 1.0,
        poll_max: float = 10.0,
        timeouts: dict[str, float] | None = None,
        parallelism: int = 1,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = lambda_client
        self.clock, self.progress = clock, progress
        self.stop = stop if stop is not None else threading.Event()
        # By default a pause ends early when a stop is requested, so Ctrl-C is prompt.
        self.sleep = sleep if sleep is not None else self.stop.wait
        self.waiting = waiting  # elapsed-time reports while polling; None: stay quiet
        self.poll_start, self.poll_max = poll_start, poll_max
        self.timeouts = {
            "create": CREATE_TIMEOUT,
            "update": UPDATE_TIMEOUT,
            "delete": DELETE_TIMEOUT,
            **(timeouts or {}),
        }
        self.parallelism = max(1, parallelism)
        self.states = StateReader(lambda_client, clock)

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        if value:
            self.stop.set()
        else:
            self.stop.clear()

    # -- the plan ----------------------------------------------------------------------------

    def apply(self, plan: Plan) -> ApplyResult:
        outcomes: dict[int, Outcome] = {}  # by id(change); a replace's second half overwrites
        phases: list[tuple[str, list[Change]]] = [
            ("delete", [c for c in plan.changes if c.action in ("delete", "replace")]),
            ("update", [c for c in plan.changes if c.action == "update"]),
            ("create", [c for c in plan.changes if c.action in ("create", "replace")]),
        ]
        with interruptible(self.stop, self.progress):
            for phase, changes in phases:
                # The delete half of a replace failed or was skipped: never create.
                runnable = [
                    c for c in changes if id(c) not in outcomes or outcomes[id(c)].status == "done"
                ]
                for change, outcome in zip(runnable, self._run_phase(phase, runnable), strict=True):
                    outcomes[id(change)] = outcome
        return ApplyResult(
            [outcomes[id(c)] for c in plan.changes if id(c) in outcomes],
            self.stop_requested,
        )

    def _run_phase(self, phase: str, changes: list[Change]) -> list[Outcome]:
        """Run one phase's changes on the pool; outcomes in the changes' order."""
        if not changes:
            return []
        workers = min(self.parallelism, len(changes))
        calls = [functools.partial(self._run, phase, change) for change in changes]
        return run_all(workers, "esm-apply", calls)

    def _run(self, phase: str, change: Change) -> Outcome:
        if self.stop_requested:
            return Outcome(change, "skipped", _not_started(phase, change), phase)
        step = {"delete": self.delete, "update": self.update, "create": self.create}[phase]
        progress = _Progress()
        try:
            step(change, progress)
        except Interrupted:
            return _unfinished(phase, change, progress, None)
        except (WaitTimeout, Unreconcilable, ClientError, BotoCoreError) as exc:
            return _unfinished(phase, change, progress, exc)
        return _finished(phase, change, progress)

    # -- steps -------------------------------------------------------------------------------

    def delete(self, change: Change, progress: _Progress) -> None:
        assert change.uuid
        uuid = change.uuid
        self.progress(f"{change.address}: deleting {uuid}")
        progress.uuid = uuid
        try:
            deleted = self._call(
                change.address,
                "delete",
                lambda: self.client.delete_event_source_mapping(UUID=uuid),
                uuid=uuid,
            )
            progress.state = deleted.get("State")
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        progress.call, progress.complete = "delete", True
        self.wait_gone(uuid, change.address, progress)

    def update(self, change: Change, progress: _Progress) -> None:
        assert change.uuid
        uuid = change.uuid
        progress.uuid = uuid
        if change.update_request:
            self.progress(f"{change.address}: updating {uuid}")
            request = change.update_request
            updated = self._call(
                change.address,
                "update",
                lambda: self.client.update_event_source_mapping(**request),
                uuid=uuid,
            )
            progress.call, progress.state = "update", updated.get("State")
            progress.complete = not change.tag_changes  # else the tags are still to change
            self.wait_settled(
                uuid, change.address, "update", reported=updated.get("State"), progress=progress
            )
        if change.tag_changes:
            self.converge_tags(change.tag_changes)
            progress.call = progress.call or "update"
        progress.complete = True

    def create(self, change: Change, progress: _Progress, attempt: int = 1) -> None:
        assert change.create_request
        request = change.create_request
        for uuid in change.wait_gone:
            self.wait_gone(uuid, change.address)
        self.progress(f"{change.address}: creating")
        try:
            created = self._call(
                change.address, "create", lambda: self.client.create_event_source_mapping(**request)
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException":
                raise
            self._adopt(change, progress, exc, attempt)
            return
        progress.uuid, progress.state = created["UUID"], created.get("State")
        progress.call, progress.complete = "create", True
        self.wait_settled(
            created["UUID"],
            change.address,
            "create",
            reported=created.get("State"),
            progress=progress,
        )

    def converge_tags(self, tags: dict[str, Any]) -> None:
        if tags.get("set"):
            self.client.tag_resource(Resource=tags["arn"], Tags=tags["set"])
        if tags.get("remove"):
            self.client.untag_resource(Resource=tags["arn"], TagKeys=tags["remove"])

    # -- a create that found its mapping already there --------------------------------------

    def _adopt(
        self, change: Change, progress: _Progress, conflict: ClientError, attempt: int
    ) -> None:
        """ResourceConflictException on create: typically an earlier attempt of this very
        create succeeded but its answer was lost (timeout, 5xx, then a retry). Re-read the
        mapping that holds the identity and make it the desired one instead of failing."""
        existing = self._find_existing(change, conflict)
        if existing is None:
            raise conflict  # held by another function's mapping (e.g. a Kafka consumer group)
        uuid = existing["UUID"]
        if existing.get("State") == "Deleting":
            if attempt >= 3:
                raise conflict
            self.progress(f"{change.address}: {uuid} is still being deleted; waiting to create")
            self.wait_gone(uuid, change.address)
            self.create(change, progress, attempt + 1)
            return
        live = LiveMapping.from_response(existing)
        if "Tags" in (change.create_request or {}) and live.esm_arn:
            live.tags = self.client.list_tags(Resource=live.esm_arn).get("Tags", {})
        rest = reconcile_existing(change, live)
        if rest is not None and rest.action == "replace":
            names = ", ".join(f.name for f in rest.fields if f.forces_replacement)
            raise Unreconcilable(
                f"a mapping for this source already exists ({uuid}) and "
                f"differs in {names}, which only re-creating it changes; plan again"
            )
        self.progress(f"{change.address}: already exists as {uuid}; adopting it")
        progress.uuid, progress.adopted, progress.state = uuid, True, existing.get("State")
        if rest is None:
            progress.complete = True
            self.wait_settled(uuid, change.address, "create", progress=progress)
        else:
            self.update(rest, progress)

    def _find_existing(self, change: Change, conflict: ClientError) -> dict[str, Any] | None:
        """The mapping of this function and source that the conflict is about, if any."""
        named = _UUID_IN_MESSAGE.search(conflict.response.get("Error", {}).get("Message", ""))
        candidates: list[dict[str, Any]] = []
        if named:
            try:
                candidates.append(self.client.get_event_source_mapping(UUID=named.group(1)))
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
        else:
            request = change.create_request or {}
            # Few mappings share one source; self-managed Kafka has no ARN to filter by.
            scope = (
                {"EventSourceArn": request["EventSourceArn"]}
                if request.get("EventSourceArn")
                else {"FunctionName": change.function_arn}
            )
            paginator = self.client.get_paginator("list_event_source_mappings")
            for page in paginator.paginate(**scope):
                candidates.extend(page.get("EventSourceMappings", []))
        for item in candidates:
            live = LiveMapping.from_response(item)
            if live.function_arn == change.function_arn and live.source == change.event_source:
                return item
        return None

    # -- calling and waiting -----------------------------------------------------------------

    def _call(self, what: str, kind: str, call: Callable[[], Any], uuid: str | None = None) -> Any:
        """Call, retrying what boto3 does not: ResourceInUseException (mid-transition: wait
        until settled, then again) and a role not yet usable (IAM propagation: back off)."""
        deadline = self.clock() + self.timeouts[kind]
        propagation_deadline = self.clock() + PROPAGATION_TIMEOUT
        delay = self.poll_start
        while True:
            try:
                return call()
            except (ClientError, BotoCoreError) as exc:
                now = self.clock()
                if uuid and error_code(exc) == "ResourceInUseException" and now < deadline:
                    # Back off first: a Get may already say settled while the call is still
                    # refused, and that must not become a tight loop.
                    delay = self._backoff(delay)
                    self.wait_settled(uuid, what, kind)
                    continue
                if kind != "delete" and is_propagation_error(exc) and now < propagation_deadline:
                    self.progress(f"{what}: the execution role is not usable yet; retrying")
                elif not (is_transient(exc) and now < deadline):
                    raise  # throttling and 5xx beyond boto3's retries: back off, within budget
                delay = self._backoff(delay)

    def _backoff(self, delay: float) -> float:
        """Sleep about `delay` (±20% jitter, so workers don't poll in step); the next delay.
        Raises Interrupted when a stop was requested meanwhile."""
        self.sleep(delay * random.uniform(0.8, 1.2))
        if self.stop_requested:
            raise Interrupted()
        return min(delay * 2, self.poll_max)

    def _polls(self, what: str, kind: str) -> Iterator[float]:
        """Yield once per poll (the time of the previous one), sleeping with jittered backoff
        in between, until the kind's timeout."""
        deadline = self.clock() + self.timeouts[kind]
        delay = self.poll_start
        started = self.clock()
        previous = -math.inf
        with self.states.waiting():
            while True:
                now = self.clock()
                yield previous
                previous = now
                if self.stop_requested:
                    raise Interrupted()
                if self.clock() >= deadline:
                    raise WaitTimeout(self.timeouts[kind])
                delay = self._backoff(delay)
                if self.waiting is not None:
                    self.waiting(f"{what}: waiting ({self.clock() - started:.0f} s)")

    def wait_settled(
        self,
        uuid: str,
        what: str,
        kind: str,
        reported: str | None = None,
        progress: _Progress | None = None,
    ) -> str:
        """Poll until Enabled or Disabled. `reported` is the State the mutating call answered
        with: settled needs no poll (some emulators settle at once); a transition (AWS always
        answers Creating/Updating/...) needs no immediate poll either, only later ones. Each
        state seen is noted in `progress`, for the report should the wait end early."""
        if reported in rules.SETTLED_STATES:
            return reported
        for previous in self._polls(what, kind):
            if reported in rules.TRANSITION_STATES and previous == -math.inf:
                continue  # AWS just said it is in transition
            found = self.states.read(uuid, since=previous)
            if found is not None and progress is not None:
                progress.state = found.get("State") or progress.state
            if found is not None and found.get("State", "") in rules.SETTLED_STATES:
                return found["State"]
        raise AssertionError("unreachable")

    def wait_gone(self, uuid: str, what: str, progress: _Progress | None = None) -> None:
        for previous in self._polls(what, "delete"):
            try:
                found = self.states.read(uuid, since=previous)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return
                raise
            if found is not None and progress is not None:
                progress.state = found.get("State") or progress.state


# -- outcomes in words -------------------------------------------------------------------------


def _no_mapping_now(change: Change) -> str:
    return f"{change.event_source} has NO mapping for {function_of_address(change.address)} now"


def _not_started(phase: str, change: Change) -> str:
    if phase == "create" and change.action == "replace":
        return (
            f"interrupted: the old mapping {change.uuid} was deleted and the new one not "
            f"created, so {_no_mapping_now(change)}; re-run apply"
        )
    return "interrupted before it started"


def _finished(phase: str, change: Change, progress: _Progress) -> Outcome:
    created = progress.uuid if phase == "create" else None
    message = ""
    if progress.adopted:
        message = progress.accepted()
        if change.action == "replace":
            message = f"the old mapping {change.uuid} was deleted; {message}"
    return Outcome(change, "done", message, phase, created, adopted=progress.adopted)


def _unfinished(
    phase: str, change: Change, progress: _Progress, stopped: Exception | None
) -> Outcome:
    """The outcome of a step that ended early: interrupted (`stopped` None) or by an error.

    A step whose calls AWS all accepted is done, only not seen settling. A replace is done only
    once its create was accepted: between its halves, its source has no mapping at all, and
    the message says so in plain words.
    """
    status = "skipped" if stopped is None else "failed"
    reason = "interrupted while waiting" if stopped is None else _reason(stopped)
    created = progress.uuid if phase == "create" and progress.complete else None
    if change.action == "replace" and phase == "delete":
        if not progress.complete:
            if stopped is None:
                note = "interrupted before the old mapping was deleted; nothing was changed"
                return Outcome(change, status, note, phase)
            kept = f"the old mapping {change.uuid} is unchanged and the new one was not created"
            return Outcome(change, status, f"{reason} ({kept})", phase)
        message = (
            f"AWS accepted the delete of the old mapping {change.uuid}, but "
            f"{progress.unsettled(stopped)}; the new one was not created, so "
            f"{change.event_source} will have NO mapping for "
            f"{function_of_address(change.address)} once it is gone: re-run apply"
        )
        return Outcome(change, status, message, phase)
    if progress.complete:
        message = f"{progress.accepted()}; {progress.unsettled(stopped)}"
        if change.action == "replace":
            message = f"the old mapping {change.uuid} was deleted; {message}"
        return Outcome(
            change, "done", message, phase, created, adopted=progress.adopted, settling=True
        )
    if change.action == "replace":  # the create half, not accepted
        if stopped is None:
            message = (
                f"the old mapping {change.uuid} was deleted; interrupted before the new one "
                f"was created, so {_no_mapping_now(change)}; re-run apply"
            )
        elif isinstance(stopped, Unreconcilable):  # the source does have a mapping, not ours
            message = f"the old mapping {change.uuid} was deleted; the new one could not be "
            message += f"created: {reason}"
        else:
            message = (
                f"the old mapping {change.uuid} was deleted; the new one could not be created, "
                f"so {_no_mapping_now(change)}: {reason}"
            )
        return Outcome(change, status, message, phase)
    if progress.call:  # settings accepted, tags not yet changed
        reason += f" ({progress.accepted()}, but its tags were not changed)"
    return Outcome(change, status, reason, phase)


def run_all(workers: int, prefix: str, calls: list[Callable[[], T]]) -> list[T]:
    """Run calls on a pool of threads; results in order. Waits in a loop with a short timeout
    so the main thread stays free to take a Ctrl-C. A second Ctrl-C (KeyboardInterrupt from
    the signal handler) leaves at once: no new call starts, and calls in flight are abandoned
    rather than waited for (the CLI then exits without joining them)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix)
    futures = [pool.submit(call) for call in calls]
    try:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [f.result() for f in futures]


def apply_all(runs: list[tuple[Applier, Plan]], stop: threading.Event) -> ApplyResult:
    """Apply the plans of several regions or accounts at once, one thread each (each Applier
    has its own clients and rate limit); one Ctrl-C stops them all through `stop`."""
    if len(runs) == 1:
        applier, plan = runs[0]
        return applier.apply(plan)
    with interruptible(stop, runs[0][0].progress):
        calls = [functools.partial(applier.apply, plan) for applier, plan in runs]
        results = run_all(len(runs), "esm-scope", calls)
    return ApplyResult(
        [o for r in results for o in r.outcomes], any(r.interrupted for r in results)
    )


@contextmanager
def interruptible(stop: threading.Event, progress: Callable[[str], None]) -> Iterator[None]:
    """First Ctrl-C/SIGTERM: set `stop` (calls in flight finish, none start). Second: abort.

    Signal handlers belong to the main thread; elsewhere this does nothing and whoever runs
    the main thread owns `stop`.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt()
        stop.set()
        progress("interrupt received: finishing the calls in flight, starting no new ones")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
