"""Execute a Plan: ordering, waiting until AWS settles, retries, partial failure, interrupts.

Order (SPEC): deletes (and the delete half of replaces) first, each waited until gone; then
updates; then creates. A replace never creates before its old mapping is gone, because AWS
refuses a second mapping for one (function, source).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import rules
from .aws import describe_error, error_code
from .plan import Change, Plan

CREATE_TIMEOUT = 600.0
UPDATE_TIMEOUT = 600.0
DELETE_TIMEOUT = 300.0


class WaitTimeout(Exception):
    pass


class Interrupted(Exception):
    pass


@dataclass
class Outcome:
    change: Change
    status: str  # "done", "failed", "skipped"
    message: str = ""
    step: str = ""  # for a replace: which half failed
    created_uuid: str | None = None  # the plan stays as it was made; new UUIDs land here


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted and not self.by_status("failed") and not self.by_status("skipped")
        )

    @property
    def changed(self) -> bool:
        return bool(self.by_status("done"))


class Applier:
    def __init__(
        self,
        lambda_client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] = lambda _msg: None,
        waiting: Callable[[str], None] | None = None,
        poll_start: float = 1.0,
        poll_max: float = 10.0,
        timeouts: dict[str, float] | None = None,
    ) -> None:
        self.client = lambda_client
        self.sleep, self.clock, self.progress = sleep, clock, progress
        self.waiting = waiting  # elapsed-time reports while polling; None: stay quiet
        self.poll_start, self.poll_max = poll_start, poll_max
        self.timeouts = {
            "create": CREATE_TIMEOUT,
            "update": UPDATE_TIMEOUT,
            "delete": DELETE_TIMEOUT,
            **(timeouts or {}),
        }
        self.stop_requested = False

    # -- the plan ----------------------------------------------------------------------------

    def apply(self, plan: Plan) -> ApplyResult:
        outcomes: dict[int, Outcome] = {}  # by id(change); a replace's second half overwrites
        interrupted = False
        phases: list[tuple[str, list[Change]]] = [
            ("delete", [c for c in plan.changes if c.action in ("delete", "replace")]),
            ("update", [c for c in plan.changes if c.action == "update"]),
            ("create", [c for c in plan.changes if c.action in ("create", "replace")]),
        ]
        with self._interruptible():
            for phase, changes in phases:
                for change in changes:
                    earlier = outcomes.get(id(change))
                    if earlier is not None and earlier.status != "done":
                        continue  # the delete half of this replace failed: never create
                    if self.stop_requested:
                        interrupted = True
                        note = "interrupted before it started"
                        if earlier is not None:
                            note = "interrupted: old mapping deleted, new one not created"
                        outcomes[id(change)] = Outcome(change, "skipped", note, phase)
                        continue
                    outcomes[id(change)] = self._run(phase, change)
        return ApplyResult(
            [outcomes[id(c)] for c in plan.changes if id(c) in outcomes],
            interrupted or self.stop_requested,
        )

    def _run(self, phase: str, change: Change) -> Outcome:
        step = {"delete": self.delete, "update": self.update, "create": self.create}[phase]
        try:
            created = step(change)
        except Interrupted:
            return Outcome(change, "skipped", "interrupted while waiting", phase)
        except WaitTimeout as exc:
            return Outcome(change, "failed", str(exc), phase)
        except (ClientError, BotoCoreError) as exc:
            return Outcome(change, "failed", str(describe_error(change.address, exc)), phase)
        return Outcome(change, "done", step=phase, created_uuid=created)

    # -- steps -------------------------------------------------------------------------------

    def delete(self, change: Change) -> None:
        assert change.uuid
        self.progress(f"{change.address}: deleting {change.uuid}")
        try:
            self._call_when_settled(
                change.uuid,
                "delete",
                lambda: self.client.delete_event_source_mapping(UUID=change.uuid),
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        self.wait_gone(change.uuid, change.address)

    def update(self, change: Change) -> None:
        assert change.uuid
        if change.update_request:
            self.progress(f"{change.address}: updating {change.uuid}")
            request = change.update_request
            self._call_when_settled(
                change.uuid, "update", lambda: self.client.update_event_source_mapping(**request)
            )
            self.wait_settled(change.uuid, change.address, "update")
        if change.tag_changes:
            self.converge_tags(change.tag_changes)

    def create(self, change: Change) -> str:
        assert change.create_request
        for uuid in change.wait_gone:
            self.wait_gone(uuid, change.address)
        self.progress(f"{change.address}: creating")
        created = self.client.create_event_source_mapping(**change.create_request)
        self.wait_settled(created["UUID"], change.address, "create")
        return created["UUID"]

    def converge_tags(self, tags: dict[str, Any]) -> None:
        if tags.get("set"):
            self.client.tag_resource(Resource=tags["arn"], Tags=tags["set"])
        if tags.get("remove"):
            self.client.untag_resource(Resource=tags["arn"], TagKeys=tags["remove"])

    # -- waiting -----------------------------------------------------------------------------

    def _call_when_settled(self, uuid: str, kind: str, call: Callable[[], Any]) -> Any:
        """Call; on ResourceInUseException (mid-transition) wait until settled and retry."""
        deadline = self.clock() + self.timeouts[kind]
        while True:
            try:
                return call()
            except ClientError as exc:
                if error_code(exc) != "ResourceInUseException" or self.clock() >= deadline:
                    raise
            self.wait_settled(uuid, uuid, kind)

    def _polls(self, what: str, kind: str) -> Iterator[None]:
        """Yield once per poll, sleeping with jittered backoff, until the kind's timeout."""
        deadline = self.clock() + self.timeouts[kind]
        delay = self.poll_start
        started = self.clock()
        while True:
            yield
            if self.stop_requested:
                raise Interrupted()
            if self.clock() >= deadline:
                raise WaitTimeout(f"{what}: still not settled after {self.timeouts[kind]:.0f} s")
            self.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.poll_max)
            if self.waiting is not None:
                self.waiting(f"{what}: waiting ({self.clock() - started:.0f} s)")

    def wait_settled(self, uuid: str, what: str, kind: str) -> str:
        for _ in self._polls(what, kind):
            state = self.client.get_event_source_mapping(UUID=uuid).get("State", "")
            if state in rules.SETTLED_STATES:
                return state
        raise AssertionError("unreachable")

    def wait_gone(self, uuid: str, what: str) -> None:
        for _ in self._polls(what, "delete"):
            try:
                self.client.get_event_source_mapping(UUID=uuid)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return
                raise

    # -- interrupts --------------------------------------------------------------------------

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """First Ctrl-C/SIGTERM: finish the call in flight, start no new one. Second: abort."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt()
            self.stop_requested = True
            self.progress("interrupt received: finishing the call in flight, starting no new one")

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
