"""The one fake of the mapping API (engine.protocol.MappingApi), for Applier tests that a
Stubber cannot serve: a Stubber answers in a fixed order, which concurrent calls cannot keep.

`FakeLambda` keeps mappings by UUID with AWS's states (reference B): a Create, Update or Delete
leaves the mapping in transition for `settle_polls` looks (Gets, or List sweeps), or for
`settle_seconds` of real time; a deleted mapping is gone (ResourceNotFound) once it settles.
A mapping reads back as AWS returns it (`aws_shapes.readback_of_create`), with a LastModified
that moves on every call and every settling, as AWS's does. List pages hold PAGE_SIZE mappings.
A test scripts errors per operation in `script`; `calls` records when every call started and
ended, `gone_at` and `settled_at` when each transition ended.

Below it: plan changes on SQS queues of the function `worker`, and an Applier that polls fast.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from esm_reconcile.apply import Applier
from esm_reconcile.plan import Change
from tests.aws_shapes import ACCOUNT, REGION, readback_of_create

FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:worker"
OTHER_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other"
IN_TRANSITION = ("Creating", "Updating", "Enabling")
PAGE_SIZE = 100


def client_error(code: str, message: str, status: int = 400, op: str = "Op") -> ClientError:
    """The ClientError boto3 raises for an AWS error answer."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


def not_found() -> ClientError:
    return client_error("ResourceNotFoundException", "not found", 404)


@dataclass
class Call:
    op: str  # create, get, update, delete, list or list_tags
    uuid: str | None
    started: float
    ended: float = 0.0
    source: str | None = None  # a create's EventSourceArn


