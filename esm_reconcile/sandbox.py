"""A local AWS to try specs against: an embedded moto server, seeded with what the specs name.

The server runs in this process (moto's ThreadedMotoServer), listens on 127.0.0.1 only, and
lives exactly as long as the ``sandbox()`` context. Inside the context the environment points
every boto3 client this process creates at it, so the rest of the package needs no sandbox
special cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from esm_reconcile import functions, rules
from esm_reconcile.aws import error_code
from esm_reconcile.errors import EsmError

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's own default account
ROLE_NAME = "esm-sandbox-role"
HOST = "127.0.0.1"  # never 0.0.0.0: nothing of the sandbox may be reachable from elsewhere

_MAX_VERSIONS = 1000  # publishing is one request pair per version; stop absurd qualifiers early
_KINESIS_ACTIVE_TIMEOUT_S = 10.0

_TRUST_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)

# Removed inside the sandbox: each could make a client skip the endpoint or sign as someone else.
# FIPS/dual-stack flags make botocore refuse a custom endpoint outright.
_REMOVED_ENV = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)

_ARN_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class FunctionRef:
    """A function reference from a spec, split into the parts the sandbox needs."""

    region: str
    account: str | None
    name: str
    qualifier: str | None  # None or "$LATEST": the unpublished function itself

    @property
    def version(self) -> int | None:
        return int(self.qualifier) if self.qualifier and self.qualifier.isdigit() else None

    @property
    def alias(self) -> str | None:
        if self.qualifier in (None, "$LATEST") or self.version is not None:
            return None
        return self.qualifier


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str


def parse_function_ref(ref: str, region: str) -> FunctionRef:
    """`name`, `name:qualifier`, a full function ARN or `ACCOUNT:function:name[:qualifier]`."""
    try:
        parsed = functions.parse_function_ref(ref)
    except ValueError:
        raise EsmError(f"sandbox: cannot tell which function {ref!r} names") from None
    return FunctionRef(parsed.region or region, parsed.account, parsed.name, parsed.qualifier)


def parse_arn(arn: str) -> Arn | None:
    """Split an ARN; None for anything that is not one (the spec validator reports those)."""
    parts = rules.parse_arn(arn)
    if parts is None:
        return None
    return Arn(parts["service"], parts["region"], parts["account"], parts["resource"])


def choose_account(account_id: str | None, refs: Iterable[FunctionRef], arns: Iterable[Arn]) -> str:
    """The one account the sandbox hosts: the one asked for or named by the ARNs, else moto's."""
    named = {ref.account for ref in refs if ref.account}
    named |= {arn.account for arn in arns if _ARN_ACCOUNT.match(arn.account)}
    if account_id is not None:
        if not _ARN_ACCOUNT.match(account_id):
            raise EsmError(f"sandbox: account id {account_id!r} is not 12 digits")
        named.add(account_id)
    if len(named) > 1:
        raise EsmError(
            "the sandbox hosts a single account, but the specs name " + ", ".join(sorted(named))
        )
    return named.pop() if named else DEFAULT_ACCOUNT_ID


@dataclass(frozen=True)
class _Moto:
    """The parts of moto the sandbox uses, imported only when a sandbox is started."""

    server_class: Any
    dynamodb_backends: Any
    reset: Callable[[], None]


def _import_moto() -> _Moto:
    try:
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data
        from moto.dynamodb.models import dynamodb_backends
        from moto.server import ThreadedMotoServer  # needs flask/werkzeug (moto[server])
    except ImportError as exc:
        raise EsmError("the sandbox needs moto: pip install 'esm-reconcile[sandbox]'") from exc

    def reset() -> None:
        # Backends are module globals shared by every server in this process; wipe them so
        # each sandbox starts empty and leaves nothing behind.
        BackendDict.reset()
        reset_model_data()

    return _Moto(_aws_like_server_class(ThreadedMotoServer), dynamodb_backends, reset)


MAPPINGS_PATH = "/2015-03-31/event-source-mappings"
AWS_PAGE_LIMIT = 100  # ListEventSourceMappings returns at most 100 items whatever MaxItems says


class AwsLikeMappings:
    """WSGI middleware that corrects two moto answers about mappings to what AWS answers.

    - List: moto returns every mapping in one page; AWS pages by <=100 with NextMarker. Paging
      the same way makes the sandbox cost what AWS costs.
    - FunctionArn: moto reports `f` for `f:$LATEST` and the version ARN for `f:alias`; AWS
      reports the qualified ARN the mapping was created with (reference E.9, A.4).
    Optionally logs each request as (method, path) so callers can count API calls.
    """

    def __init__(self, app: Callable, request_log: list[tuple[str, str]] | None = None) -> None:
        self.app = app
        self.request_log = request_log
        self.function_arns: dict[str, str] = {}  # mapping UUID → qualified ARN it was made with

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if self.request_log is not None:
            self.request_log.append((method, path))
        if not path.startswith(MAPPINGS_PATH):
            return self.app(environ, start_response)

        requested = None
        if method in ("POST", "PUT"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            requested = (json.loads(raw or b"{}") or {}).get("FunctionName")

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.app(environ, capture))
        if not captured["status"].startswith(("200", "201", "202")) or not body:
            start_response(captured["status"], captured["headers"])
            return [body]
        data = json.loads(body)
        if "EventSourceMappings" in data:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            limit = min(int(query.get("MaxItems", [AWS_PAGE_LIMIT])[0]), AWS_PAGE_LIMIT)
            start = int(query.get("Marker", ["0"])[0] or 0)
            items = data["EventSourceMappings"]
            data["EventSourceMappings"] = items[start : start + limit]
            data.pop("NextMarker", None)
            if start + limit < len(items):
                data["NextMarker"] = str(start + limit)
            for item in data["EventSourceMappings"]:
                self._correct_function_arn(item, None)
        else:
            self._correct_function_arn(data, requested)
        out = json.dumps(data).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(out)))])
        return [out]

    def _correct_function_arn(self, item: dict[str, Any], requested: str | None) -> None:
        uuid, reported = item.get("UUID"), item.get("FunctionArn")
        if not uuid or not reported:
            return
        if requested:
            if requested.startswith("arn:"):
                qualified = requested
            else:  # a name or name:qualifier; the account and region are the reported ones
                qualified = reported.split(":function:")[0] + ":function:" + requested
            self.function_arns[uuid] = qualified
        item["FunctionArn"] = self.function_arns.get(uuid, reported)


