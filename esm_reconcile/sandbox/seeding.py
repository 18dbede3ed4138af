"""Seeding: create in the sandbox the functions, versions, aliases and sources a spec names.

Through the server's own API with boto3, like any client, except a DynamoDB stream's label,
which no API sets (see moto_adapter.set_stream_label).
"""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from esm_reconcile.aws import error_code
from esm_reconcile.errors import EsmError

from .moto_adapter import (
    pin_mq_broker_arn,
    pin_msk_cluster_arn,
    pin_secret_arn,
    set_stream_label,
)
from .references import Arn, FunctionRef, source_arn

ROLE_NAME = "esm-sandbox-role"

_MAX_VERSIONS = 1000  # publishing is one request pair per version; stop absurd qualifiers early
_KINESIS_ACTIVE_TIMEOUT_S = 10.0

_TRUST_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


class Seeder:
    """Creates the functions and sources a spec names, each once."""

    def __init__(self, url: str, account: str, default_region: str) -> None:
        self._url = url
        self._account = account
        self._region = default_region
        # Explicit credentials: seeding must not depend on what the environment resolves to.
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._role_arn: str | None = None
        self._zip = _function_zip()
        self._stream_labels: dict[tuple[str, str], str] = {}
        self._seeded: set[str] = set()  # ARNs of MSK clusters, MQ brokers, secrets made

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(
                service,
                region_name=region,
                endpoint_url=self._url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._clients[key]

    def seed(self, refs: list[FunctionRef], arns: list[str]) -> None:
        try:
            self._role()  # always there, so later function creation can count on it
            for ref in refs:
                self._function(ref)
            for ref in refs:
                if ref.version is not None:
                    self._ensure_version(ref, ref.version)
            # Aliases last, so each points at the newest version any ref asked for,
            # whatever order the refs came in.
            for ref in refs:
                if ref.alias is not None:
                    self._alias(ref, ref.alias)
            for raw in arns:
                arn = source_arn(raw)
                if arn is not None:
                    self._source(raw, arn)
        except ClientError as exc:
            raise EsmError(f"sandbox: seeding failed: {exc}") from exc

    # Functions

    def _role(self) -> str:
        if self._role_arn is None:
            iam = self.client("iam", self._region)
            try:
                role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=_TRUST_POLICY)[
                    "Role"
                ]
            except ClientError as exc:
                if error_code(exc) != "EntityAlreadyExists":
                    raise
                role = iam.get_role(RoleName=ROLE_NAME)["Role"]
            self._role_arn = str(role["Arn"])
        return self._role_arn

    def _function(self, ref: FunctionRef) -> None:
        try:
            self.client("lambda", ref.region).create_function(
                FunctionName=ref.name,
                Runtime="python3.12",
                Role=self._role(),
                Handler="index.handler",
                Code={"ZipFile": self._zip},
            )
        except ClientError as exc:
            # `f` and `f:live` share one function.
            if error_code(exc) != "ResourceConflictException":
                raise

    def _published(self, ref: FunctionRef) -> int:
        pages = self.client("lambda", ref.region).get_paginator("list_versions_by_function")
        versions = [
            int(v["Version"])
            for page in pages.paginate(FunctionName=ref.name)
            for v in page["Versions"]
            if v["Version"].isdigit()
        ]
        return max(versions, default=0)

    def _ensure_version(self, ref: FunctionRef, wanted: int) -> None:
        if wanted > _MAX_VERSIONS:
            raise EsmError(
                f"sandbox: {ref.name}:{wanted}: the sandbox publishes at most {_MAX_VERSIONS} versions"
            )
        lam = self.client("lambda", ref.region)
        have = self._published(ref)
        while have < wanted:
            if have:
                # Like Lambda, moto publishes nothing new unless code or configuration changed.
                lam.update_function_configuration(
                    FunctionName=ref.name, Description=f"esm sandbox version {have + 1}"
                )
            published = int(lam.publish_version(FunctionName=ref.name)["Version"])
            if published <= have:
                raise EsmError(f"sandbox: could not publish version {have + 1} of {ref.name}")
            have = published

    def _alias(self, ref: FunctionRef, alias: str) -> None:
        lam = self.client("lambda", ref.region)
        try:
            lam.get_alias(FunctionName=ref.name, Name=alias)
            return
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        self._ensure_version(ref, 1)
        lam.create_alias(
            FunctionName=ref.name, Name=alias, FunctionVersion=str(self._published(ref))
        )

    # Sources and destinations

    def _source(self, raw: str, arn: Arn) -> None:
        region = arn.region or self._region
        if arn.service == "sqs":
            attributes = {"FifoQueue": "true"} if arn.resource.endswith(".fifo") else {}
            self.client("sqs", region).create_queue(QueueName=arn.resource, Attributes=attributes)
        elif arn.service == "sns":
            attributes = {"FifoTopic": "true"} if arn.resource.endswith(".fifo") else {}
            self.client("sns", region).create_topic(Name=arn.resource, Attributes=attributes)
        elif arn.service == "kinesis" and arn.resource.startswith("stream/"):
            parts = arn.resource.split("/")
            stream_arn = self._kinesis_stream(region, parts[1])
            if len(parts) >= 4 and parts[2] == "consumer":
                # A consumer ARN (stream/NAME/consumer/CONSUMER:TIME): moto registers it with
                # an ARN of its own (no :TIME); the sandbox's mappings accept the spec's.
                self._kinesis_consumer(region, stream_arn, parts[3].split(":")[0])
        elif arn.service == "dynamodb" and arn.resource.startswith("table/"):
            parts = arn.resource.split("/")
            label = parts[3] if len(parts) >= 4 and parts[2] == "stream" else None
            self._dynamodb_table(raw, region, parts[1], label)
        elif arn.service == "s3":
            self._bucket(arn.resource.split("/")[0])
        elif arn.service == "kafka" and arn.resource.startswith("cluster/"):
            self._msk_cluster(raw, region, arn.resource.split("/")[1])
        elif arn.service == "mq" and arn.resource.count(":") == 2:
            self._mq_broker(raw, region, arn.resource.split(":")[1])
        elif arn.service == "secretsmanager" and arn.resource.startswith("secret:"):
            self._secret(raw, region, arn.resource[len("secret:") :])
        # Anything else moto cannot host (DocumentDB clusters: moto's docdb refuses the
        # engine) is left out; the sandbox's mappings accept its ARN all the same.

    def _done(self, raw: str) -> bool:
        """True when `raw` was seeded already; else marks it seeded."""
        if raw in self._seeded:
            return True
        self._seeded.add(raw)
        return False

    def _kinesis_consumer(self, region: str, stream_arn: str, name: str) -> None:
        try:
            self.client("kinesis", region).register_stream_consumer(
                StreamARN=stream_arn, ConsumerName=name
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise

    def _msk_cluster(self, raw: str, region: str, name: str) -> None:
        if self._done(raw):
            return
        made = self.client("kafka", region).create_cluster(
            ClusterName=name,
            KafkaVersion="3.6.0",
            NumberOfBrokerNodes=1,
            BrokerNodeGroupInfo={"InstanceType": "kafka.t3.small", "ClientSubnets": ["subnet-1"]},
        )["ClusterArn"]
        pin_msk_cluster_arn(self._account, region, made, raw)

    def _mq_broker(self, raw: str, region: str, name: str) -> None:
        if self._done(raw):
            return
        made = self.client("mq", region).create_broker(
            BrokerName=name,
            EngineType="ACTIVEMQ",  # the ARN does not say which engine (reference A.1)
            EngineVersion="5.17.6",
            HostInstanceType="mq.t3.micro",
            DeploymentMode="SINGLE_INSTANCE",
            PubliclyAccessible=False,
            AutoMinorVersionUpgrade=True,
            Users=[{"Username": "esm", "Password": "esm-sandbox-password"}],
        )["BrokerId"]
        pin_mq_broker_arn(self._account, region, made, raw)

    def _secret(self, raw: str, region: str, resource: str) -> None:
        # AWS appends "-" and six characters to the secret's name.
        name = resource[:-7] if len(resource) > 7 and resource[-7] == "-" else resource
        if self._done(raw):
            return
        try:
            self.client("secretsmanager", region).create_secret(Name=name, SecretString="{}")
        except ClientError as exc:
            if error_code(exc) != "ResourceExistsException":
                raise
            return  # one name, two suffixes: the first ARN stays
        pin_secret_arn(self._account, region, name, raw)

    def _kinesis_stream(self, region: str, name: str) -> str:
        kinesis = self.client("kinesis", region)
        try:
            kinesis.create_stream(StreamName=name, ShardCount=1)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
        deadline = time.monotonic() + _KINESIS_ACTIVE_TIMEOUT_S
        while True:
            summary = kinesis.describe_stream_summary(StreamName=name)
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return str(summary["StreamDescriptionSummary"]["StreamARN"])
            if time.monotonic() > deadline:
                raise EsmError(f"sandbox: kinesis stream {name} did not become ACTIVE")
            time.sleep(0.05)

    def _dynamodb_table(self, raw: str, region: str, table: str, label: str | None) -> None:
        ddb = self.client("dynamodb", region)
        try:
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
        if label is None:
            return
        key = (region, table)
        if self._stream_labels.setdefault(key, label) != label:
            raise EsmError(
                f"sandbox: table {table} is named with two stream labels "
                f"({self._stream_labels[key]}, {label}); the sandbox hosts one stream per table"
            )
        set_stream_label(self._account, region, table, label)
        got = ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if got != raw:
            raise EsmError(f"sandbox: could not give table {table} the stream {raw} (got {got})")

    def _bucket(self, bucket: str) -> None:
        s3 = self.client("s3", self._region)
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self._region != "us-east-1":  # us-east-1 rejects an explicit location constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            s3.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