@dataclass
class FakeLambda:
    """Thread-safe: every worker of an Applier may call it at once."""

    settle_polls: int = 1
    settle_seconds: float = 0.0  # when set, transitions end by time instead of by polls
    call_seconds: float = 0.0  # how long each call takes (real time), to make overlap visible
    mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)  # UUID -> looks until settled
    deleting: set[str] = field(default_factory=set)
    settle_until: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    gone_at: dict[str, float] = field(default_factory=dict)  # UUID -> when a delete ended it
    settled_at: dict[str, float] = field(default_factory=dict)  # UUID -> when it last settled
    # op -> errors to raise on its next calls, in order (then behave normally)
    script: dict[str, list[ClientError]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    ticks: Iterator[int] = field(default_factory=lambda: itertools.count(1))  # LastModified

    # -- what a test sets up and looks at ------------------------------------------------------

    def add(
        self, uuid: str, function: str, source: str, state: str = "Enabled", **settings: Any
    ) -> None:
        """A mapping that exists before the apply, in `state`, with these request settings."""
        request = {"FunctionName": function, "EventSourceArn": source, **settings}
        self.mappings[uuid] = {**readback_of_create(request, uuid), "State": state}
        self._touch(uuid)

    def in_transition(self, uuid: str, looks: int) -> None:
        """`uuid` stays in its state (Updating, Deleting...) for `looks` more looks."""
        if self.mappings[uuid]["State"] == "Deleting":
            self.deleting.add(uuid)
        self.pending[uuid] = looks

    def ops(self, op: str) -> list[Call]:
        return [c for c in self.calls if c.op == op]

    # -- the API ------------------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._call("create", None, source=request.get("EventSourceArn")) as call:
            for item in self.mappings.values():
                if (item["FunctionArn"], item["EventSourceArn"]) == (
                    request["FunctionName"],
                    request["EventSourceArn"],
                ):
                    raise client_error(
                        "ResourceConflictException",
                        f'An event source mapping with SQS arn (" {item["EventSourceArn"]} '
                        f'") and function (" worker ") already exists. Please update or '
                        f"delete the existing mapping with UUID {item['UUID']}",
                        409,
                    )
            uuid = f"00000000-0000-0000-0000-{next(self.ids):012d}"
            call.uuid = uuid
            self.mappings[uuid] = {**readback_of_create(request, uuid), "State": "Creating"}
            self._start_transition(uuid)
            return dict(self.mappings[uuid])

    def get(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        with self._call("get", UUID):
            self._settle_by_time()
            if UUID not in self.mappings:
                raise not_found()
            self._observe(UUID)
            if UUID not in self.mappings:
                raise not_found()
            return dict(self.mappings[UUID])

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        changes = dict(request)
        UUID = changes.pop("UUID")  # noqa: N806
        with self._call("update", UUID):
            item = self.mappings[UUID]
            if item["State"] != "Enabled":
                raise client_error("ResourceInUseException", "Cannot update: in use")
            item.update(changes)
            item["State"] = "Updating"
            self._start_transition(UUID)
            return dict(item)

    def delete(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        with self._call("delete", UUID):
            if UUID not in self.mappings:
                raise not_found()
            item = self.mappings[UUID]
            item["State"] = "Deleting"
            self.deleting.add(UUID)
            self._start_transition(UUID)
            return dict(item)

    def list_page(self, marker: str | None, **scope: str) -> dict[str, Any]:
        """One page of List: PAGE_SIZE mappings from `marker` (an index) on, filtered like
        AWS's EventSourceArn / FunctionName filters."""
        with self._call("list", None):
            self._settle_by_time()
            start = int(marker or 0)
            if start == 0:  # a sweep observes every mapping, as a Get observes one
                for uuid in list(self.mappings):
                    self._observe(uuid)
            items = [
                dict(m)
                for m in self.mappings.values()
                if all(
                    m.get(k.replace("FunctionName", "FunctionArn")) == v for k, v in scope.items()
                )
            ]
            page: dict[str, Any] = {"EventSourceMappings": items[start : start + PAGE_SIZE]}
            if start + PAGE_SIZE < len(items):
                page["NextMarker"] = str(start + PAGE_SIZE)
            return page

    def pages(self, **scope: str) -> Iterator[dict[str, Any]]:
        marker: str | None = None
        while True:
            page = self.list_page(marker, **scope)
            yield page
            marker = page.get("NextMarker")
            if not marker:
                return

    def list_tags(self, arn: str) -> dict[str, str]:
        with self._call("list_tags", None):
            return {}

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        with self._call("tag", None):
            pass

    def untag(self, arn: str, keys: list[str]) -> None:
        with self._call("untag", None):
            pass

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        raise AssertionError(f"the engine called {operation} outside the mapping API")

    # -- the state machine --------------------------------------------------------------------

    @contextmanager
    def _call(self, op: str, uuid: str | None, source: str | None = None) -> Iterator[Call]:
        """One API call: recorded, `call_seconds` long (outside the lock, so that calls can
        overlap), failing if the script says so, else its body runs under the lock."""
        call = Call(op, uuid, time.monotonic(), source=source)
        with self.lock:
            self.calls.append(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            scripted = self.script.get(op)
            failure = scripted.pop(0) if scripted else None
        try:
            if self.call_seconds:
                time.sleep(self.call_seconds)
            if failure is not None:
                raise failure
            with self.lock:
                yield call
        finally:
            with self.lock:
                self.in_flight -= 1
                call.ended = time.monotonic()

    def _settle_by_time(self) -> None:
        """With settle_seconds, a transition ends that long after the mutating call."""
        if not self.settle_seconds:
            return
        now = time.monotonic()
        for uuid, until in list(self.settle_until.items()):
            if now >= until:
                self.pending[uuid] = 0
                del self.settle_until[uuid]
                if uuid in self.deleting:
                    self._remove(uuid)
                else:
                    self._settle(uuid)

    def _settle(self, uuid: str) -> None:
        """A create's or update's transition ends: the mapping is Enabled."""
        self.mappings[uuid]["State"] = "Enabled"
        self._touch(uuid)
        self.settled_at[uuid] = time.monotonic()

    def _remove(self, uuid: str) -> None:
        """A deleted mapping's transition ends: it is gone."""
        del self.mappings[uuid]
        self.deleting.discard(uuid)
        self.gone_at[uuid] = time.monotonic()

    def _touch(self, uuid: str) -> None:
        """LastModified moves, as AWS's does on every update and state change."""
        self.mappings[uuid]["LastModified"] = float(next(self.ticks))

    def _start_transition(self, uuid: str) -> None:
        self._touch(uuid)
        self.pending[uuid] = 10**9 if self.settle_seconds else self.settle_polls
        if self.settle_seconds:
            self.settle_until[uuid] = time.monotonic() + self.settle_seconds

    def _observe(self, uuid: str) -> None:
        """One look at a mapping: a pending transition comes one look closer to its end."""
        if self.pending.get(uuid, 0) > 0:
            self.pending[uuid] -= 1
        elif uuid in self.deleting:
            self._remove(uuid)
        elif self.mappings[uuid]["State"] in IN_TRANSITION:
            self._settle(uuid)


# -- changes to apply against it ----------------------------------------------------------------


def queue(i: int | str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:q{i}"


def create(i: int | str, function: str = FN, **settings: Any) -> Change:
    return Change(
        "create",
        f"worker[{queue(i)}]",
        function,
        queue(i),
        None,
        kind="sqs",
        create_request={"FunctionName": function, "EventSourceArn": queue(i), **settings},
    )


def delete(uuid: str, i: int | str) -> Change:
    return Change("delete", f"worker[{queue(i)}]", FN, queue(i), uuid, kind="sqs")


def replace_of(uuid: str, i: int | str) -> Change:
    """A replace of mapping `uuid` on queue i by one with batch size 5."""
    return Change(
        "replace",
        f"worker[{queue(i)}]",
        FN,
        queue(i),
        uuid,
        kind="sqs",
        create_request={"FunctionName": FN, "EventSourceArn": queue(i), "BatchSize": 5},
    )


def applier(fake: FakeLambda, **kwargs: Any) -> Applier:
    """An Applier on the fake that polls every millisecond or two (real time)."""
    kwargs.setdefault("poll_start", 0.001)
    kwargs.setdefault("poll_max", 0.002)
    return Applier(fake, **kwargs)
