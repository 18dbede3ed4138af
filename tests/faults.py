"""A WSGI fault injector for the Lambda API, placed in front of the sandbox's moto server.

It answers some Lambda requests with the errors AWS really gives under load or mid-change, so
tests can prove that plan/apply converge anyway:

- every k-th Lambda request: 429 TooManyRequestsException (Lambda's throttle);
- every k-th Lambda read (GET: List, Get, GetFunction, ListTags): 500 ServiceException;
- the first UpdateEventSourceMapping and the first DeleteEventSourceMapping of each UUID:
  400 ResourceInUseException, as AWS answers while a mapping is still transitioning;
- ambiguous creates: the first CreateEventSourceMapping of each identity is forwarded (so the
  mapping exists) and then answered 500 anyway, so the client cannot know it succeeded;
- ambiguous writes: likewise for the first UpdateEventSourceMapping and the first
  DeleteEventSourceMapping of each UUID (done, but answered 500);
- rejections: every create for a listed source, or every update/delete of a listed UUID, gets
  a permanent error (status, code and message as given).

Every decision is counted (`counts`) and every Lambda request made while armed is logged
(`events`), so a test can assert that its faults really fired and in which order things
happened. Thread-safe: the moto server serves each request on its own thread, and apply may run
a worker pool.

The injector starts disarmed, so the sandbox's own seeding (which also calls Lambda) is never
faulted; a test arms it around the code under test with `with injector.armed(): ...`.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from esm_reconcile import sandbox

MAPPINGS = sandbox.MAPPINGS_PATH
_UUID_PATH = re.compile(r"^/2015-03-31/event-source-mappings/([^/]+)/?$")

# Fault kinds, as keys of FaultInjector.counts.
THROTTLED = "throttled"
READ_FAILED = "read_500"
IN_USE = "in_use"
AMBIGUOUS_CREATE = "ambiguous_create"
AMBIGUOUS_WRITE = "ambiguous_write"
REJECTED = "rejected"
FAULT_KINDS = (THROTTLED, READ_FAILED, IN_USE, AMBIGUOUS_CREATE, AMBIGUOUS_WRITE, REJECTED)


@dataclass(frozen=True)
class Event:
    """One Lambda request as the injector saw it, with the status the client got."""

    at: float  # time.monotonic() when the request arrived
    operation: str  # e.g. "CreateEventSourceMapping"
    key: str  # the UUID for Get/Update/Delete, "function|source" for Create, else ""
    status: int
    fault: str | None  # the fault kind injected, None when the server answered
    uuid: str | None = None  # for a Create the server answered: the UUID it made
    states: tuple[str, ...] = ()  # the State of each mapping in the answer (Get: one, List: all)


def operation_of(method: str, path: str) -> str:
    """The Lambda operation a REST request is (only the ones tests tell apart are named)."""
    if path.rstrip("/") == MAPPINGS:
        return {"GET": "ListEventSourceMappings", "POST": "CreateEventSourceMapping"}.get(
            method, f"{method} {MAPPINGS}"
        )
    if _UUID_PATH.match(path):
        return {
            "GET": "GetEventSourceMapping",
            "PUT": "UpdateEventSourceMapping",
            "DELETE": "DeleteEventSourceMapping",
        }.get(method, f"{method} mapping")
    if path.startswith("/2015-03-31/functions/"):
        return "GetFunction" if method == "GET" else f"{method} function"
    if path.startswith("/2017-03-31/tags/"):
        return {"GET": "ListTags", "POST": "TagResource", "DELETE": "UntagResource"}.get(
            method, f"{method} tags"
        )
    return f"{method} {path}"


def identity_of(request: dict[str, Any]) -> str:
    """A create's (function, source) as one string: what AWS allows only one mapping for."""
    source = request.get("EventSourceArn") or json.dumps(
        request.get("SelfManagedEventSource"), sort_keys=True
    )
    extra = ",".join(request.get("Topics") or request.get("Queues") or [])
    return f"{request.get('FunctionName', '')}|{source}|{extra}"


