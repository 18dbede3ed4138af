"""The settings of one mapping as pydantic models: MappingSettings (every
CreateEventSourceMapping parameter but FunctionName), the nested configurations it holds, and
MappingSpec (a mapping as written under a function, with `ignore_changes` and
`prevent_destroy`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from .filter_patterns import FilterCriteria
from .spec_fields import AccessUri, ApiModel, Arn, api_field, matching_whole

DESTINATION_PATTERN = (
    r"^$|^kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))$"
    r"|^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)$"
)


class OnFailure(ApiModel):
    destination: str | None = api_field(
        "Destination",
        "ARN of an SQS queue, SNS topic or S3 bucket (or kafka://topic for Kafka) for discarded batches.",
        max_length=350,
        pattern=DESTINATION_PATTERN,
    )


class DestinationConfig(ApiModel):
    on_failure: OnFailure | None = api_field(
        "OnFailure", "Where to send records that failed processing."
    )
    on_success: OnFailure | None = api_field(
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
                        pattern=matching_whole(
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
    schema_registry_uri: str | None = api_field(
        "SchemaRegistryURI",
        "Glue schema registry ARN or Confluent registry URL.",
        min_length=1,
        max_length=10000,
        pattern=r"^[a-zA-Z0-9-\/*:_+=.@-]*$",
    )
    event_record_format: Literal["JSON", "SOURCE"] | None = api_field(
        "EventRecordFormat", "Format Lambda delivers records in."
    )
    access_configs: list[SchemaRegistryAccessConfig] | None = api_field(
        "AccessConfigs", "Credentials for the registry."
    )
    schema_validation_configs: list[SchemaValidationConfig] | None = api_field(
        "SchemaValidationConfigs", "Record parts to validate."
    )


class KafkaEventSourceConfig(ApiModel):
    consumer_group_id: str | None = api_field(
        "ConsumerGroupId",
        "Kafka consumer group; defaults to the mapping's UUID; cannot change after creation.",
        min_length=1,
        max_length=200,
        pattern=r"^[a-zA-Z0-9-\/*:_+=.@-]*$",
    )
    schema_registry_config: SchemaRegistryConfig | None = api_field(
        "SchemaRegistryConfig", "Schema registry used to decode records."
    )


class SelfManagedKafkaEventSourceConfig(KafkaEventSourceConfig):
    consumption_mode: Literal["Stream", "Queue"] | None = api_field(
        "ConsumptionMode",
        "Stream (default: a consumer group, order kept per partition) or Queue (a Kafka share "
        "group, Kafka 4.2+; order not kept).",
    )


class ScalingConfig(ApiModel):
    maximum_concurrency: int | None = api_field(
        "MaximumConcurrency", "Most concurrent invocations the SQS source may drive.", ge=2, le=1000
    )


class DocumentDBEventSourceConfig(ApiModel):
    database_name: str | None = api_field(
        "DatabaseName",
        "Database to watch (required).",
        min_length=1,
        max_length=63,
        pattern=r'^[^ /\.$"]*$',
    )
    collection_name: str | None = api_field(
        "CollectionName",
        "Collection to watch; all collections when omitted.",
        min_length=1,
        max_length=57,
        pattern=r"^(?!system\.)[_a-zA-Z0-9][^$]*$",
    )
    full_document: Literal["UpdateLookup", "Default"] | None = api_field(
        "FullDocument", "Whether update events carry the whole document."
    )


class MetricsConfig(ApiModel):
    metrics: list[Literal["EventCount", "ErrorCount", "KafkaMetrics"]] | None = api_field(
        "Metrics", "Enhanced metrics to publish.", max_length=3
    )


class LoggingConfig(ApiModel):
    system_log_level: Literal["DEBUG", "INFO", "WARN"] | None = api_field(
        "SystemLogLevel", "Level of the poller's system logs."
    )


class ProvisionedPollerConfig(ApiModel):
    minimum_pollers: int | None = api_field("MinimumPollers", "Pollers kept ready.", ge=1, le=200)
    maximum_pollers: int | None = api_field(
        "MaximumPollers", "Most pollers (SQS up to 10000, Kafka up to 2000).", ge=1, le=10000
    )
    poller_group_name: str | None = api_field(
        "PollerGroupName",
        "Group sharing provisioned pollers.",
        max_length=128,
        pattern=r"^[a-zA-Z0-9-_]*$",
    )


class MappingSettings(ApiModel):
    """Every CreateEventSourceMapping parameter except FunctionName (the key under functions)."""

    event_source_arn: Annotated[Arn, Field(max_length=10000)] | None = api_field(
        "EventSourceArn",
        "ARN of the source (queue, stream, cluster, broker); identifies the mapping.",
    )
    enabled: bool | None = api_field("Enabled", "Whether the mapping polls. AWS default: true.")
    batch_size: int | None = api_field(
        "BatchSize", "Most records per invocation (SQS default 10, others 100).", ge=1, le=10000
    )
    filter_criteria: FilterCriteria | None = api_field("FilterCriteria", "Event filters.")
    maximum_batching_window_in_seconds: int | None = api_field(
        "MaximumBatchingWindowInSeconds", "Seconds to gather records before invoking.", ge=0, le=300
    )
    parallelization_factor: int | None = api_field(
        "ParallelizationFactor", "Batches per shard processed concurrently (streams).", ge=1, le=10
    )
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] | None = api_field(
        "StartingPosition", "Where a stream or Kafka mapping starts reading; create-only."
    )
    starting_position_timestamp: datetime | None = api_field(
        "StartingPositionTimestamp",
        "RFC 3339 time to start from with AT_TIMESTAMP; create-only.",
        strict=False,  # YAML may give a datetime or a quoted RFC 3339 string
    )
    destination_config: DestinationConfig | None = api_field(
        "DestinationConfig", "Where discarded batches go (streams and Kafka)."
    )
    maximum_record_age_in_seconds: int | None = api_field(
        "MaximumRecordAgeInSeconds",
        "Discard records older than this (-1: never; else 60-604800).",
        ge=-1,
        le=604800,
    )
    bisect_batch_on_function_error: bool | None = api_field(
        "BisectBatchOnFunctionError", "Split a failing batch in two and retry."
    )
    maximum_retry_attempts: int | None = api_field(
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
    ) = api_field("Tags", "Tags of the mapping; managed when given, left alone when omitted.")
    tumbling_window_in_seconds: int | None = api_field(
        "TumblingWindowInSeconds", "Tumbling window for stream aggregation.", ge=0, le=900
    )
    topics: (
        list[
            Annotated[
                str,
                Field(
                    min_length=1,
                    max_length=249,
                    pattern=matching_whole(r"^[^.]([a-zA-Z0-9\-_.]+)$"),
                ),
            ]
        ]
        | None
    ) = api_field(
        "Topics",
        "The Kafka topic (exactly one); identifies the mapping.",
        min_length=1,
        max_length=1,
    )
    queues: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = api_field(
        "Queues",
        "The Amazon MQ queue (exactly one); identifies the mapping.",
        min_length=1,
        max_length=1,
    )
    source_access_configurations: list[SourceAccessConfiguration] | None = api_field(
        "SourceAccessConfigurations",
        "Authentication and network access (Kafka, MQ, DocumentDB).",
        max_length=23,
    )
    self_managed_event_source: SelfManagedEventSource | None = api_field(
        "SelfManagedEventSource", "Self-managed Kafka brokers; identifies the mapping."
    )
    function_response_types: list[Literal["ReportBatchItemFailures"]] | None = api_field(
        "FunctionResponseTypes",
        "ReportBatchItemFailures enables partial batch responses.",
        max_length=1,
    )
    amazon_managed_kafka_event_source_config: KafkaEventSourceConfig | None = api_field(
        "AmazonManagedKafkaEventSourceConfig", "MSK consumer group and schema registry."
    )
    self_managed_kafka_event_source_config: SelfManagedKafkaEventSourceConfig | None = api_field(
        "SelfManagedKafkaEventSourceConfig",
        "Self-managed Kafka consumer group, schema registry and consumption mode.",
    )
    scaling_config: ScalingConfig | None = api_field("ScalingConfig", "SQS maximum concurrency.")
    document_db_event_source_config: DocumentDBEventSourceConfig | None = api_field(
        "DocumentDBEventSourceConfig", "DocumentDB database, collection and full-document mode."
    )
    kms_key_arn: str | None = api_field(
        "KMSKeyArn",
        "KMS key that encrypts the filter criteria.",
        max_length=10000,
        pattern=r"^(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)$|^$",
    )
    metrics_config: MetricsConfig | None = api_field("MetricsConfig", "Enhanced metrics.")
    logging_config: LoggingConfig | None = api_field("LoggingConfig", "Poller system logs (Kafka).")
    provisioned_poller_config: ProvisionedPollerConfig | None = api_field(
        "ProvisionedPollerConfig", "Provisioned mode pollers."
    )


class MappingSpec(MappingSettings):
    """One mapping as written under a function."""

    ignore_changes: list[str] | None = Field(
        None,
        description="Fields (snake_case, dotted for nested) that the diff leaves alone.",
    )
    prevent_destroy: bool = Field(
        False,
        description="When true, any plan that would delete or replace this mapping fails (a "
        "replace throws its read position away). Removing the mapping from the spec removes "
        "the guard with it, as in Terraform.",
    )


# The keys of the tool's own in a mapping: not settings of the mapping, never sent to AWS.
TOOL_KEYS: tuple[str, ...] = tuple(
    name for name in MappingSpec.model_fields if name not in MappingSettings.model_fields
)
