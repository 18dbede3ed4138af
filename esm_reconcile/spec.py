"""The spec format as pydantic models: one source for parsing, field ranges and the JSON Schema.

Each field's `serialization_alias` is its CreateEventSourceMapping parameter name, so a model
converts to an API request with `to_api` and a read-back converts into spec form with `from_api`.
Shape rules (types, ranges, enums, patterns) live here; per-kind rules live in rules.py and are
checked by validate.py.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import MAX_DEPTH, one_line


def _whole(pattern: str) -> str:
    """An AWS pattern that must match the whole value. Python's `$` also matches before a final
    newline, so "name\n" would pass; `$(?!\n)` does not, and in JSON Schema's dialect (the
    schema shows these patterns) it means just `$`. A `$` inside [...] is a character."""
    return re.sub(r"(?<!\\)\$(?![^\[]*\])", r"$(?!\\n)", pattern)


Arn = Annotated[
    str,
    Field(
        pattern=_whole(
            r"^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$"
        )
    ),
]
AccessUri = Annotated[
    str, Field(min_length=1, max_length=200, pattern=_whole(r"^[a-zA-Z0-9-\/*:_+=.@-]*$"))
]
DESTINATION_PATTERN = (
    r"^$|^kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))$"
    r"|^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)$"
)


class ApiModel(BaseModel):
    # python-re: AWS patterns use look-ahead, which the default Rust engine lacks.
    # strict: YAML `true` is not a batch size, and "10" is not a number.
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, regex_engine="python-re", strict=True
    )


def _api(name: str, description: str, **kwargs: Any) -> Any:
    if "pattern" in kwargs:
        kwargs["pattern"] = _whole(kwargs["pattern"])
    return Field(None, serialization_alias=name, description=description, **kwargs)


class Filter(ApiModel):
    pattern: dict[str, Any] | Annotated[str, Field(max_length=4096)] = Field(
        serialization_alias="Pattern",
        description="An event filter pattern: a YAML mapping or a JSON string (same meaning).",
    )

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern_type(cls, value: Any) -> Any:
        # One clear error for a wrong type, not one per member of the union.
        if not isinstance(value, dict | str):
            raise ValueError("pattern must be a mapping or a JSON string")
        if isinstance(value, str) and len(value) > 4096:
            raise ValueError("pattern is longer than 4096 characters")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_is_json_object(cls, value: dict[str, Any] | str) -> dict[str, Any] | str:
        parsed = value
        if isinstance(value, str):
            try:
                parsed = json.loads(value, parse_constant=_refuse_constant)
            except json.JSONDecodeError as exc:
                raise ValueError(f"pattern is not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise ValueError(f"pattern is nested deeper than {MAX_DEPTH} levels") from None
        if not isinstance(parsed, dict) or not parsed:
            raise ValueError("pattern must be a non-empty JSON object")
        # Before anything recursive (the checks below, json.dumps) meets it: 4096 characters
        # of JSON nest up to 800 levels.
        if _nesting_depth(parsed) > MAX_DEPTH:
            raise ValueError(f"pattern is nested deeper than {MAX_DEPTH} levels")
        problem = _pattern_problem(parsed, "")
        if problem:
            raise ValueError(
                f"invalid filter pattern: {problem} (AWS: Invalid filter pattern definition.)"
            )
        if len(canonical_pattern(parsed)) > 4096:
            raise ValueError("pattern is longer than 4096 characters")
        return value


def _refuse_constant(name: str) -> Any:
    """json.loads reads NaN and Infinity, which are not JSON: a pattern cannot hold them."""
    raise ValueError(f"pattern is not valid JSON: {name} is not a JSON number")


def _nesting_depth(value: Any) -> int:
    """Levels of dicts and lists in `value` (a scalar is 0), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            members = item.values() if isinstance(item, dict) else item
            pending.extend((member, depth) for member in members)
    return deepest


