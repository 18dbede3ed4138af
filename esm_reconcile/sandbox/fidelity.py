"""What AWS answers about event source mappings, where moto answers otherwise.

One WSGI layer in front of moto (`AwsLikeMappings`) that rewrites mapping requests and answers:
paging, the qualified FunctionArn, 409 on duplicates, and (opt-in) the seconds a mapping spends
in Creating/Updating/Enabling/Disabling/Deleting, with LastModified moving as AWS documents it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .references import function_label, qualified_function_arn
from .wsgi import (
    MAPPINGS_PATH,
    Answer,
    WSGIApp,
    bodyless_copy,
    call_app,
    in_use_error,
    lambda_error,
    lambda_region,
    read_body,
)

AWS_PAGE_LIMIT = 100  # ListEventSourceMappings returns at most 100 items whatever MaxItems says


@dataclass(frozen=True)
class MappingIdentity:
    """What makes two mappings duplicates for Lambda (reference B, "Uniqueness")."""

    function_arn: str  # qualified as requested: `f` and `f:live` are different functions
    source_arn: str | None
    brokers: frozenset[str]  # self-managed Kafka bootstrap servers (no source ARN)
    topics: tuple[str, ...]
    queues: tuple[str, ...]

    @classmethod
    def of(cls, function_arn: str | None, fields: dict[str, Any]) -> MappingIdentity | None:
        """From a Create request's fields or a mapping's; None if it has no function or source."""
        endpoints = (fields.get("SelfManagedEventSource") or {}).get("Endpoints") or {}
        servers = endpoints.get("KAFKA_BOOTSTRAP_SERVERS") or []
        source = fields.get("EventSourceArn") or None
        if function_arn is None or (source is None and not servers):
            return None
        return cls(
            function_arn,
            source,
            frozenset(servers),
            tuple(sorted(fields.get("Topics") or [])),
            tuple(sorted(fields.get("Queues") or [])),
        )

    def conflicts_with(self, other: MappingIdentity) -> bool:
        if (self.function_arn, self.topics, self.queues) != (
            other.function_arn,
            other.topics,
            other.queues,
        ):
            return False
        if self.source_arn is not None:
            return self.source_arn == other.source_arn
        # AWS refuses a broker list that merely overlaps an existing one [AWS-rec 2024].
        return bool(self.brokers & other.brokers)

    def conflict_message(self, uuid: str) -> str:
        """AWS's wording per source kind (reference B), naming the mapping to update instead."""
        tail = f"already exists. Please update or delete the existing mapping with UUID {uuid}"
        name = function_label(self.function_arn)
        topics = ",".join(self.topics)
        if self.source_arn is None:
            brokers = ",".join(sorted(self.brokers))
            return (
                f'An event source mapping with event source ("{brokers}"), function '
                f'("{self.function_arn}"), topics ("{topics}") {tail}'
            )
        service = self.source_arn.split(":")[2] if self.source_arn.count(":") >= 2 else ""
        if service == "sqs":
            return (
                f'An event source mapping with SQS arn (" {self.source_arn} ") '
                f'and function (" {name} ") {tail}'
            )
        if service == "kafka":
            return (
                f'An event source mapping with event source arn ("{self.source_arn}"), '
                f'function ("{self.function_arn}") and topics ("{topics}") {tail}'
            )
        return (
            f'The event source arn (" {self.source_arn} ") and function (" {name} ") '
            f"provided mapping {tail}"
        )


def _conflict(identity: MappingIdentity, uuid: str) -> Answer:
    return lambda_error(409, "ResourceConflictException", identity.conflict_message(uuid))


@dataclass
class _Transition:
    """A mapping between states: Creating, Updating, Enabling, Disabling or Deleting."""

    state: str
    until: float  # time.monotonic() when it settles
    # Deleting: the DELETE to forward to moto once settled (until then moto still has it).
    pending_delete: dict[str, Any] | None = None
    settles_at: float = 0.0  # time.time() when it settles: LastModified from then on


