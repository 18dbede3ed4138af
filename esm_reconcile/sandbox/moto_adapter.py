"""The one module that imports moto or touches its state; the rest of the sandbox sees WSGI.

moto is imported when a sandbox starts, not when this module is: it is an optional extra
(`esm-reconcile[sandbox]`), and the CLI imports the sandbox only for `--sandbox`.

moto keeps its backends (what each account and region holds) in module globals shared by every
server in the process; that is what lets `set_stream_label` and `create_mappings_in_backend`
reach the state of the server this process runs.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from esm_reconcile.errors import EsmError

from .wsgi import MAPPINGS_PATH, Answer, WSGIApp, call_app, lambda_region

HOST = "127.0.0.1"  # never 0.0.0.0: nothing of the sandbox may be reachable from elsewhere


def require_moto() -> None:
    """Fail with the install hint before anything starts, when moto's server is missing."""
    try:
        import moto.server  # noqa: F401  (needs flask/werkzeug: moto[server])
    except ImportError as exc:
        raise EsmError("the sandbox needs moto: pip install 'esm-reconcile[sandbox]'") from exc


@contextlib.contextmanager
def serving(wrap: Callable[[WSGIApp], WSGIApp]) -> Iterator[str]:
    """Serve moto, wrapped by `wrap`, on HOST at a free port; yield its URL.

    moto's state is wiped before and after, so each server starts empty and leaves nothing.
    """
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    reset_backends()
    try:
        with _quiet_werkzeug():
            app = wrap(DomainDispatcherApplication(create_backend_app))
            # Port 0: the OS picks a free port at bind time, with no window between probing
            # for a port and binding it.
            try:
                server = make_server(HOST, 0, app, threaded=True)
            except OSError as exc:
                raise EsmError(f"the sandbox server did not start: {exc}") from exc
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                yield f"http://{HOST}:{server.server_port}"
            finally:
                server.shutdown()
                thread.join()
                server.server_close()
    finally:
        reset_backends()


def reset_backends() -> None:
    from moto.core.base_backend import BackendDict
    from moto.core.model_instances import reset_model_data

    _changed()
    BackendDict.reset()
    reset_model_data()
    _changed()


# Bumped around every change to moto's state that does not come through a server's HTTP
# requests (backends reset, mappings made in the backend), so that ListedMappings drops what
# it kept.
_generation = itertools.count()
_changes = [next(_generation)]


def _changed() -> None:
    _changes[0] = next(_generation)


@dataclass(eq=False)
class ListedMappings:
    """moto's ListEventSourceMappings answers, kept until anything could have changed them.

    moto answers a List with every mapping of the region, whatever the page asked for, and
    the AWS-like layer above cuts the page out: each page costs as much as the whole region
    (19 ms of CPU at 1,000 mappings), where AWS's cost a page. Kept answers bring a page back
    to about its own size, so that a sandbox of many regions is not slower per region than
    a sandbox of one. An answer is kept per region and filter (moto ignores Marker and
    MaxItems), and everything kept is dropped when a request other than GET or HEAD passes
    through (STS's excepted: they change nothing), before and after moto handles it, and when
    this module changes moto's state directly.
    """

    app: WSGIApp
    region: str  # for unsigned requests, which name none
    _kept: dict[tuple[str, str, str], Answer] = field(default_factory=dict, init=False)
    _kept_at: int = field(default=-1, init=False)  # the generation of what is kept
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD", "") not in ("GET", "HEAD") and not _is_sts(environ):
            _changed()
            try:  # to its end here, so that the change is made before the second bump
                return call_app(self.app, environ).send(start_response)
            finally:
                _changed()
        key = self._key(environ)
        if key is None:
            return self.app(environ, start_response)
        generation = _changes[0]  # before moto answers: a change meanwhile makes it stale
        with self._lock:
            kept = self._kept.get(key) if self._kept_at == generation else None
        if kept is not None:
            return kept.send(start_response)
        answer = call_app(self.app, environ)
        if answer.code == 200:
            with self._lock:
                if self._kept_at != generation:
                    self._kept = {}
                    self._kept_at = generation
                self._kept[key] = answer
        return answer.send(start_response)

    def _key(self, environ: dict[str, Any]) -> tuple[str, str, str] | None:
        """(region, EventSourceArn, FunctionName) of a List request, whatever its page; else None."""
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        if environ.get("PATH_INFO", "").rstrip("/") != MAPPINGS_PATH:
            return None
        region = lambda_region(environ, self.region)
        if region is None:
            return None
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        return (
            region,
            query.get("EventSourceArn", [""])[0],
            query.get("FunctionName", [""])[0],
        )


def _is_sts(environ: dict[str, Any]) -> bool:
    return "/sts/aws4_request" in environ.get("HTTP_AUTHORIZATION", "")


def set_stream_label(account: str, region: str, table: str, label: str) -> None:
    """Give a DynamoDB table's stream the label a spec names.

    moto labels a stream with its creation time, and Lambda matches EventSourceArn against
    the stream ARN exactly; no API sets a label, so set it on moto's table object.
    """
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends[account][region].get_table(table).latest_stream_label = label


def pin_msk_cluster_arn(account: str, region: str, made: str, wanted: str) -> None:
    """Give the MSK cluster moto made (ARN `made`) the ARN a spec names.

    moto names a cluster `cluster/<uuid>`, AWS `cluster/<name>/<uuid>-<n>`, and no API sets
    it: re-key the cluster in moto's backend.
    """
    from moto.kafka.models import kafka_backends

    backend = kafka_backends[account][region]
    cluster = backend.clusters.pop(made)
    cluster.arn = wanted
    backend.clusters[wanted] = cluster


def pin_mq_broker_arn(account: str, region: str, made_id: str, wanted: str) -> None:
    """Give the MQ broker moto made the ARN (and id) a spec names: moto names a broker
    `broker:<id>`, AWS `broker:<name>:<id>`."""
    from moto.mq.models import mq_backends

    backend = mq_backends[account][region]
    broker = backend.brokers.pop(made_id)
    broker.id = broker.broker_id = wanted.rsplit(":", 1)[1]
    broker.arn = wanted
    backend.brokers[broker.id] = broker


def pin_secret_arn(account: str, region: str, name: str, wanted: str) -> None:
    """Give a secret the ARN a spec names (moto picks its own random six-letter suffix)."""
    from moto.secretsmanager.models import secretsmanager_backends

    secretsmanager_backends[account][region].secrets[name].arn = wanted


def create_mappings_in_backend(
    account: str, region: str, requests: Iterable[dict[str, Any]]
) -> list[str]:
    """Create mappings straight in moto's Lambda backend of this process; their UUIDs.

    No HTTP, so no quota, latency, log or AWS-like checks: the "mappings already exist" state
    for a benchmark, or a mapping made behind the server's back for a test. Each request has
    CreateEventSourceMapping's fields (FunctionName, EventSourceArn, BatchSize, ...).
    """
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[account][region]
    _changed()
    try:
        return [backend.create_event_source_mapping(dict(request)).uuid for request in requests]
    finally:
        _changed()


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