def _read_mappings(data: Any) -> tuple[str | None, tuple[str, ...]]:
    """(UUID of a single mapping answered, State of every mapping in the answer)."""
    if not isinstance(data, dict):
        return None, ()
    items = data.get("EventSourceMappings", [data])
    return data.get("UUID"), tuple(str(i.get("State")) for i in items if isinstance(i, dict))


# A permanent error to answer: (HTTP status, error code, message).
Rejection = tuple[int, str, str]


def throttle_answer() -> sandbox.Answer:
    return sandbox.lambda_error(429, "TooManyRequestsException", "Rate exceeded")


def service_error_answer() -> sandbox.Answer:
    return sandbox.lambda_error(
        500, "ServiceException", "An internal error occurred (injected fault).", fault="Service"
    )


class FaultInjector:
    """WSGI middleware that fails Lambda requests as configured; see the module docstring.

    `throttle_every`/`fail_reads_every` = k faults every k-th request (0: never). No single call
    (botocore invocation, retries included) gets more than `max_faults_per_call` transient faults,
    so a test cannot fail on the odds of one call losing every retry; what is tested is how the
    code handles faults, not botocore's dice. Each throttle or 500 still costs a real retry.
    """

    def __init__(
        self,
        app: sandbox.WSGIApp | None = None,
        *,
        throttle_every: int = 0,
        fail_reads_every: int = 0,
        in_use_first: bool = False,
        ambiguous_creates: bool = False,
        ambiguous_writes: bool = False,
        reject_sources: dict[str, Rejection] | None = None,
        reject_uuids: dict[str, Rejection] | None = None,
        max_faults_per_call: int = 3,
    ) -> None:
        self.app = app
        self.throttle_every = throttle_every
        self.fail_reads_every = fail_reads_every
        self.in_use_first = in_use_first
        self.ambiguous_creates = ambiguous_creates
        self.ambiguous_writes = ambiguous_writes
        # Permanent failures: creates by EventSourceArn, updates/deletes by mapping UUID.
        self.reject_sources = dict(reject_sources or {})
        self.reject_uuids = dict(reject_uuids or {})
        self.max_faults_per_call = max_faults_per_call
        self.is_armed = False
        self.counts: Counter[str] = Counter()
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._requests = 0
        self._reads = 0
        self._per_call: Counter[str] = Counter()
        self._in_use_seen: set[tuple[str, str]] = set()
        self._ambiguous_seen: set[tuple[str, str]] = set()

    # -- wiring ------------------------------------------------------------------------------

    def wrap(self, app: sandbox.WSGIApp) -> FaultInjector:
        """For `sandbox(middleware=injector.wrap)`: the sandbox hands over its app to wrap."""
        self.app = app
        return self

    @contextlib.contextmanager
    def armed(self) -> Iterator[FaultInjector]:
        """Inject faults only inside this block (seeding and read-back stay fault-free)."""
        self.is_armed = True
        try:
            yield self
        finally:
            self.is_armed = False

    def faults(self) -> dict[str, int]:
        """Injected faults by kind (zeros included, so a test can assert each one fired)."""
        with self._lock:
            return {kind: self.counts[kind] for kind in FAULT_KINDS}

    def events_for(self, operation: str, key: str | None = None) -> list[Event]:
        with self._lock:
            return [
                e for e in self.events if e.operation == operation and (key is None or e.key == key)
            ]

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "FaultInjector has no app: pass app= or use wrap()"
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if not sandbox.is_lambda_request(environ):
            return self.app(environ, start_response)

        operation = operation_of(method, path)
        request: dict[str, Any] = {}
        if method in ("POST", "PUT"):
            # Read the body to learn the identity; the server gets it unread.
            try:
                request = json.loads(sandbox.read_body(environ) or b"{}") or {}
            except ValueError:
                request = {}
        match = _UUID_PATH.match(path)
        key = match.group(1) if match else ""
        if operation == "CreateEventSourceMapping":
            key = identity_of(request)
        call_id = environ.get("HTTP_AMZ_SDK_INVOCATION_ID") or str(uuidlib.uuid4())
        arrived = time.monotonic()

        fault, answer, forward_then_fail = self._decide(method, operation, key, request, call_id)
        if answer is not None:
            self._log(Event(arrived, operation, key, answer.code, fault))
            return answer.send(start_response)

        # Forward, keeping the answer so it can be logged (and, if ambiguous, replaced).
        forwarded = sandbox.call_app(self.app, environ)
        created: str | None = None
        states: tuple[str, ...] = ()
        if forwarded.ok and "EventSourceMapping" in operation:
            answered, states = _read_mappings(forwarded.data())
            created = answered if operation == "CreateEventSourceMapping" else None
        if forward_then_fail and forwarded.ok:
            # It happened, but the client hears a 500 and will retry it.
            kind = AMBIGUOUS_CREATE if operation == "CreateEventSourceMapping" else AMBIGUOUS_WRITE
            with self._lock:
                self.counts[kind] += 1
            self._log(Event(arrived, operation, key, 500, kind, created, states))
            return service_error_answer().send(start_response)
        self._log(Event(arrived, operation, key, forwarded.code, None, created, states))
        return forwarded.send(start_response)

    # -- deciding ----------------------------------------------------------------------------

    def _decide(
        self, method: str, operation: str, key: str, request: dict[str, Any], call_id: str
    ) -> tuple[str | None, sandbox.Answer | None, bool]:
        """(fault kind, answer to send instead of forwarding, forward-then-fail)."""
        with self._lock:
            if not self.is_armed:
                return None, None, False
            self._requests += 1
            transient_ok = self._per_call[call_id] < self.max_faults_per_call
            # Throttling comes first: AWS throttles before it looks at the request.
            if self.throttle_every and self._requests % self.throttle_every == 0 and transient_ok:
                self._per_call[call_id] += 1
                self.counts[THROTTLED] += 1
                return THROTTLED, throttle_answer(), False
            if method == "GET":
                self._reads += 1
                if (
                    self.fail_reads_every
                    and self._reads % self.fail_reads_every == 0
                    and transient_ok
                ):
                    self._per_call[call_id] += 1
                    self.counts[READ_FAILED] += 1
                    return READ_FAILED, service_error_answer(), False
            rejection = None
            if operation == "CreateEventSourceMapping":
                rejection = self.reject_sources.get(request.get("EventSourceArn", ""))
            elif operation in ("UpdateEventSourceMapping", "DeleteEventSourceMapping"):
                rejection = self.reject_uuids.get(key)
            if rejection is not None:
                status, code, message = rejection
                self.counts[REJECTED] += 1
                return REJECTED, sandbox.lambda_error(status, code, message), False
            ambiguous = (
                self.ambiguous_creates
                if operation == "CreateEventSourceMapping"
                else self.ambiguous_writes
                and operation in ("UpdateEventSourceMapping", "DeleteEventSourceMapping")
            )
            if ambiguous and (operation, key) not in self._ambiguous_seen:
                self._ambiguous_seen.add((operation, key))
                return None, None, True  # counted once the server has really done it
            if self.in_use_first and operation in (
                "UpdateEventSourceMapping",
                "DeleteEventSourceMapping",
            ):
                first = (operation, key)
                if first not in self._in_use_seen:
                    self._in_use_seen.add(first)
                    self.counts[IN_USE] += 1
                    verb = "update" if operation == "UpdateEventSourceMapping" else "delete"
                    return IN_USE, sandbox.in_use_error(verb), False
            return None, None, False

    def _log(self, event: Event) -> None:
        with self._lock:
            if self.is_armed:  # the test's own seeding and read-back are not its evidence
                self.events.append(event)