def _aws_like_server_class(base: type) -> type:
    """moto's ThreadedMotoServer with AWS-like List paging and an optional request log."""

    class AwsLikeMotoServer(base):  # type: ignore[misc, valid-type]
        request_log: list[tuple[str, str]] | None = None
        start_error: Exception | None = None

        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                create_backend_app,
            )
            from werkzeug.serving import make_server

            try:
                app = AwsLikeMappings(
                    DomainDispatcherApplication(create_backend_app), self.request_log
                )
                self._server = make_server(self._ip_address, self._port, app, True)
            except Exception as exc:  # start() waits for the ready event: never leave it hanging
                self.start_error = exc
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever()

    return AwsLikeMotoServer


@contextlib.contextmanager
def sandbox(
    function_refs: Iterable[str],
    source_arns: Iterable[str],
    region: str,
    account_id: str | None = None,
    request_log: list[tuple[str, str]] | None = None,
) -> Iterator[str]:
    """Start an embedded moto server on 127.0.0.1 (free port), seed it, yield its endpoint URL.

    `request_log`, when given, receives (method, path) of every request the server answers.
    """
    moto = _import_moto()
    # Parse and check everything before starting anything, so bad input needs no cleanup.
    refs = [parse_function_ref(ref, region) for ref in dict.fromkeys(function_refs)]
    raw_arns = list(dict.fromkeys(source_arns))
    account = choose_account(account_id, refs, [a for a in map(parse_arn, raw_arns) if a])

    # Port 0: the OS picks a free port at bind time and the server reports it back, with no
    # window between probing for a port and binding it.
    server = moto.server_class(ip_address=HOST, port=0, verbose=False)
    server.request_log = request_log
    moto.reset()
    with _quiet_werkzeug():
        server.start()
        if server.start_error is not None:
            raise EsmError(f"the sandbox server did not start: {server.start_error}")
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            with _sandbox_environ(url, region, account), _fresh_default_session():
                seeder = _Seeder(url, account, region, moto)
                seeder.seed(refs, raw_arns)
                yield url
        finally:
            server.stop()
            moto.reset()


@contextlib.contextmanager
def _sandbox_environ(url: str, region: str, account: str) -> Iterator[None]:
    """Point boto3 at the sandbox; on exit put back every touched variable as it was."""
    changes: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # moto reads this on every request before anything else (access key, header), so
        # every client lands in this account whatever credentials it signs with.
        "MOTO_ACCOUNT_ID": account,
        # A user's config/credentials files could add credential_process, SSO, or
        # ignore_configured_endpoint_urls; the sandbox needs none of them.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    changes |= dict.fromkeys(_REMOVED_ENV)
    # Per-service endpoints (AWS_ENDPOINT_URL_SQS, ...) win over AWS_ENDPOINT_URL.
    changes |= dict.fromkeys(k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_"))
    # A proxy would otherwise see (and fail) requests to 127.0.0.1.
    for key in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(key, "")
        changes[key] = f"{current},{HOST}" if current else HOST

    saved = {key: os.environ.get(key) for key in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _fresh_default_session() -> Iterator[None]:
    """boto3's default session caches credentials; a fresh one inside reads the sandbox env."""
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


@contextlib.contextmanager
def _quiet_werkzeug() -> Iterator[None]:
    """werkzeug logs every request at INFO to stderr unless its logger has a level."""
    logger = logging.getLogger("werkzeug")
    saved = logger.level
    logger.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(saved)


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


class _Seeder:
    """Creates the functions and sources a spec names, each once."""

    def __init__(self, url: str, account: str, default_region: str, moto: _Moto) -> None:
        self._url = url
        self._account = account
        self._region = default_region
        self._moto = moto
        # Explicit credentials: seeding must not depend on what the environment resolves to.
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._role_arn: str | None = None
        self._zip = _function_zip()
        self._stream_labels: dict[tuple[str, str], str] = {}

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
                arn = parse_arn(raw)
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
            # A consumer ARN (stream/NAME/consumer/...) gets its stream only: moto cannot
            # host consumers as event sources.
            self._kinesis_stream(region, arn.resource.split("/")[1])
        elif arn.service == "dynamodb" and arn.resource.startswith("table/"):
            parts = arn.resource.split("/")
            label = parts[3] if len(parts) >= 4 and parts[2] == "stream" else None
            self._dynamodb_table(raw, region, parts[1], label)
        elif arn.service == "s3":
            self._bucket(arn.resource.split("/")[0])
        # Anything else (kafka, mq, rds, ...) moto cannot host: the sandbox leaves it out.

    def _kinesis_stream(self, region: str, name: str) -> None:
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
                return
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
        # moto labels a stream with its creation time, and Lambda matches EventSourceArn
        # against the stream ARN exactly. The server runs in this process, so set the label
        # on moto's table object to the one the spec names.
        backend = self._moto.dynamodb_backends[self._account][region]
        backend.get_table(table).latest_stream_label = label
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
