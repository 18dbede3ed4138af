"""What AWS stores and returns for a mapping, per source kind: the sandbox's own record.

Taken from the responses recorded against real AWS in the reference
(/work/shared/reference/aws-esm-semantics.md: A.1 kinds, A.3 applicability, A.4 defaults,
A.5 errors, A.9 create-only fields, B conflicts), and deliberately NOT from the tables the diff
uses (`esm_reconcile.rules`, `esm_reconcile.normalize`): a test through the sandbox then checks
the diff against AWS's answers instead of against the diff's own idea of them.

Pure data and pure functions (no WSGI, no moto): `hosted.HostedMappings` answers with them.
Evidence labels as in the reference: [AWS-rec] recorded response, [3p] third-party live report,
[docs], [inferred].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .references import source_arn

# Source kinds (reference A.1), the sandbox's own names.
SQS = "sqs"
SQS_FIFO = "sqs-fifo"
KINESIS = "kinesis"
KINESIS_CONSUMER = "kinesis-consumer"
DYNAMODB = "dynamodb"
MSK = "msk"
SELF_MANAGED_KAFKA = "self-managed-kafka"
MQ = "mq"
DOCUMENTDB = "documentdb"

MOTO_KINDS = frozenset({SQS, SQS_FIFO, KINESIS, DYNAMODB})  # moto 5.2.1 hosts these (E.1)


def kind_of(fields: dict[str, Any]) -> str | None:
    """The source kind of a Create request (or a stored mapping); None when unrecognised."""
    arn_text = fields.get("EventSourceArn")
    if not arn_text:
        return SELF_MANAGED_KAFKA if fields.get("SelfManagedEventSource") else None
    arn = source_arn(arn_text) if isinstance(arn_text, str) else None
    if arn is None:
        return None
    service, resource = arn.service, arn.resource
    if service == "sqs":
        return SQS_FIFO if resource.endswith(".fifo") else SQS
    if service == "kinesis" and resource.startswith("stream/"):
        return KINESIS_CONSUMER if "/consumer/" in resource else KINESIS
    if service == "dynamodb" and "/stream/" in resource:
        return DYNAMODB
    if service == "kafka":
        return MSK
    if service == "mq" and resource.startswith("broker:"):
        return MQ
    if service == "rds" and resource.startswith("cluster:"):
        return DOCUMENTDB
    return None


# Keys every kind accepts (reference A.3: BatchSize, FilterCriteria, window, KMS, tags, ...).
_COMMON = frozenset(
    {
        "FunctionName",
        "Enabled",
        "BatchSize",
        "FilterCriteria",
        "MaximumBatchingWindowInSeconds",
        "KMSKeyArn",
        "Tags",
        "MetricsConfig",
    }
)
_STREAM_ERRORS = frozenset(
    {
        "FunctionResponseTypes",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "DestinationConfig",
    }
)
_POSITION = frozenset({"StartingPosition", "StartingPositionTimestamp"})
_KAFKA = (
    _COMMON
    | _STREAM_ERRORS
    | _POSITION
    | {"Topics", "SourceAccessConfigurations", "ProvisionedPollerConfig", "LoggingConfig"}
)

_STREAM_DEFAULTS: dict[str, Any] = {
    # Kinesis and DynamoDB Streams, create + get + list [AWS-rec, 2025-11].
    "BatchSize": 100,
    "BisectBatchOnFunctionError": False,
    "DestinationConfig": {"OnFailure": {}},
    "FunctionResponseTypes": [],
    "LastProcessingResult": "No records processed",
    "MaximumBatchingWindowInSeconds": 0,
    "MaximumRecordAgeInSeconds": -1,
    "MaximumRetryAttempts": -1,
    "ParallelizationFactor": 1,
    "TumblingWindowInSeconds": 0,
}
_KAFKA_DEFAULTS: dict[str, Any] = {
    # Self-managed Kafka [AWS-rec 2024-09]: no window key (500 ms is no whole second), no
    # FunctionResponseTypes, no DestinationConfig. Retries and record age -1 as streams
    # [3p 2026: "stream and self-managed Kafka ESMs read back -1"].
    "BatchSize": 100,
    "LastProcessingResult": "No records processed",
    "MaximumRecordAgeInSeconds": -1,
    "MaximumRetryAttempts": -1,
}


@dataclass(frozen=True)
class KindAnswers:
    """What AWS does with one kind's Create: what it accepts, needs, adds and says."""

    accepts: frozenset[str]  # request keys besides the source itself
    defaults: dict[str, Any]  # keys AWS adds when the request leaves them out
    reason: str  # StateTransitionReason
    required: tuple[str, ...] = ()  # request keys AWS refuses to do without
    # "default" key: StartingPosition AWS fills in; "required": refused without one
    starting_position: str | None = None  # None: not accepted at all
    consumer_group_config: str | None = None  # the Kafka config holding ConsumerGroupId
    # Empty values AWS does not show for this kind (an empty list read back as no key).
    absent_when_empty: frozenset[str] = field(default_factory=frozenset)


