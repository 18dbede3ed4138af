"""The one module that imports moto or touches its state; the rest of the sandbox sees WSGI.

moto is imported when a sandbox starts, not when this module is: it is an optional extra
(`esm-reconcile[sandbox]`), and the CLI imports the sandbox only for `--sandbox`.

moto keeps its backends (what each account and region holds) in module globals shared by every
server in the process; that is what lets `set_stream_label` and `create_mappings_in_backend`
reach the state of the server this process runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from esm_reconcile.errors import EsmError

from .wsgi import WSGIApp

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

    BackendDict.reset()
    reset_model_data()


def set_stream_label(account: str, region: str, table: str, label: str) -> None:
    """Give a DynamoDB table's stream the label a spec names.

    moto labels a stream with its creation time, and Lambda matches EventSourceArn against
    the stream ARN exactly; no API sets a label, so set it on moto's table object.
    """
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends[account][region].get_table(table).latest_stream_label = label


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
    return [backend.create_event_source_mapping(dict(request)).uuid for request in requests]


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