def _pattern_problem(node: dict[str, Any], path: str) -> str | None:
    """EventBridge-style grammar: each key holds a nested object or a non-empty array, and
    everything in it is JSON (a YAML date, binary or .nan is not)."""
    for key, value in node.items():
        where = f"{path}.{one_line(key)}" if path else one_line(key)
        if isinstance(value, dict):
            if not value:
                return f"{where} is an empty object"
            problem = _pattern_problem(value, where)
            if problem:
                return problem
        elif not isinstance(value, list):
            return f"{where} must be an array of values or matchers, not {_shown(value)}"
        elif not value:
            return f"{where} is an empty array"
        else:
            problem = _not_json(value, where)
            if problem:
                return problem
    return None


def _not_json(value: Any, where: str) -> str | None:
    """Why `value` (inside a pattern's array) is not JSON data, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} holds {value}, which is not a JSON number"
    if value is None or isinstance(value, str | int | float):
        return None
    if isinstance(value, list):
        return next((p for p in (_not_json(v, where) for v in value) if p), None)
    if isinstance(value, dict):
        return next(
            (p for p in (_not_json(v, f"{where}.{one_line(k)}") for k, v in value.items()) if p),
            None,
        )
    return f"{where} holds a {type(value).__name__}, which is not JSON (quote it)"


def _shown(value: Any) -> str:
    """A pattern value for a message: JSON where it is JSON, else its type."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return f"a {type(value).__name__}"


def canonical_pattern(pattern: dict[str, Any] | str) -> str:
    """One text per meaning: key order and spacing do not matter."""
    parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


class FilterCriteria(ApiModel):
    filters: list[Filter] = Field(
        default_factory=list,
        serialization_alias="Filters",
        description="Up to 10 filters (5 by default quota); an event matching any filter is processed.",
    )


class OnFailure(ApiModel):
    destination: str | None = _api(
        "Destination",
        "ARN of an SQS queue, SNS topic or S3 bucket (or kafka://topic for Kafka) for discarded batches.",
        max_length=350,
        pattern=DESTINATION_PATTERN,
    )


class DestinationConfig(ApiModel):
    on_failure: OnFailure | None = _api(
        "OnFailure", "Where to send records that failed processing."
    )
    on_success: OnFailure | None = _api(
        "OnSuccess", "Not supported by AWS for event source mappings; refused by validation."
    )


class SourceAccessConfiguration(ApiModel):
    type: Literal[
        "BASIC_AUTH",
        "VPC_SUBNET",
        "VPC_SECURITY_GROUP",
        "SASL_SCRAM_512_AUTH",
        "SASL_SCRAM_256_AUTH",
        "VIRTUAL_HOST",
        "CLIENT_CERTIFICATE_TLS_AUTH",
        "SERVER_ROOT_CA_CERTIFICATE",
        "OAUTHBEARER_AUTH",
        "OAUTHBEARER_SCOPE",
        "OAUTHBEARER_AUDIENCE",
        "OAUTHBEARER_LOGICAL_CLUSTER",
        "OAUTHBEARER_IDENTITY_POOL",
        "IAM_AUTH",
        "IAM_OAUTHBEARER_AUTH",
    ] = Field(serialization_alias="Type", description="Kind of access entry.")
    uri: AccessUri | None = Field(
        None,
        serialization_alias="URI",
        description="Secret ARN, subnet/security group, virtual host or OAuth value; omitted "
        "for IAM_AUTH and IAM_OAUTHBEARER_AUTH.",
    )


class SelfManagedEventSource(ApiModel):
    endpoints: dict[
        Literal["KAFKA_BOOTSTRAP_SERVERS"],
        Annotated[
            list[
                Annotated[
                    str,
                    Field(
                        min_length=1,
                        max_length=300,
                        pattern=_whole(
                            r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
                            r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]):[0-9]{1,5}$"
                        ),
                    ),
                ]
            ],
            Field(min_length=1, max_length=10),
        ],
    ] = Field(
        serialization_alias="Endpoints",
        description="KAFKA_BOOTSTRAP_SERVERS: list of host:port brokers (compared as a set).",
        min_length=1,
        max_length=2,
    )


class SchemaRegistryAccessConfig(ApiModel):
    type: Literal[
        "BASIC_AUTH",
        "CLIENT_CERTIFICATE_TLS_AUTH",
        "SERVER_ROOT_CA_CERTIFICATE",
        "OAUTHBEARER_AUTH",
    ] = Field(serialization_alias="Type", description="Authentication kind for the registry.")
    uri: Annotated[Arn, Field(max_length=10000)] = Field(
        serialization_alias="URI", description="Secrets Manager secret ARN."
    )