ANSWERS: dict[str, KindAnswers] = {
    KINESIS_CONSUMER: KindAnswers(
        accepts=_COMMON
        | _STREAM_ERRORS
        | _POSITION
        | {"ParallelizationFactor"}
        | {"TumblingWindowInSeconds"},
        defaults=_STREAM_DEFAULTS,
        reason="User action",
        starting_position="required",
    ),
    MSK: KindAnswers(
        accepts=_KAFKA | {"AmazonManagedKafkaEventSourceConfig"},
        defaults=_KAFKA_DEFAULTS,
        reason="USER_INITIATED",
        required=("Topics",),
        starting_position="required",  # [docs] MSK parameter table
        consumer_group_config="AmazonManagedKafkaEventSourceConfig",
        absent_when_empty=frozenset({"FunctionResponseTypes"}),
    ),
    SELF_MANAGED_KAFKA: KindAnswers(
        accepts=_KAFKA | {"SelfManagedKafkaEventSourceConfig"},
        defaults=_KAFKA_DEFAULTS,
        reason="USER_INITIATED",
        required=("Topics",),
        starting_position="default",  # TRIM_HORIZON when omitted [AWS-rec 2024]
        consumer_group_config="SelfManagedKafkaEventSourceConfig",
        absent_when_empty=frozenset({"FunctionResponseTypes"}),
    ),
    MQ: KindAnswers(
        # [docs] services-mq-params: BatchSize 100, window 500 ms (no key), no error handling.
        accepts=_COMMON | {"Queues", "SourceAccessConfigurations", "ProvisionedPollerConfig"},
        defaults={"BatchSize": 100},
        reason="USER_INITIATED",
        required=("Queues",),
    ),
    DOCUMENTDB: KindAnswers(
        # [docs] with-documentdb: BatchSize 100, window 500 ms (no key); FullDocument Default
        # [inferred: Terraform's default].
        accepts=_COMMON | _POSITION | {"DocumentDBEventSourceConfig", "SourceAccessConfigurations"},
        defaults={"BatchSize": 100},
        reason="USER_INITIATED",
        required=("DocumentDBEventSourceConfig",),
        starting_position="required",
    ),
}

HOSTED_KINDS = frozenset(ANSWERS)

