"""AWS rules for event source mappings, per source kind, as data.

Everything here comes from ../shared/reference/aws-esm-semantics.md (sections A.1-A.9, B).
Field names are the spec's snake_case names. Nothing here talks to AWS.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    SQS = "sqs"
    SQS_FIFO = "sqs-fifo"
    KINESIS = "kinesis"
    DYNAMODB = "dynamodb"
    MSK = "msk"
    SELF_MANAGED_KAFKA = "self-managed-kafka"
    MQ = "mq"
    DOCUMENTDB = "documentdb"


# How messages name each kind ("not supported for Amazon MQ sources").
KIND_NAMES: dict[Kind, str] = {
    Kind.SQS: "SQS",
    Kind.SQS_FIFO: "SQS FIFO",
    Kind.KINESIS: "Kinesis",
    Kind.DYNAMODB: "DynamoDB Streams",
    Kind.MSK: "Amazon MSK",
    Kind.SELF_MANAGED_KAFKA: "self-managed Kafka",
    Kind.MQ: "Amazon MQ",
    Kind.DOCUMENTDB: "DocumentDB",
}

ALL = frozenset(Kind)
SQS_KINDS = frozenset({Kind.SQS, Kind.SQS_FIFO})
STREAMS = frozenset({Kind.KINESIS, Kind.DYNAMODB})
KAFKA_KINDS = frozenset({Kind.MSK, Kind.SELF_MANAGED_KAFKA})


# Which spec fields AWS accepts per kind (reference A.3). A field not listed for a kind is
# rejected when set and never compared when not.
APPLIES_TO: dict[str, frozenset[Kind]] = {
    "enabled": ALL,
    "batch_size": ALL,
    "tags": ALL,
    "kms_key_arn": ALL,
    # The docs say DocumentDB does not support filtering; SAM lists it. Accept it rather than
    # refuse something AWS may take.
    "filter_criteria": ALL,
    "event_source_arn": ALL - {Kind.SELF_MANAGED_KAFKA},
    "maximum_batching_window_in_seconds": ALL - {Kind.SQS_FIFO},
    "starting_position": STREAMS | KAFKA_KINDS | {Kind.DOCUMENTDB},
    "starting_position_timestamp": {Kind.KINESIS} | KAFKA_KINDS | {Kind.DOCUMENTDB},
    "function_response_types": SQS_KINDS | STREAMS | KAFKA_KINDS,
    "parallelization_factor": STREAMS,
    "tumbling_window_in_seconds": STREAMS,
    "bisect_batch_on_function_error": STREAMS | KAFKA_KINDS,
    "maximum_retry_attempts": STREAMS | KAFKA_KINDS,
    "maximum_record_age_in_seconds": STREAMS | KAFKA_KINDS,
    "destination_config": STREAMS | KAFKA_KINDS,
    "scaling_config": SQS_KINDS,
    "provisioned_poller_config": SQS_KINDS | KAFKA_KINDS,
    "metrics_config": SQS_KINDS | STREAMS | KAFKA_KINDS,
    "logging_config": KAFKA_KINDS,
    "topics": KAFKA_KINDS,
    "queues": frozenset({Kind.MQ}),
    "source_access_configurations": KAFKA_KINDS | {Kind.MQ, Kind.DOCUMENTDB},
    "self_managed_event_source": frozenset({Kind.SELF_MANAGED_KAFKA}),
    "amazon_managed_kafka_event_source_config": frozenset({Kind.MSK}),
    "self_managed_kafka_event_source_config": frozenset({Kind.SELF_MANAGED_KAFKA}),
    "document_db_event_source_config": frozenset({Kind.DOCUMENTDB}),
}

# Fields a kind cannot do without (reference A.3, A.5).
REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.KINESIS: ("starting_position",),
    Kind.DYNAMODB: ("starting_position",),
    Kind.MSK: ("topics", "starting_position"),
    Kind.SELF_MANAGED_KAFKA: ("topics", "source_access_configurations"),
    Kind.MQ: ("queues",),
    Kind.DOCUMENTDB: ("document_db_event_source_config", "starting_position"),
}

# Members of an object that only some of the kinds taking the object accept (reference A.3,
# A.8: PollerGroupName is Kafka's).
MEMBER_APPLIES_TO: dict[str, frozenset[Kind]] = {
    "provisioned_poller_config.poller_group_name": KAFKA_KINDS,
}

# Why AWS refuses a field for a kind, where it says more than "not supported".
NOT_SUPPORTED_WHY: dict[tuple[str, Kind], str] = {
    ("maximum_batching_window_in_seconds", Kind.SQS_FIFO): (
        "Batching window is not supported for FIFO queues"
    ),
}

# Members a kind's object cannot do without once the object is given (reference A.3).
REQUIRED_MEMBERS: dict[Kind, tuple[str, ...]] = {
    Kind.DOCUMENTDB: ("document_db_event_source_config.database_name",),
}

# What AWS stores and returns when a field is omitted (reference A.4), in spec form.
# A field with no entry here has no value when omitted (absent from Get).
_STREAM_DEFAULTS: dict[str, Any] = {
    "batch_size": 100,
    "maximum_batching_window_in_seconds": 0,
    "bisect_batch_on_function_error": False,
    "maximum_record_age_in_seconds": -1,
    "maximum_retry_attempts": -1,
    "parallelization_factor": 1,
    "tumbling_window_in_seconds": 0,
}
_KAFKA_DEFAULTS: dict[str, Any] = {
    "batch_size": 100,
    "bisect_batch_on_function_error": False,
    "maximum_record_age_in_seconds": -1,
    "maximum_retry_attempts": -1,
}
DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.SQS: {"enabled": True, "batch_size": 10, "maximum_batching_window_in_seconds": 0},
    Kind.SQS_FIFO: {"enabled": True, "batch_size": 10},
    Kind.KINESIS: {"enabled": True, **_STREAM_DEFAULTS},
    Kind.DYNAMODB: {"enabled": True, **_STREAM_DEFAULTS},
    Kind.MSK: {"enabled": True, **_KAFKA_DEFAULTS},
    Kind.SELF_MANAGED_KAFKA: {
        "enabled": True,
        "starting_position": "TRIM_HORIZON",
        **_KAFKA_DEFAULTS,
    },
    Kind.MQ: {"enabled": True, "batch_size": 100},
    Kind.DOCUMENTDB: {"enabled": True, "batch_size": 100},
}

# Defaults of members inside an object, applied only when the object is present (reference
# A.4, A.8). Filled in on both sides, so an emulator that omits them shows no difference either.
NESTED_DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.SQS: {
        "provisioned_poller_config.minimum_pollers": 2,
        "provisioned_poller_config.maximum_pollers": 200,
    },
    Kind.SQS_FIFO: {
        "provisioned_poller_config.minimum_pollers": 2,
        "provisioned_poller_config.maximum_pollers": 200,
    },
    Kind.MSK: {
        "provisioned_poller_config.minimum_pollers": 1,
        "provisioned_poller_config.maximum_pollers": 200,
    },
    Kind.SELF_MANAGED_KAFKA: {
        "provisioned_poller_config.minimum_pollers": 1,
        "provisioned_poller_config.maximum_pollers": 200,
    },
    Kind.DOCUMENTDB: {"document_db_event_source_config.full_document": "Default"},
}

# Kinds whose unset batching window is a 500 ms default that seconds cannot express: once a
# window is set, only re-creating the mapping gets back to it (reference A.4).
WINDOW_DEFAULT_500MS = KAFKA_KINDS | {Kind.MQ, Kind.DOCUMENTDB}

# SourceAccessConfigurations entry types each kind takes (reference A.3).
ACCESS_TYPES: dict[Kind, frozenset[str]] = {
    Kind.MSK: frozenset({"SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH"}),
    Kind.SELF_MANAGED_KAFKA: frozenset(
        {
            "BASIC_AUTH",
            "SASL_SCRAM_256_AUTH",
            "SASL_SCRAM_512_AUTH",
            "CLIENT_CERTIFICATE_TLS_AUTH",
            "SERVER_ROOT_CA_CERTIFICATE",
            "VPC_SUBNET",
            "VPC_SECURITY_GROUP",
            # botocore 1.44's model documentation: self-managed Kafka only.
            "OAUTHBEARER_AUTH",
            "OAUTHBEARER_SCOPE",
            "OAUTHBEARER_AUDIENCE",
            "OAUTHBEARER_LOGICAL_CLUSTER",
            "OAUTHBEARER_IDENTITY_POOL",
            "IAM_AUTH",
            "IAM_OAUTHBEARER_AUTH",
        }
    ),
    Kind.MQ: frozenset({"BASIC_AUTH", "VIRTUAL_HOST"}),  # VIRTUAL_HOST: RabbitMQ only
    Kind.DOCUMENTDB: frozenset({"BASIC_AUTH"}),
}
# Entry types without a URI ("Omit the URI field for this type", botocore 1.44); every other
# type needs one.
ACCESS_WITHOUT_URI = frozenset({"IAM_AUTH", "IAM_OAUTHBEARER_AUTH"})
# Fewest provisioned pollers per kind (reference A.8: SQS at least 2); any other kind 1.
MIN_POLLERS: dict[Kind, int] = {Kind.SQS: 2, Kind.SQS_FIFO: 2}
# Most provisioned pollers per kind (botocore 1.44: SQS up to 10,000, Kafka up to 2,000).
MAX_POLLERS: dict[Kind, int] = {Kind.MSK: 2000, Kind.SELF_MANAGED_KAFKA: 2000}

# The credentials entry a kind cannot do without.
REQUIRED_ACCESS: dict[Kind, str] = {Kind.MQ: "BASIC_AUTH", Kind.DOCUMENTDB: "BASIC_AUTH"}
# Entry types a mapping may hold once at most (one set of credentials, one virtual host).
SINGLE_ACCESS_TYPES = ("BASIC_AUTH", "VIRTUAL_HOST")

# Kafka's error-handling controls exist only in provisioned mode (reference A.3, inferred from
# "Event poller configuration → Provisioned mode" in the docs).
KAFKA_PROVISIONED_ONLY = (
    "bisect_batch_on_function_error",
    "maximum_retry_attempts",
    "maximum_record_age_in_seconds",
    "function_response_types",
)

# Largest batch per kind (reference A.3); the model's 1-10000 range covers the rest.
MAX_BATCH_SIZE: dict[Kind, int] = {Kind.SQS_FIFO: 10}
# Kinds whose batches above this size need a batching window of at least 1 s (AWS: "Maximum
# batch window in seconds must be greater than 0 if maximum batch size is greater than 10").
WINDOW_NEEDED_ABOVE_BATCH: dict[Kind, int] = {Kind.SQS: 10}

# Fields that are part of a mapping's identity (create-only; never compared as settings).
IDENTITY_FIELDS = frozenset({"event_source_arn", "self_managed_event_source", "topics", "queues"})

# Create-only settings: a change means delete and re-create (reference A.9). Dotted paths
# cover their nested leaves.
REPLACEMENT_FIELDS = frozenset(
    {
        "starting_position",
        "starting_position_timestamp",
        "amazon_managed_kafka_event_source_config.consumer_group_id",
        "self_managed_kafka_event_source_config.consumer_group_id",
    }
)

# Kafka consumer groups default to the mapping's own UUID (reference A.4).
CONSUMER_GROUP_PATH: dict[Kind, str] = {
    Kind.MSK: "amazon_managed_kafka_event_source_config.consumer_group_id",
    Kind.SELF_MANAGED_KAFKA: "self_managed_kafka_event_source_config.consumer_group_id",
}
CONSUMER_GROUP_PATHS = tuple(CONSUMER_GROUP_PATH.values())

# The shape of a mapping UUID, as AWS makes them (8-4-4-4-12 hex digits).
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def is_default_consumer_group(group: Any, mapping_uuid: str) -> bool:
    """Whether a live consumer group id is one a spec that omits `consumer_group_id` accepts:
    AWS's default, the mapping's own UUID (reference A.4), or a UUID carried over from a
    mapping this one replaced (the replace keeps the old mapping's group, so its committed
    offsets resume: see diff). No state records which UUID was a former mapping's, so any
    UUID-shaped id counts; a named group ("orders-consumers") the spec omits is drift."""
    if not isinstance(group, str):
        return False
    return group == mapping_uuid or _UUID.fullmatch(group) is not None


def forces_replacement_path(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in REPLACEMENT_FIELDS)


# Replacing a mapping of these kinds restarts reading from its starting position.
POSITIONAL_KINDS = STREAMS | KAFKA_KINDS | {Kind.DOCUMENTDB}

# How to clear a field on UpdateEventSourceMapping (reference A.6-A.9): omitting it keeps the
# stored value, so removal needs an explicit empty form. API-shaped.
CLEAR_VALUE: dict[str, Any] = {
    "filter_criteria": {},
    "scaling_config": {},
    "function_response_types": [],
    # {"OnFailure": {}} is rejected ("The Destination field is required..."); the pattern allows "".
    "destination_config": {"OnFailure": {"Destination": ""}},
    "kms_key_arn": "",
    "metrics_config": {"Metrics": []},
    "provisioned_poller_config": {},
    "logging_config": {},
}

# Mapping states (reference B).
SETTLED_STATES = frozenset({"Enabled", "Disabled"})
TRANSITION_STATES = frozenset({"Creating", "Enabling", "Disabling", "Updating", "Deleting"})
ENABLED_STATES = frozenset({"Enabled", "Enabling", "Creating"})  # Updating: either

FILTER_LIMIT = 10  # 5 by default, up to 10 by quota increase (reference A.6)


def applies(field: str, kind: Kind) -> bool:
    return kind in APPLIES_TO.get(field, ALL)


def defaults_for(kind: Kind) -> dict[str, Any]:
    return DEFAULTS[kind]
