"""The apply engine as it was before issue 11: a frozen copy, for benchmarks only.

Why this file exists: `benchmarks/scale.py --engine` measures the new apply engine ("submit,
then watch") side by side with the old one ("each worker holds one change through its call and
its whole wait, in three global phases") in one run, on fresh sandbox servers. The old engine
is being rewritten in place (esm_reconcile/apply.py, states.py, pool.py), so the baseline is
kept here, self-contained, so that it keeps working after those modules change. It is not
product code: nothing in esm_reconcile imports it, and it gets no fixes; if a stable module it
imports changes shape, adapt the import, never the behaviour.

Copied from git commit 1332f40f612e5f25a09a0d87653f54f1ad84cdec (`git show 1332f40:esm_reconcile/apply.py`,
`...:esm_reconcile/states.py`, `...:esm_reconcile/pool.py`; last changed in be87ea9):

- `Applier` and its helpers from esm_reconcile/apply.py, unchanged;
- `StateReader`, `is_transient` and their constants from esm_reconcile/states.py, unchanged;
- `run_all` and `interruptible` from esm_reconcile/pool.py, unchanged;
- `error_code` and `THROTTLING_CODES` (esm_reconcile/aws.py) and `mapping_pages` (esm_reconcile/
  live.py, with PAGE_SIZE and MAX_PAGES), copied too so that only the plan, outcome, model and
  rule modules are imported from the package.

Order of the original (its docstring): deletes (and the delete half of replaces) first, each
waited until gone; then updates; then creates. Each phase ends before the next starts. Within a
phase, changes run on a bounded pool of workers that share the run's rate limiter, and each
worker holds its change until AWS says it settled. Waits read states by Get, or from a shared
List sweep once enough mappings wait; a sweep only ever defers, a Get confirms every end.
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
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from esm_reconcile import rules
from esm_reconcile.diff import reconcile_existing
from esm_reconcile.errors import EsmError
from esm_reconcile.model import LiveMapping
from esm_reconcile.outcomes import ApplyResult, Outcome
from esm_reconcile.plan import Change, Plan
from esm_reconcile.step_progress import (
    Interrupted,
    StepProgress,
    Unreconcilable,
    WaitTimeout,
    finished,
    not_started,
    unfinished,
)

T = TypeVar("T")

COPIED_FROM = "1332f40f612e5f25a09a0d87653f54f1ad84cdec"


# -- from esm_reconcile/aws.py --------------------------------------------------------------------

THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return type(exc).__name__


# -- from esm_reconcile/live.py -------------------------------------------------------------------

PAGE_SIZE = 100
MAX_PAGES = 10_000


def mapping_pages(client: Any) -> Iterator[dict[str, Any]]:
    """Every page of one unfiltered ListEventSourceMappings, at most MAX_PAGES."""
    paginator = client.get_paginator("list_event_source_mappings")
    for count, page in enumerate(paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE})):
        if count == MAX_PAGES:
            raise EsmError(
                f"the Lambda endpoint {client.meta.endpoint_url} is still paging "
                f"ListEventSourceMappings after {MAX_PAGES} pages; refusing to go on"
            )
        yield page


# -- from esm_reconcile/pool.py -------------------------------------------------------------------


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


# -- from esm_reconcile/states.py -----------------------------------------------------------------

SWEEP_MIN_WAITERS = 4  # below this, Gets are as cheap and fresher
# A sweep of P pages is reused by everyone for P * this many seconds, so sweeping stays under
# about 1/this requests per second however many pages the region holds.
SECONDS_PER_SWEPT_PAGE = 0.5

# Even while sweeps say "in transition", every this-many-th look at a mapping is a Get: a List
# that lags far behind (LocalStack's can keep a deleted mapping Deleting for good) costs a few
# polls, never a timeout.
VERIFY_EVERY = 4

# Answers that say "not now" rather than "no": a poll that meets one simply polls again.
TRANSIENT_CODES = THROTTLING_CODES | {
    "ServiceException",
    "ServiceUnavailableException",
    "InternalFailure",
    "RequestTimeout",
}


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


class StateReader:
    """Reads one mapping for a waiter: by Get, or from a recent shared List sweep."""

    def __init__(self, lambda_client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.clock = lambda_client, clock
        self.lock = threading.Lock()
        self.sweep_lock = threading.Lock()
        self.waiters = 0
        self.pages = 1  # pages the last sweep took: the price of the next one
        self.snapshot: dict[str, dict[str, Any]] = {}
        self.snapshot_at = -math.inf
        self.deferred: dict[str, int] = {}  # sweep answers per mapping since its last Get
        self.gets = 0
        self.sweeps = 0

    @contextmanager
    def waiting(self) -> Iterator[None]:
        with self.lock:
            self.waiters += 1
        try:
            yield
        finally:
            with self.lock:
                self.waiters -= 1

    def read(self, uuid: str, since: float) -> dict[str, Any] | None:
        """The mapping as AWS describes it; None when AWS said "not now" (throttled, 5xx:
        poll again later). A mapping that does not exist raises ResourceNotFoundException, as
        Get does. A transition state may come from a sweep made after `since` (the waiter's
        previous look), or from one made in the last moment (see SECONDS_PER_SWEPT_PAGE)."""
        try:
            sweeping = self.waiters >= SWEEP_MIN_WAITERS and self.waiters > 2 * self.pages
            if sweeping and self.deferred.get(uuid, 0) < VERIFY_EVERY - 1:
                found = self._from_sweep(uuid, since)
                if found is not None and found.get("State") in rules.TRANSITION_STATES:
                    with self.lock:
                        self.deferred[uuid] = self.deferred.get(uuid, 0) + 1
                    return found
            with self.lock:
                self.deferred.pop(uuid, None)
                self.gets += 1
            return self.client.get_event_source_mapping(UUID=uuid)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                return None
            raise

    def _from_sweep(self, uuid: str, since: float) -> dict[str, Any] | None:
        with self.sweep_lock:  # one thread sweeps; the others wait and reuse its result
            recent = self.clock() - self.snapshot_at < self.pages * SECONDS_PER_SWEPT_PAGE
            if self.snapshot_at <= since and not recent:
                started = self.clock()
                snapshot: dict[str, dict[str, Any]] = {}
                pages = 0
                for page in mapping_pages(self.client):
                    pages += 1
                    for item in page.get("EventSourceMappings", []):
                        snapshot[item["UUID"]] = item
                self.snapshot, self.snapshot_at, self.pages = snapshot, started, max(1, pages)
                self.sweeps += 1
            return self.snapshot.get(uuid)


# -- from esm_reconcile/apply.py ------------------------------------------------------------------

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
            return not_started(phase, change)
        step = {"delete": self.delete, "update": self.update, "create": self.create}[phase]
        progress = StepProgress()
        try:
            step(change, progress)
        except Interrupted:
            return unfinished(phase, change, progress, None)
        except (WaitTimeout, Unreconcilable, ClientError, BotoCoreError) as exc:
            return unfinished(phase, change, progress, exc)
        return finished(phase, change, progress)

    # -- steps -------------------------------------------------------------------------------

    def delete(self, change: Change, progress: StepProgress) -> None:
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

    def update(self, change: Change, progress: StepProgress) -> None:
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

    def create(self, change: Change, progress: StepProgress, attempt: int = 1) -> None:
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
        self, change: Change, progress: StepProgress, conflict: ClientError, attempt: int
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
        progress: StepProgress | None = None,
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

    def wait_gone(self, uuid: str, what: str, progress: StepProgress | None = None) -> None:
        for previous in self._polls(what, "delete"):
            try:
                found = self.states.read(uuid, since=previous)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return
                raise
            if found is not None and progress is not None:
                progress.state = found.get("State") or progress.state


def connect_as_before(region: str, max_rps: float) -> Any:
    """esm_reconcile.aws.connect as this engine had it: botocore's standard retries (8 after
    the first try) on the Lambda client. The new engine turned those off and retries in
    esm_reconcile/engine/protocol.py; without them this engine would fail a throttled call."""
    from botocore.config import Config

    from esm_reconcile.answers import guard_answers
    from esm_reconcile.aws import (
        CONNECT_TIMEOUT,
        READ_TIMEOUT,
        AwsContext,
        RateLimiter,
        new_session,
    )

    session = new_session(None)
    config = Config(
        retries={"mode": "standard", "max_attempts": 8},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    limiter = RateLimiter(max_rps)
    lambda_client = session.client("lambda", region_name=region, config=config)
    sts_client = session.client("sts", region_name=region, config=config)
    lambda_client.meta.events.register("before-send.lambda", limiter.acquire)
    lambda_client.meta.events.register("needs-retry.lambda", limiter.observe)
    guard_answers(lambda_client)
    guard_answers(sts_client)
    return AwsContext(lambda_client, sts_client, limiter, region)