class SchemaValidationConfig(ApiModel):
    attribute: Literal["KEY", "VALUE"] = Field(
        serialization_alias="Attribute", description="Record part to validate."
    )


class SchemaRegistryConfig(ApiModel):
    schema_registry_uri: str | None = _api(
        "SchemaRegistryURI",
        "Glue schema registry ARN or Confluent registry URL.",
        min_length=1,
        max_length=10000,
        pattern=r"^[a-zA-Z0-9-\/*:_+=.@-]*$",
    )
    event_record_format: Literal["JSON", "SOURCE"] | None = _api(
        "EventRecordFormat", "Format Lambda delivers records in."
    )
    access_configs: list[SchemaRegistryAccessConfig] | None = _api(
        "AccessConfigs", "Credentials for the registry."
    )
    schema_validation_configs: list[SchemaValidationConfig] | None = _api(
        "SchemaValidationConfigs", "Record parts to validate."
    )


class KafkaEventSourceConfig(ApiModel):
    consumer_group_id: str | None = _api(
        "ConsumerGroupId",
        "Kafka consumer group; defaults to the mapping's UUID; cannot change after creation.",
        min_length=1,
        max_length=200,
        pattern=r"^[a-zA-Z0-9-\/*:_+=.@-]*$",
    )
    schema_registry_config: SchemaRegistryConfig | None = _api(
        "SchemaRegistryConfig", "Schema registry used to decode records."
    )


class SelfManagedKafkaEventSourceConfig(KafkaEventSourceConfig):
    consumption_mode: Literal["Stream", "Queue"] | None = _api(
        "ConsumptionMode",
        "Stream (default: a consumer group, order kept per partition) or Queue (a Kafka share "
        "group, Kafka 4.2+; order not kept).",
    )


class ScalingConfig(ApiModel):
    maximum_concurrency: int | None = _api(
        "MaximumConcurrency", "Most concurrent invocations the SQS source may drive.", ge=2, le=1000
    )


class DocumentDBEventSourceConfig(ApiModel):
    database_name: str | None = _api(
        "DatabaseName",
        "Database to watch (required).",
        min_length=1,
        max_length=63,
        pattern=r'^[^ /\.$"]*$',
    )
    collection_name: str | None = _api(
        "CollectionName",
        "Collection to watch; all collections when omitted.",
        min_length=1,
        max_length=57,
        pattern=r"^(?!system\.)[_a-zA-Z0-9][^$]*$",
    )
    full_document: Literal["UpdateLookup", "Default"] | None = _api(
        "FullDocument", "Whether update events carry the whole document."
    )


class MetricsConfig(ApiModel):
    metrics: list[Literal["EventCount", "ErrorCount", "KafkaMetrics"]] | None = _api(
        "Metrics", "Enhanced metrics to publish.", max_length=3
    )


class LoggingConfig(ApiModel):
    system_log_level: Literal["DEBUG", "INFO", "WARN"] | None = _api(
        "SystemLogLevel", "Level of the poller's system logs."
    )


class ProvisionedPollerConfig(ApiModel):
    minimum_pollers: int | None = _api("MinimumPollers", "Pollers kept ready.", ge=1, le=200)
    maximum_pollers: int | None = _api(
        "MaximumPollers", "Most pollers (SQS up to 10000, Kafka up to 2000).", ge=1, le=10000
    )
    poller_group_name: str | None = _api(
        "PollerGroupName",
        "Group sharing provisioned pollers.",
        max_length=128,
        pattern=r"^[a-zA-Z0-9-_]*$",
    )