# What AWS adds to the mappings moto hosts, which moto leaves out (reference E.7, E.10).
_SQS_ANSWERS = KindAnswers(
    # SQS standard and FIFO [AWS-rec, 2025-11, several tests incl. a FIFO queue].
    accepts=frozenset(),
    defaults={"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0, "FunctionResponseTypes": []},
    reason="USER_INITIATED",
)
_STREAM_ANSWERS = KindAnswers(
    accepts=frozenset(),
    defaults=_STREAM_DEFAULTS,
    reason="User action",
    starting_position="required",
)
MOTO_ANSWERS: dict[str, KindAnswers] = {
    SQS: _SQS_ANSWERS,
    SQS_FIFO: _SQS_ANSWERS,
    KINESIS: _STREAM_ANSWERS,
    DYNAMODB: _STREAM_ANSWERS,
}


def as_aws_shows(item: dict[str, Any]) -> dict[str, Any]:
    """A mapping moto hosts as AWS shows it: AWS's defaults for its kind added, empty values
    AWS does not show dropped, AWS's StateTransitionReason, no `Tags` key (E.11)."""
    kind = kind_of(item)
    answers = MOTO_ANSWERS.get(kind) if kind else None
    if answers is None:
        return item
    item.pop("Tags", None)
    for key, value in answers.defaults.items():
        if key not in item:
            item[key] = copy.deepcopy(value)
    item["StateTransitionReason"] = answers.reason
    return _tidy(answers, item)


# Update's members besides the path's UUID (botocore's UpdateEventSourceMappingRequest).
UPDATABLE = frozenset(
    {
        "FunctionName",
        "Enabled",
        "BatchSize",
        "FilterCriteria",
        "MaximumBatchingWindowInSeconds",
        "DestinationConfig",
        "MaximumRecordAgeInSeconds",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "ParallelizationFactor",
        "SourceAccessConfigurations",
        "TumblingWindowInSeconds",
        "FunctionResponseTypes",
        "ScalingConfig",
        "AmazonManagedKafkaEventSourceConfig",
        "SelfManagedKafkaEventSourceConfig",
        "DocumentDBEventSourceConfig",
        "KMSKeyArn",
        "MetricsConfig",
        "LoggingConfig",
        "ProvisionedPollerConfig",
    }
)


class Refusal(Exception):
    """What AWS answers a request it refuses: status, error code, message."""

    def __init__(
        self, message: str, code: str = "InvalidParameterValueException", status: int = 400
    ):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def _null(member: str) -> Refusal:
    # AWS's wording for a missing required member [AWS-rec: startingPosition].
    return Refusal(
        f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
        "Member must not be null."
    )


def _unsupported(key: str) -> Refusal:
    # "Unsupported <Param> parameter for given event source mapping type." [AWS-rec], [3p]
    return Refusal(f"Unsupported {key} parameter for given event source mapping type.")


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def check_create(kind: str, body: dict[str, Any]) -> None:
    """Raise the Refusal AWS answers this Create with, if any (reference A.5 order: source,
    DestinationConfig applicability, then the rest)."""
    answers = ANSWERS[kind]
    check_destination(body)
    source_keys = {"EventSourceArn", "SelfManagedEventSource"}
    for key in body:
        if key in source_keys or key in answers.accepts:
            continue
        if key in _POSITION and answers.starting_position is None:
            continue  # reported below, as AWS words it for queues
        raise _unsupported(key)
    if kind == SELF_MANAGED_KAFKA and not body.get("SourceAccessConfigurations"):
        raise Refusal("Required 'sourceAccessConfigurations' parameter is missing.")  # [AWS-rec]
    for member in answers.required:
        if not body.get(member):
            raise _null(_lower_first(member))
    position = body.get("StartingPosition")
    if answers.starting_position is None and position is not None:
        raise _unsupported("StartingPosition")
    if answers.starting_position == "required" and position is None:
        raise _null("startingPosition")
    if position is not None and position not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
        raise Refusal(
            f"1 validation error detected: Value '{position}' at 'startingPosition' failed to "
            "satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, "
            "TRIM_HORIZON]",
            code="ValidationException",
        )


def check_update(kind: str, stored: dict[str, Any], body: dict[str, Any]) -> None:
    """Raise the Refusal AWS answers this Update of a `kind` mapping with, if any."""
    answers = ANSWERS[kind]
    check_destination(body)
    for key in body:
        if key not in UPDATABLE:
            continue  # botocore would not send it; a raw client: AWS ignores unknown members
        if key not in answers.accepts:
            raise _unsupported(key)
    group_config = answers.consumer_group_config
    if group_config and isinstance(body.get(group_config), dict):
        wanted = body[group_config].get("ConsumerGroupId")
        have = (stored.get(group_config) or {}).get("ConsumerGroupId")
        if wanted is not None and wanted != have:
            # [model] "After creating a Kafka event source mapping with the consumer group ID
            # specified, you cannot update this value." Wording [inferred].
            raise Refusal("ConsumerGroupId cannot be updated.")
    for entry in body.get("SourceAccessConfigurations") or []:
        if isinstance(entry, dict) and entry.get("Type") == "VIRTUAL_HOST":
            # [model] VIRTUAL_HOST "cannot be specified in an UpdateEventSourceMapping API
            # call". Wording [inferred].
            raise Refusal("VIRTUAL_HOST cannot be specified in an UpdateEventSourceMapping call.")


def check_destination(body: dict[str, Any]) -> None:
    """Refuse what AWS refuses in DestinationConfig, whatever the kind (reference A.5, A.7)."""
    destination = body.get("DestinationConfig")
    if not isinstance(destination, dict):
        return
    if destination.get("OnSuccess"):
        raise _unsupported("DestinationConfig")  # [AWS-rec]
    on_failure = destination.get("OnFailure")
    if isinstance(on_failure, dict) and "Destination" not in on_failure:
        raise Refusal("The Destination field is required for an OnFailure configuration.")  # [3p]


def created(
    kind: str,
    body: dict[str, Any],
    *,
    uuid: str,
    function_arn: str,
    esm_arn: str,
    now: float,
) -> dict[str, Any]:
    """The mapping AWS stores for a Create of `kind`, as Get/List/Create show it."""
    answers = ANSWERS[kind]
    record: dict[str, Any] = copy.deepcopy(answers.defaults)
    for key, value in body.items():
        if key in ("FunctionName", "Enabled", "Tags"):
            continue
        record[key] = copy.deepcopy(value)
    if answers.starting_position == "default":
        record.setdefault("StartingPosition", "TRIM_HORIZON")
    if kind == SELF_MANAGED_KAFKA:
        endpoints = record["SelfManagedEventSource"].get("Endpoints") or {}
        for name, servers in list(endpoints.items()):
            if isinstance(servers, list):
                endpoints[name] = sorted(servers)  # AWS returns the brokers sorted [3p]
    if answers.consumer_group_config:
        config = record.get(answers.consumer_group_config)
        config = dict(config) if isinstance(config, dict) else {}
        # The mapping's own UUID when not given [AWS-rec 2024, self-managed; docs/CDK, MSK].
        config.setdefault("ConsumerGroupId", uuid)
        record[answers.consumer_group_config] = config
    if kind == DOCUMENTDB:
        record["DocumentDBEventSourceConfig"] = _documentdb_config(
            record["DocumentDBEventSourceConfig"]
        )
    record.update(
        UUID=uuid,
        FunctionArn=function_arn,
        EventSourceMappingArn=esm_arn,
        LastModified=now,
        State="Disabled" if body.get("Enabled") is False else "Enabled",
        StateTransitionReason=answers.reason,
    )
    return _tidy(answers, record)


def updated(
    kind: str, record: dict[str, Any], body: dict[str, Any], *, now: float
) -> dict[str, Any]:
    """The mapping after an Update: members sent replace the stored ones, members left out
    keep theirs (reference A.9 "Update semantics"); explicit empties clear."""
    answers = ANSWERS[kind]
    result = copy.deepcopy(record)
    for key, value in body.items():
        if key not in UPDATABLE or key in ("FunctionName", "Enabled"):
            continue
        value = copy.deepcopy(value)
        if key == answers.consumer_group_config and isinstance(value, dict):
            value = {**value, "ConsumerGroupId": record[key]["ConsumerGroupId"]}
        elif key == "SourceAccessConfigurations" and isinstance(value, list):
            # VIRTUAL_HOST cannot be sent on Update; the one set at Create stays [inferred].
            kept = [
                e
                for e in record.get(key) or []
                if isinstance(e, dict) and e.get("Type") == "VIRTUAL_HOST"
            ]
            value = [*value, *kept]
        elif key == "DocumentDBEventSourceConfig" and isinstance(value, dict):
            value = _documentdb_config(value)
        elif key == "DestinationConfig" and isinstance(value, dict):
            on_failure = value.get("OnFailure")
            if isinstance(on_failure, dict) and on_failure.get("Destination") == "":
                value = {**value, "OnFailure": {}}  # the empty Destination clears [inferred]
        result[key] = value
    if "Enabled" in body:
        result["State"] = "Enabled" if body["Enabled"] else "Disabled"
    result["LastModified"] = now
    # Absent keys the defaults fill come back, e.g. DestinationConfig {"OnFailure": {}}.
    return _tidy(answers, result)


def _documentdb_config(config: dict[str, Any]) -> dict[str, Any]:
    return {"FullDocument": "Default", **config}


def _tidy(answers: KindAnswers, record: dict[str, Any]) -> dict[str, Any]:
    """Drop what AWS does not show: empty filters [AWS-rec], cleared configurations, and
    empty values the kind shows as no key."""
    filters = record.get("FilterCriteria")
    if isinstance(filters, dict) and not filters.get("Filters"):
        del record["FilterCriteria"]
    for key in ("ScalingConfig", "ProvisionedPollerConfig", "LoggingConfig", "MetricsConfig"):
        if key in record and not record[key]:
            del record[key]
    if record.get("KMSKeyArn") == "":
        del record["KMSKeyArn"]
    destination = record.get("DestinationConfig")
    if isinstance(destination, dict) and not (destination.get("OnFailure") or {}).get(
        "Destination"
    ):
        if "DestinationConfig" in answers.defaults:
            record["DestinationConfig"] = copy.deepcopy(answers.defaults["DestinationConfig"])
        else:
            del record["DestinationConfig"]
    for key in answers.absent_when_empty:
        if key in record and not record[key]:
            del record[key]
    return record
