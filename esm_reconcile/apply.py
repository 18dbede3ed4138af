"""Execute a Plan: ordering, bounded concurrency, waiting until AWS settles, retries, partial
failure, interrupts.

Order (SPEC): deletes (and the delete half of replaces) first, each waited until gone; then
updates; then creates. Each phase ends before the next starts, so a replace never creates before
its old mapping is gone (AWS refuses a second mapping for one identity), and a Kafka consumer
group freed by a delete is free before any create asks for it. Within a phase, changes concern
different mappings and run on a bounded pool of workers that share the run's rate limiter.

Here: the Applier, which carries out the steps (calls, retries, waits, adopting a mapping a
create finds already there). What became of each change is in outcomes.py (Outcome,
ApplyResult, the report) and step_progress.py (what a step got AWS to accept, in words); the
threads and Ctrl-C handling are in pool.py.
"""

from __future__ import annotations

import functools
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import rules
from .aws import error_code
from .diff import reconcile_existing
from .model import LiveMapping
from .outcomes import ApplyResult, Outcome
from .outcomes import report_lines as report_lines  # re-exported: the CLI and tests import it here
from .plan import Change, Plan
from .pool import apply_all as apply_all  # re-exported: the app layer imports it here
from .pool import interruptible, run_all
from .states import StateReader, is_transient
from .step_progress import (
    Interrupted,
    StepProgress,
    Unreconcilable,
    WaitTimeout,
    finished,
    not_started,
    unfinished,
)

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