class MappingSettings(ApiModel):
    """Every CreateEventSourceMapping parameter except FunctionName (the key under functions)."""

    event_source_arn: Annotated[Arn, Field(max_length=10000)] | None = _api(
        "EventSourceArn",
        "ARN of the source (queue, stream, cluster, broker); identifies the mapping.",
    )
    enabled: bool | None = _api("Enabled", "Whether the mapping polls. AWS default: true.")
    batch_size: int | None = _api(
        "BatchSize", "Most records per invocation (SQS default 10, others 100).", ge=1, le=10000
    )
    filter_criteria: FilterCriteria | None = _api("FilterCriteria", "Event filters.")
    maximum_batching_window_in_seconds: int | None = _api(
        "MaximumBatchingWindowInSeconds", "Seconds to gather records before invoking.", ge=0, le=300
    )
    parallelization_factor: int | None = _api(
        "ParallelizationFactor", "Batches per shard processed concurrently (streams).", ge=1, le=10
    )
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] | None = _api(
        "StartingPosition", "Where a stream or Kafka mapping starts reading; create-only."
    )
    starting_position_timestamp: datetime | None = _api(
        "StartingPositionTimestamp",
        "RFC 3339 time to start from with AT_TIMESTAMP; create-only.",
        strict=False,  # YAML may give a datetime or a quoted RFC 3339 string
    )
    destination_config: DestinationConfig | None = _api(
        "DestinationConfig", "Where discarded batches go (streams and Kafka)."
    )
    maximum_record_age_in_seconds: int | None = _api(
        "MaximumRecordAgeInSeconds",
        "Discard records older than this (-1: never; else 60-604800).",
        ge=-1,
        le=604800,
    )
    bisect_batch_on_function_error: bool | None = _api(
        "BisectBatchOnFunctionError", "Split a failing batch in two and retry."
    )
    maximum_retry_attempts: int | None = _api(
        "MaximumRetryAttempts",
        "Retries of a failing batch (-1: until the record expires).",
        ge=-1,
        le=10000,
    )
    tags: (
        dict[
            Annotated[str, Field(min_length=1, max_length=128)],
            Annotated[str, Field(max_length=256)],
        ]
        | None
    ) = _api("Tags", "Tags of the mapping; managed when given, left alone when omitted.")
    tumbling_window_in_seconds: int | None = _api(
        "TumblingWindowInSeconds", "Tumbling window for stream aggregation.", ge=0, le=900
    )
    topics: (
        list[
            Annotated[
                str,
                Field(min_length=1, max_length=249, pattern=_whole(r"^[^.]([a-zA-Z0-9\-_.]+)$")),
            ]
        ]
        | None
    ) = _api(
        "Topics",
        "The Kafka topic (exactly one); identifies the mapping.",
        min_length=1,
        max_length=1,
    )
    queues: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = _api(
        "Queues",
        "The Amazon MQ queue (exactly one); identifies the mapping.",
        min_length=1,
        max_length=1,
    )
    source_access_configurations: list[SourceAccessConfiguration] | None = _api(
        "SourceAccessConfigurations",
        "Authentication and network access (Kafka, MQ, DocumentDB).",
        max_length=23,
    )
    self_managed_event_source: SelfManagedEventSource | None = _api(
        "SelfManagedEventSource", "Self-managed Kafka brokers; identifies the mapping."
    )
    function_response_types: list[Literal["ReportBatchItemFailures"]] | None = _api(
        "FunctionResponseTypes",
        "ReportBatchItemFailures enables partial batch responses.",
        max_length=1,
    )
    amazon_managed_kafka_event_source_config: KafkaEventSourceConfig | None = _api(
        "AmazonManagedKafkaEventSourceConfig", "MSK consumer group and schema registry."
    )
    self_managed_kafka_event_source_config: SelfManagedKafkaEventSourceConfig | None = _api(
        "SelfManagedKafkaEventSourceConfig",
        "Self-managed Kafka consumer group, schema registry and consumption mode.",
    )
    scaling_config: ScalingConfig | None = _api("ScalingConfig", "SQS maximum concurrency.")
    document_db_event_source_config: DocumentDBEventSourceConfig | None = _api(
        "DocumentDBEventSourceConfig", "DocumentDB database, collection and full-document mode."
    )
    kms_key_arn: str | None = _api(
        "KMSKeyArn",
        "KMS key that encrypts the filter criteria.",
        max_length=10000,
        pattern=r"^(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)$|^$",
    )
    metrics_config: MetricsConfig | None = _api("MetricsConfig", "Enhanced metrics.")
    logging_config: LoggingConfig | None = _api("LoggingConfig", "Poller system logs (Kafka).")
    provisioned_poller_config: ProvisionedPollerConfig | None = _api(
        "ProvisionedPollerConfig", "Provisioned mode pollers."
    )


