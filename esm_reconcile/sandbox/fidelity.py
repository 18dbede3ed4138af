"""What AWS answers about event source mappings, where moto answers otherwise.

One WSGI layer in front of moto (`AwsLikeMappings`) that rewrites mapping requests and answers:
paging, the qualified FunctionArn, 409 on duplicates, and (opt-in) the seconds a mapping spends
in Creating/Updating/Enabling/Disabling/Deleting, with LastModified moving as AWS documents it.
Mappings of the kinds moto cannot host (MSK, self-managed Kafka, MQ, DocumentDB, Kinesis
consumers) are kept here (`hosted.HostedMappings`) and answered in full, tags included; moto's
own mappings get AWS's per-kind defaults added (`aws_answers.as_aws_shows`).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from . import aws_answers
from .aws_answers import Refusal
from .hosted import HostedMapping, HostedMappings
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
    status_line,
)

AWS_PAGE_LIMIT = 100  # ListEventSourceMappings returns at most 100 items whatever MaxItems says
TAGS_PATH = "/2017-03-31/tags/"
FUNCTIONS_PATH = "/2015-03-31/functions/"


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


def _refused(refusal: Refusal) -> Answer:
    return lambda_error(refusal.status, refusal.code, refusal.message)


def _json(code: int, data: Any) -> Answer:
    body = json.dumps(data).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", str(uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return Answer(status_line(code), headers, body)


def _kafka_source(fields: dict[str, Any]) -> set[str]:
    """A Kafka source: the cluster ARN, or the bootstrap servers (any overlap is the same)."""
    if fields.get("EventSourceArn"):
        return {fields["EventSourceArn"]}
    endpoints = (fields.get("SelfManagedEventSource") or {}).get("Endpoints") or {}
    return set(endpoints.get("KAFKA_BOOTSTRAP_SERVERS") or [])


@dataclass
class _Transition:
    """A mapping between states: Creating, Updating, Enabling, Disabling or Deleting."""

    state: str
    until: float  # time.monotonic() when it settles
    # Deleting: what really deletes it once settled (until then it is still there).
    pending_delete: Callable[[], Any] | None = None
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
        # The kinds moto cannot host (aws_answers.HOSTED_KINDS) live here instead.
        self.hosted = HostedMappings(account)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if not path.startswith(MAPPINGS_PATH):
            if self.transitions:  # unlocked peek: with nothing pending, take no lock
                with self._lock:
                    self._settle_deletes()  # e.g. ListTags must not find a mapping now gone
            if path.startswith(TAGS_PATH) and self.hosted.mappings:
                with self._lock:
                    answer = self._hosted_tags(environ, path[len(TAGS_PATH) :])
                if answer is not None:
                    return answer.send(start_response)
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
            region = lambda_region(environ, self.region) or self.region
            hosted = self.hosted.get(region, uuid) if uuid else None
            if method == "POST" and not uuid:
                kind = aws_answers.kind_of(body)
                sourceless = not (body.get("EventSourceArn") or body.get("SelfManagedEventSource"))
                if kind in aws_answers.HOSTED_KINDS or sourceless:
                    answer = self._create_hosted(environ, region, kind, body)
                else:
                    answer = self._create(environ, body)
            elif hosted is not None:
                answer = self._hosted_request(environ, method, hosted, body)
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
        try:
            aws_answers.check_destination(body)  # moto accepts what AWS refuses here (E.5)
        except Refusal as refusal:
            return _refused(refusal)
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
        try:
            aws_answers.check_destination(body)
        except Refusal as refusal:
            return _refused(refusal)
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
        deleting = bodyless_copy(environ, "DELETE")
        # Answer like AWS (202, the mapping, State Deleting) but keep it in moto until settled.
        current = call_app(self.app, bodyless_copy(environ, "GET"))
        if not current.ok:
            return current  # unknown UUID: moto's 404 ResourceNotFoundException, like AWS
        self._begin(uuid, "Deleting", pending_delete=lambda: call_app(self.app, deleting))
        return current.with_data(self._present(current.data()), code=202)

    def _list(self, environ: dict[str, Any]) -> Answer:
        answer = call_app(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or "EventSourceMappings" not in data:
            return answer
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        limit = min(int(query.get("MaxItems", [AWS_PAGE_LIMIT])[0]), AWS_PAGE_LIMIT)
        start = int(query.get("Marker", ["0"])[0] or 0)
        items = data["EventSourceMappings"] + self._hosted_listed(environ, query)
        data["EventSourceMappings"] = [self._present(item) for item in items[start : start + limit]]
        data.pop("NextMarker", None)
        if start + limit < len(items):
            data["NextMarker"] = str(start + limit)
        return answer.with_data(data)

    # The kinds moto cannot host (callers hold self._lock)

    def _create_hosted(
        self, environ: dict[str, Any], region: str, kind: str | None, body: dict[str, Any]
    ) -> Answer:
        if kind is None:
            return _refused(Refusal("Unrecognized event source."))  # [AWS-rec]
        function_arn = qualified_function_arn(body.get("FunctionName"), region, self.account)
        try:
            aws_answers.check_create(kind, body)  # AWS checks the request before the function
        except Refusal as refusal:
            return _refused(refusal)
        if function_arn is None or not self._function_exists(environ, function_arn):
            return _refused(Refusal("Function does not exist"))  # [AWS-rec] 400, not 404
        identity = MappingIdentity.of(function_arn, body)
        if identity is not None:
            clash = self._hosted_clash(region, identity)
            if clash is not None:
                return _conflict(identity, clash)
        group = self._group_clash(region, kind, body)
        if group is not None:
            return group
        try:
            mapping = self.hosted.create(region, kind, body, function_arn)
        except Refusal as refusal:
            return _refused(refusal)
        uuid = mapping.record["UUID"]
        if self.settle_s:
            self.last_modified[uuid] = mapping.record["LastModified"]
            if mapping.record["State"] == "Enabled":
                self._begin(uuid, "Creating")
        return _json(202, self._present(dict(mapping.record)))

    def _hosted_request(
        self, environ: dict[str, Any], method: str, mapping: HostedMapping, body: dict[str, Any]
    ) -> Answer:
        uuid = mapping.record["UUID"]
        if method == "GET":
            return _json(200, self._present(dict(mapping.record)))
        if method == "DELETE":
            if self._busy(uuid):
                return in_use_error("delete", message_key="Message")
            # AWS answers 202 with the mapping, State Deleting (reference B).
            shown = self._present(dict(mapping.record))
            shown["State"] = "Deleting"
            if self.settle_s:
                self._begin(uuid, "Deleting", pending_delete=lambda: self.hosted.forget(uuid))
            else:
                self.hosted.forget(uuid)
                self._forget(uuid)
            return _json(202, shown)
        if method != "PUT":
            return lambda_error(405, "MethodNotAllowedException", "Method not allowed.")
        if self._busy(uuid):
            return in_use_error("update", message_key="Message")
        function_arn = None
        if "FunctionName" in body:
            region = mapping.region
            function_arn = qualified_function_arn(body["FunctionName"], region, self.account)
            if function_arn is None or not self._function_exists(environ, function_arn):
                return _refused(Refusal("Function does not exist"))
            identity = MappingIdentity.of(function_arn, mapping.record)
            clash = self._hosted_clash(region, identity, ignore=uuid) if identity else None
            if identity is not None and clash is not None:
                return _conflict(identity, clash)
        before = mapping.record["State"]
        try:
            self.hosted.update(mapping, body, function_arn)
        except Refusal as refusal:
            return _refused(refusal)
        if self.settle_s:
            state = "Updating"
            if "Enabled" in body and before != mapping.record["State"]:
                state = "Enabling" if body["Enabled"] else "Disabling"
            self._begin(uuid, state)
        return _json(202, self._present(dict(mapping.record)))

    def _hosted_listed(self, environ: dict[str, Any], query: dict[str, list[str]]) -> list[Any]:
        region = lambda_region(environ, self.region) or self.region
        source = query.get("EventSourceArn", [""])[0] or None
        function = query.get("FunctionName", [""])[0] or None
        function_arn = qualified_function_arn(function, region, self.account) if function else None
        if function is not None and function_arn is None:
            return []
        return [dict(item) for item in self.hosted.listed(region, source, function_arn)]

    def _hosted_tags(self, environ: dict[str, Any], arn: str) -> Answer | None:
        """ListTags/TagResource/UntagResource of a hosted mapping; None for anything else."""
        mapping = self.hosted.by_esm_arn(urllib.parse.unquote(arn))
        if mapping is None:
            return None
        method = environ.get("REQUEST_METHOD", "")
        if method == "GET":
            return _json(200, {"Tags": dict(mapping.tags)})
        if method == "POST":
            try:
                tags = json.loads(read_body(environ) or b"{}").get("Tags") or {}
            except (ValueError, AttributeError):
                tags = None
            if not isinstance(tags, dict):
                return _refused(Refusal("Tags must be a map.", code="ValidationException"))
            mapping.tags.update(tags)
            return Answer(status_line(204), [], b"")
        if method == "DELETE":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            for key in query.get("tagKeys", []):
                mapping.tags.pop(key, None)  # untagging a missing key is a no-op [AWS-rec]
            return Answer(status_line(204), [], b"")
        return None

    def _function_exists(self, environ: dict[str, Any], function_arn: str) -> bool:
        """Whether moto has the function (and its version or alias)."""
        parts = function_arn.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]
        name = parts[6]
        query = urllib.parse.urlencode({"Qualifier": parts[7]}) if len(parts) > 7 else ""
        path = FUNCTIONS_PATH + urllib.parse.quote(name, safe="")
        return call_app(self.app, bodyless_copy(environ, "GET", path, query)).ok

    def _hosted_clash(
        self, region: str, identity: MappingIdentity, ignore: str | None = None
    ) -> str | None:
        """The UUID of a hosted mapping (Deleting ones included) `identity` would duplicate."""
        for mapping in self.hosted.mappings.values():
            record = mapping.record
            other = MappingIdentity.of(record.get("FunctionArn"), record)
            if (
                mapping.region == region
                and record["UUID"] != ignore
                and other is not None
                and identity.conflicts_with(other)
            ):
                return str(record["UUID"])
        return None

    def _group_clash(self, region: str, kind: str, body: dict[str, Any]) -> Answer | None:
        """409 when a Kafka consumer group is taken on the same source [3p 2024]."""
        config_key = aws_answers.ANSWERS[kind].consumer_group_config
        group = ((body.get(config_key) or {}) if config_key else {}).get("ConsumerGroupId")
        if not config_key or not group:
            return None
        source = _kafka_source(body)
        for mapping in self.hosted.mappings.values():
            record = mapping.record
            if mapping.region != region or mapping.kind != kind:
                continue
            if (record.get(config_key) or {}).get("ConsumerGroupId") != group:
                continue
            if not (_kafka_source(record) & source):
                continue
            shown = ",".join(sorted(source))
            config = config_key[0].lower() + config_key[1:]
            return lambda_error(
                409,
                "ResourceConflictException",
                f'An event source mapping with event source ("{shown}"), {config}.consumerGroupId '
                f'("{group}") already exists. Please update or delete the existing mapping '
                f"with UUID {record['UUID']}",
            )
        return None

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

    def _begin(
        self, uuid: str, state: str, pending_delete: Callable[[], Any] | None = None
    ) -> None:
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
                transition.pending_delete()
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
        aws_answers.as_aws_shows(item)  # a hosted mapping is already shown so
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
