"""The domain model: what a spec asks for, what AWS has, and how the two are matched.

Plain data and the only parsing of ARNs and function references in the package. A mapping's
identity is (function ARN, source): the source is its EventSourceArn, or for self-managed Kafka
its bootstrap servers, plus the topic or queue where the kind has one (`source_label`).
Nothing here reads files or calls AWS; diff, plan and apply depend on this, never on the YAML
loader or validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .rules import Kind
from .spec import from_api

# -- ARNs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: str) -> Arn | None:
    """`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` split into its parts; None when not one."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return Arn(*parts[1:])


def function_scope(function_arn: str) -> tuple[str | None, str | None]:
    """(region, account) a Lambda function ARN names, each None where it names none: a
    mapping lives in its function's region and account."""
    parsed = parse_arn(function_arn)
    if parsed is None or parsed.service != "lambda":
        return None, None
    return parsed.region or None, parsed.account or None


def kind_of_arn(arn: str) -> Kind | None:
    """Source kind from an EventSourceArn (reference A.1); None when unrecognised."""
    parsed = parse_arn(arn)
    if parsed is None:
        return None
    service, resource = parsed.service, parsed.resource
    if service == "sqs":
        return Kind.SQS_FIFO if resource.endswith(".fifo") else Kind.SQS
    if service == "kinesis" and resource.startswith("stream/"):
        return Kind.KINESIS
    if service == "dynamodb" and resource.startswith("table/") and "/stream/" in resource:
        return Kind.DYNAMODB
    if service == "kafka":
        return Kind.MSK
    if service == "mq" and resource.startswith("broker:"):
        return Kind.MQ
    if service == "rds" and resource.startswith("cluster:"):
        return Kind.DOCUMENTDB
    return None


# -- function references -----------------------------------------------------------------------
# AWS keys mappings by the function ARN it returns: a bare name or unqualified ARN comes back
# unqualified; `name:$LATEST`, `name:3` and `name:alias` come back with that qualifier
# (reference A.4). So `name` and `name:live` are different functions here too.

_NAME = r"[a-zA-Z0-9_-]{1,64}"
_QUALIFIER = r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}"
_REF = re.compile(
    rf"^(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z]{{2}}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):"
    rf"(?P<account>\d{{12}}):function:|(?P<partial_account>\d{{12}}):function:)?"
    rf"(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)


@dataclass(frozen=True)
class FunctionRef:
    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None
    partition: str | None = None

    def arn(self, region: str, account: str, partition: str = "aws") -> str:
        base = (
            f"arn:{self.partition or partition}:lambda:{self.region or region}:"
            f"{self.account or account}:function:{self.name}"
        )
        return f"{base}:{self.qualifier}" if self.qualifier else base


def parse_function_ref(ref: str) -> FunctionRef:
    """`name`, `name:qualifier`, `ACCOUNT:function:name[:q]` or a full function ARN."""
    match = _REF.fullmatch(ref)  # `$` alone would also accept a trailing newline
    if match is None:
        raise ValueError("not a function reference: use name, name:qualifier, or a function ARN")
    return FunctionRef(
        name=match["name"],
        qualifier=match["qualifier"],
        region=match["region"],
        account=match["account"] or match["partial_account"],
        partition=match["partition"],
    )


def function_label(function_arn: str) -> str:
    """`arn:...:function:name[:q]` → `name[:q]`, for addresses of unlisted mappings."""
    return function_arn.split(":function:", 1)[-1]


# -- identity ----------------------------------------------------------------------------------


def kind_of(settings: dict[str, Any]) -> Kind | None:
    """Source kind of a mapping's settings (spec form)."""
    if settings.get("self_managed_event_source") and not settings.get("event_source_arn"):
        return Kind.SELF_MANAGED_KAFKA
    arn = settings.get("event_source_arn")
    return kind_of_arn(arn) if arn else None


def source_label(settings: dict[str, Any]) -> str:
    """The mapping's source as people read it: an ARN, or kafka://brokers, plus topic/queue."""
    if settings.get("event_source_arn"):
        base = settings["event_source_arn"]
    else:
        servers = (settings.get("self_managed_event_source") or {}).get("endpoints", {})
        base = "kafka://" + ",".join(sorted(servers.get("KAFKA_BOOTSTRAP_SERVERS", [])))
    extra = (settings.get("topics") or settings.get("queues") or [None])[0]
    return f"{base}#{extra}" if extra else base


def address(function_label: str, source: str) -> str:
    """A mapping's address as plans print it and --target takes it."""
    return f"{function_label}[{source}]"


def function_of_address(change_address: str) -> str:
    """`orders-handler[arn:...]` → `orders-handler`."""
    return change_address.split("[", 1)[0]


# -- what the spec asks for --------------------------------------------------------------------


@dataclass
class DesiredMapping:
    function: str  # the function reference as the spec names it
    kind: Kind
    settings: dict[str, Any]  # spec form, only what the spec sets (defaults section merged)
    ignore_changes: tuple[str, ...]
    file: str
    line: int
    index: int = 0
    key_lines: dict[str, int] = field(default_factory=dict)  # dotted spec path -> line
    # `prevent_destroy: true`: a plan that deletes or replaces this mapping fails (guards.py).
    prevent_destroy: bool = False

    @property
    def source(self) -> str:
        return source_label(self.settings)


@dataclass
class SpecFile:
    path: str
    region: str | None
    account_id: str | None
    profile: str | None = None
    functions: dict[str, list[DesiredMapping]] = field(default_factory=dict)
    function_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class Spec:
    files: list[SpecFile]

    @property
    def functions(self) -> dict[str, list[DesiredMapping]]:
        out: dict[str, list[DesiredMapping]] = {}
        for f in self.files:
            out.update(f.functions)
        return out

    def mappings(self) -> list[DesiredMapping]:
        return [m for f in self.files for ms in f.functions.values() for m in ms]


@dataclass
class ManagedFunction:
    """A function the spec manages: its label (as written), resolved ARN and desired mappings."""

    label: str
    arn: str
    mappings: list[DesiredMapping]


# -- what AWS has ------------------------------------------------------------------------------


@dataclass
class LiveMapping:
    """A mapping as Get/List return it, its settings in spec form, with the status fields AWS
    reports beside them (State, StateTransitionReason, LastProcessingResult, LastModified)."""

    uuid: str
    function_arn: str
    state: str
    settings: dict[str, Any]  # spec form
    esm_arn: str | None = None
    tags: dict[str, str] | None = None  # read only when the spec manages this mapping's tags
    last_modified: str | None = None  # ISO 8601 in UTC (e.g. 2024-05-01T12:00:00+00:00)
    state_transition_reason: str | None = None
    last_processing_result: str | None = None

    @property
    def kind(self) -> Kind | None:
        return kind_of(self.settings)

    @property
    def source(self) -> str:
        return source_label(self.settings)

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> LiveMapping:
        return cls(
            uuid=response["UUID"],
            function_arn=response.get("FunctionArn", ""),
            state=response.get("State", ""),
            settings=from_api(response),
            esm_arn=response.get("EventSourceMappingArn"),
            last_modified=utc_timestamp(response.get("LastModified")),
            state_transition_reason=response.get("StateTransitionReason"),
            last_processing_result=response.get("LastProcessingResult"),
        )


def utc_timestamp(value: Any) -> str | None:
    """A LastModified as AWS or an emulator gives it (a datetime in any zone, epoch seconds, or
    text) as ISO 8601 in UTC; text that is no timestamp is kept as it is, None stays None."""
    if value is None or isinstance(value, bool):
        return None
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)):
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return str(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
    return moment.astimezone(UTC).isoformat()