class MappingSpec(MappingSettings):
    """One mapping as written under a function."""

    ignore_changes: list[str] | None = Field(
        None,
        description="Fields (snake_case, dotted for nested) that the diff leaves alone.",
    )


# SPEC: top-level keys starting with x- are ignored (they hold YAML anchors for reuse).
EXTENSION_KEY_PATTERN = "^x-"


def is_extension_key(key: Any) -> bool:
    """A top-level key the spec ignores (x-common: &common {...})."""
    return isinstance(key, str) and key.startswith("x-")


class SpecDocument(ApiModel):
    """A spec file, version 1."""

    model_config = ConfigDict(
        extra="forbid",
        regex_engine="python-re",
        strict=True,
        title="esm-reconcile spec",
        json_schema_extra={
            "$id": "https://esm-reconcile/spec-v1.json",
            "patternProperties": {
                EXTENSION_KEY_PATTERN: {
                    "description": "Ignored: a place for YAML anchors to reuse, as in compose "
                    "files (x-common: &common {batch_size: 5}, then <<: *common in a mapping)."
                }
            },
        },
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_extension_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not is_extension_key(k)}
        return data

    version: Literal[1] = Field(description="Spec format version; always 1.")
    region: str | None = Field(
        None,
        description="AWS region; else --region, else the AWS config.",
        pattern=_whole(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"),
    )
    account_id: str | None = Field(
        None, description="Refuse to run against any other account.", pattern=_whole(r"^\d{12}$")
    )
    profile: str | None = Field(
        None,
        description="AWS shared-config profile for this file's account; else --profile, else "
        "the default credential chain. Files of different regions or profiles are planned and "
        "applied concurrently, each with its own rate limit.",
        min_length=1,
    )
    defaults: MappingSpec | None = Field(
        None, description="Merged into every mapping; a mapping's own keys win."
    )

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_is_quoted(cls, value: Any) -> Any:
        if isinstance(value, int):
            # YAML reads 012345678901 as a number (octal, even): the id must be a string.
            raise ValueError('write the account id as a quoted string, e.g. "123456789012"')
        return value

    functions: dict[str, list[MappingSpec]] = Field(
        description="Managed functions (name, name:qualifier, or ARN) and their exact mappings."
    )


# -- conversion between spec form (snake_case) and API form (PascalCase) -------------------------


def _submodel(annotation: Any) -> type[ApiModel] | None:
    """The ApiModel inside an annotation like `X | None` or `list[X] | None`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _convert(model: type[ApiModel], data: Any, to_api: bool) -> Any:
    if isinstance(data, list):
        return [_convert(model, item, to_api) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    by_api = {f.serialization_alias: name for name, f in model.model_fields.items()}
    for key, value in data.items():
        name = key if to_api else by_api.get(key)
        if name is None or name not in model.model_fields:
            continue  # read-back keys the spec has no field for (output-only)
        field = model.model_fields[name]
        sub = _submodel(field.annotation)
        converted = _convert(sub, value, to_api) if sub is not None else value
        out[(field.serialization_alias or name) if to_api else name] = converted
    return out


def to_api(settings: dict[str, Any]) -> dict[str, Any]:
    """Spec-form settings (snake_case, nested) → CreateEventSourceMapping parameters."""
    return _convert(MappingSettings, settings, to_api=True)


def from_api(response: dict[str, Any]) -> dict[str, Any]:
    """A Get/List mapping → spec-form settings (keys the spec cannot express are dropped)."""
    return _convert(MappingSettings, response, to_api=False)


SETTING_FIELDS: tuple[str, ...] = tuple(MappingSettings.model_fields)


@functools.cache
def field_paths(model: type[ApiModel] = MappingSettings, prefix: str = "") -> list[str]:
    """Every field path in spec form: top-level names and dotted nested ones."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        sub = _submodel(field.annotation)
        if sub is not None and not _is_list(field.annotation):
            paths.extend(field_paths(sub, path + "."))
    return paths


def _is_list(annotation: Any) -> bool:
    if getattr(annotation, "__origin__", None) is list:
        return True
    return any(_is_list(a) for a in getattr(annotation, "__args__", ()) or ())