class AwsLikeMappings:
    """WSGI middleware that makes moto's answers about mappings what AWS answers.

    - List: moto returns every mapping in one page; AWS pages by <=100 with NextMarker. Paging
      the same way makes the sandbox cost what AWS costs.
    - FunctionArn: moto reports `f` for `f:$LATEST` and the version ARN for `f:alias`; AWS
      reports the qualified ARN the mapping was created with (reference E.9, A.4).
    - Duplicates: moto accepts any number of mappings for one (function, source); AWS answers
      409 ResourceConflictException naming the existing mapping (reference B).
    - With `settle_s` > 0, states: AWS takes seconds in Creating/Updating/Enabling/Disabling/
      Deleting and refuses Update/Delete meanwhile (ResourceInUseException); a Deleting
      mapping stays readable and still blocks a duplicate until it is really gone.
      LastModified is "the date that the event source mapping was last updated or that its
      state changed" (AWS API reference): a Create/Update/Delete answer carries the call's
      time, and once the transition settles, Get/List show the time it settled (epoch seconds
      as a float, as Lambda's JSON carries timestamps). moto stamps whole seconds at the call.

    Every mapping request runs under one lock: moto answers in milliseconds, and holding the
    lock across "check, forward to moto, record" keeps duplicates and transitions exact when
    the threaded server handles requests at once.
    """

    def __init__(self, app: WSGIApp, *, account: str, region: str, settle_s: float = 0.0) -> None:
        self.app = app
        self.account = account
        self.region = region  # for unsigned requests, which name none
        self.settle_s = settle_s
        self.function_arns: dict[str, str] = {}  # mapping UUID → qualified ARN it was made with
        self.transitions: dict[str, _Transition] = {}  # mapping UUID → its unsettled state
        # mapping UUID → the LastModified AWS would show (settle_s > 0, mappings changed here)
        self.last_modified: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if not path.startswith(MAPPINGS_PATH):
            if self.transitions:  # unlocked peek: with nothing pending, take no lock
                with self._lock:
                    self._settle_deletes()  # e.g. ListTags must not find a mapping now gone
            return self.app(environ, start_response)
        uuid = path[len(MAPPINGS_PATH) :].strip("/")
        body: Any = {}
        if method in ("POST", "PUT"):
            try:
                body = json.loads(read_body(environ) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return self.app(environ, start_response)  # moto words the error
        with self._lock:
            self._settle_deletes()
            if method == "POST" and not uuid:
                answer = self._create(environ, body)
            elif method == "PUT" and uuid:
                answer = self._update(environ, uuid, body)
            elif method == "DELETE" and uuid:
                answer = self._delete(environ, uuid)
            elif method == "GET" and not uuid:
                answer = self._list(environ)
            else:
                answer = self._present_answer(call_app(self.app, environ))
        return answer.send(start_response)

    # Requests

    def _create(self, environ: dict[str, Any], body: dict[str, Any]) -> Answer:
        region = lambda_region(environ, self.region) or self.region
        function_arn = qualified_function_arn(body.get("FunctionName"), region, self.account)
        identity = MappingIdentity.of(function_arn, body)
        if identity is not None:
            clash = self._clash(environ, identity)
            if clash is not None:
                return _conflict(identity, clash)
        answer = call_app(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or not data.get("UUID"):
            return answer
        uuid = data["UUID"]
        self._remember_function(uuid, data.get("FunctionArn"), body.get("FunctionName"))
        # AWS answers a disabled Create with "Disabled" at once (reference B); only an
        # enabled one goes through Creating.
        if self.settle_s:
            self.last_modified[uuid] = time.time()
        if self.settle_s and data.get("State") == "Enabled":
            self._begin(uuid, "Creating")
        return answer.with_data(self._present(data))

    def _update(self, environ: dict[str, Any], uuid: str, body: dict[str, Any]) -> Answer:
        if self._busy(uuid):
            return in_use_error("update", message_key="Message")
        current: Any = None
        if "FunctionName" in body or (self.settle_s and "Enabled" in body):
            current = self._present(call_app(self.app, bodyless_copy(environ, "GET")).data())
        if not isinstance(current, dict):
            current = {}
        if "FunctionName" in body:
            # Retargeting must not make a duplicate either [inferred].
            region = lambda_region(environ, self.region) or self.region
            function_arn = qualified_function_arn(body["FunctionName"], region, self.account)
            identity = MappingIdentity.of(function_arn, current)
            clash = self._clash(environ, identity, ignore=uuid) if identity else None
            if identity is not None and clash is not None:
                return _conflict(identity, clash)
        answer = call_app(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or not data.get("UUID"):
            return answer
        self._remember_function(uuid, data.get("FunctionArn"), body.get("FunctionName"))
        if self.settle_s:
            state = "Updating"
            before = current.get("State")
            # Only a flip of Enabled is Enabling/Disabling; anything else is Updating.
            if before in ("Enabled", "Disabled") and (before == "Enabled") != bool(body["Enabled"]):
                state = "Enabling" if body["Enabled"] else "Disabling"
            self._begin(uuid, state)
        return answer.with_data(self._present(data))

    def _delete(self, environ: dict[str, Any], uuid: str) -> Answer:
        if self._busy(uuid):
            return in_use_error("delete", message_key="Message")
        if not self.settle_s:
            answer = self._present_answer(call_app(self.app, environ))
            if answer.ok:
                self._forget(uuid)
            return answer
        # Answer like AWS (202, the mapping, State Deleting) but keep it in moto until settled.
        current = call_app(self.app, bodyless_copy(environ, "GET"))
        if not current.ok:
            return current  # unknown UUID: moto's 404 ResourceNotFoundException, like AWS
        self._begin(uuid, "Deleting", pending_delete=bodyless_copy(environ, "DELETE"))
        return current.with_data(self._present(current.data()), code=202)

    def _list(self, environ: dict[str, Any]) -> Answer:
        answer = call_app(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or "EventSourceMappings" not in data:
            return answer
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        limit = min(int(query.get("MaxItems", [AWS_PAGE_LIMIT])[0]), AWS_PAGE_LIMIT)
        start = int(query.get("Marker", ["0"])[0] or 0)
        items = data["EventSourceMappings"]
        data["EventSourceMappings"] = [self._present(item) for item in items[start : start + limit]]
        data.pop("NextMarker", None)
        if start + limit < len(items):
            data["NextMarker"] = str(start + limit)
        return answer.with_data(data)

    # State (callers hold self._lock)

    def _clash(
        self, environ: dict[str, Any], identity: MappingIdentity, ignore: str | None = None
    ) -> str | None:
        """The UUID of a mapping (Deleting ones included) that `identity` would duplicate.

        Asks moto rather than keeping an index, so mappings made behind the server's back
        (straight in moto's backend, as benchmarks seed) count too.
        """
        query = urllib.parse.urlencode({"EventSourceArn": identity.source_arn or ""})
        listed = call_app(self.app, bodyless_copy(environ, "GET", MAPPINGS_PATH, query)).data()
        for item in (listed or {}).get("EventSourceMappings", []):
            item = self._present(item)
            other = MappingIdentity.of(item.get("FunctionArn"), item)
            if item.get("UUID") != ignore and other and identity.conflicts_with(other):
                return str(item["UUID"])
        return None

    def _begin(self, uuid: str, state: str, pending_delete: dict[str, Any] | None = None) -> None:
        now = time.time()
        self.transitions[uuid] = _Transition(
            state, time.monotonic() + self.settle_s, pending_delete, now + self.settle_s
        )
        self.last_modified[uuid] = now  # the call's time, until the state changes again

    def _transition(self, uuid: str) -> _Transition | None:
        """The mapping's unsettled state, None once it has settled."""
        transition = self.transitions.get(uuid)
        if transition is None:
            return None
        if transition.pending_delete is None and time.monotonic() >= transition.until:
            del self.transitions[uuid]  # settled: from now on moto's state is the state
            self.last_modified[uuid] = transition.settles_at  # its state changed then
            return None
        return transition  # a Deleting one lasts until _settle_deletes forwards it

    def _busy(self, uuid: str) -> bool:
        return self._transition(uuid) is not None

    def _settle_deletes(self) -> None:
        """Forward to moto the deletes whose Deleting time is over."""
        now = time.monotonic()
        for uuid, transition in list(self.transitions.items()):
            if transition.pending_delete is not None and now >= transition.until:
                call_app(self.app, transition.pending_delete)
                self._forget(uuid)

    def _forget(self, uuid: str) -> None:
        self.function_arns.pop(uuid, None)
        self.transitions.pop(uuid, None)
        self.last_modified.pop(uuid, None)

    def _remember_function(self, uuid: str, reported: Any, requested: Any) -> None:
        if not isinstance(reported, str) or not isinstance(requested, str):
            return
        parts = reported.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]
        if len(parts) < 7:
            return
        # A name or name:qualifier gets the account and region moto reported.
        qualified = qualified_function_arn(requested, parts[3], parts[4])
        if qualified is not None:
            self.function_arns[uuid] = qualified

    def _present(self, item: Any) -> Any:
        """A mapping as AWS shows it: the FunctionArn it was made with, its unsettled state,
        when it last changed."""
        if not isinstance(item, dict) or not item.get("UUID"):
            return item
        uuid = item["UUID"]
        if uuid in self.function_arns and item.get("FunctionArn"):
            item["FunctionArn"] = self.function_arns[uuid]
        transition = self._transition(uuid)  # first: settling it moves LastModified
        if transition is not None:
            item["State"] = transition.state
        if uuid in self.last_modified:
            item["LastModified"] = self.last_modified[uuid]
        return item

    def _present_answer(self, answer: Answer) -> Answer:
        data = answer.data()
        if not answer.ok or not isinstance(data, dict):
            return answer
        return answer.with_data(self._present(data))
