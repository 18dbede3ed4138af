"""Endpoints that are not AWS: a proxy, a captive portal, a wrong AWS_ENDPOINT_URL.

Each test starts a tiny HTTP server on 127.0.0.1 (ephemeral port, stopped by the fixture) that
answers as no AWS service would, points boto3 at it through the environment, and runs `esm`
in this process. The answer must be one line naming the endpoint and the operation, exit 1, no
traceback, and no write sent anywhere.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from esm_reconcile import answers, aws
from tests.cli_runner import CliResult, run_esm

ACCOUNT = "123456789012"  # moto's
FUNCTION = "orders"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"
PORTAL_PAGE = b"<!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head></html>"
GARBAGE = b"\x89\xff\x00\x13garbage\xfe"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    content_type: str | None = "application/json"
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()


HTML = Answer(content_type="text/html; charset=utf-8", body=PORTAL_PAGE)
EMPTY_OBJECT = Answer(body=b"{}")
NO_UUID = Answer(
    body=json.dumps(
        {"EventSourceMappings": [{"FunctionArn": FUNCTION_ARN, "State": "Enabled"}]}
    ).encode()
)
BYTES = Answer(content_type=None, body=GARBAGE)
REDIRECT = Answer(
    status=302,
    content_type="text/html",
    body=b"",
    headers=(("Location", "http://portal.example/login"),),
)
EMPTY_PAGE = Answer(body=b'{"EventSourceMappings": []}')
A_FUNCTION = Answer(body=json.dumps({"Configuration": {"FunctionArn": FUNCTION_ARN}}).encode())


@dataclass
class FakeEndpoint:
    """An HTTP server on 127.0.0.1 that answers every request as told, and records them.

    `answers` is keyed by what the request is: "list", "create" or "get_function" (Lambda's
    REST paths); anything else gets `default`.
    """

    default: Answer
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("POST", "PUT", "DELETE", "PATCH")]

    def answer_for(self, method: str, path: str) -> Answer:
        route = path.split("?", 1)[0]
        if route == "/2015-03-31/event-source-mappings" or route.endswith(
            "/event-source-mappings/"
        ):
            kind = "create" if method == "POST" else "list"
        elif route.startswith("/2015-03-31/functions/"):
            kind = "get_function"
        else:
            kind = "default"
        return self.answers.get(kind, self.default)

    def start(self) -> FakeEndpoint:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                fake.requests.append((self.command, self.path))
                answer = fake.answer_for(self.command, self.path)
                self.send_response(answer.status)
                if answer.content_type:
                    self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = answer  # noqa: N815

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown() waits for it, 0.5 s by default, at every test's end.
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Callable[..., FakeEndpoint]]:
    """endpoint(default_answer, list=..., create=...) → a started FakeEndpoint, stopped after."""
    started: list[FakeEndpoint] = []

    def start(default: Answer, **answers: Answer) -> FakeEndpoint:
        fake = FakeEndpoint(default, answers).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"version: 1\nfunctions:\n  {FUNCTION}:\n    - event_source_arn: {QUEUE}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fast_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few attempts and short timeouts, so that a dead endpoint fails in a second, not minutes."""
    monkeypatch.setattr(aws, "MAX_RETRIES", 1)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT", 1)
    monkeypatch.setattr(aws, "READ_TIMEOUT", 1)


def esm_against(endpoint: str, *args: str | Path, lambda_endpoint: str | None = None) -> CliResult:
    """`esm ARGS` with every AWS endpoint at `endpoint`, or Lambda's alone at `lambda_endpoint`."""
    env = {"AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint} if lambda_endpoint else {}
    return run_esm("--max-rps", "100", *args, endpoint=endpoint, env=env)


def the_error_line(result: CliResult) -> str:
    """The one line an error must be: exit 1, nothing else said, on stdout either."""
    assert not result.out.strip(), result.out
    return result.error_line()


# -- only the Lambda endpoint is wrong (STS answers from moto) ----------------------------------


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (HTML, "HTTP 200, text/html, not JSON"),
        (EMPTY_OBJECT, "HTTP 200, application/json, no EventSourceMappings list"),
        (NO_UUID, "HTTP 200, application/json, a mapping without UUID"),
        (BYTES, "HTTP 200, no content type, not JSON"),
        (REDIRECT, "HTTP 302, text/html, a redirect to http://portal.example/login"),
    ],
    ids=["html", "empty-object", "no-uuid", "garbage", "redirect"],
)
def test_plan_refuses_a_lambda_endpoint_that_is_not_lambda(
    answer: Answer,
    says: str,
    endpoint: Callable[..., FakeEndpoint],
    moto_server: str,
    spec: Path,
) -> None:
    fake = endpoint(answer)
    line = the_error_line(esm_against(moto_server, "plan", "-f", spec, lambda_endpoint=fake.url))

    assert (
        f"the Lambda endpoint {fake.url} answered ListEventSourceMappings with something that "
        f"is not a Lambda answer ({says}); check AWS_ENDPOINT_URL_LAMBDA" in line
    ), line
    assert "0 to create" not in line
    assert fake.requests and not fake.writes()


def test_apply_stops_at_the_plan_and_writes_nothing(
    endpoint: Callable[..., FakeEndpoint],
    moto_server: str,
    spec: Path,
) -> None:
    """The reported failure: a wrong Lambda endpoint read as "0 mappings" planned creates."""
    fake = endpoint(HTML)
    line = the_error_line(
        esm_against(moto_server, "apply", "--auto-approve", "-f", spec, lambda_endpoint=fake.url)
    )

    assert f"the Lambda endpoint {fake.url} answered ListEventSourceMappings" in line
    assert not fake.writes()


def test_a_create_answered_without_a_uuid_fails_that_change_once_without_a_traceback(
    endpoint: Callable[..., FakeEndpoint],
    moto_server: str,
    spec: Path,
) -> None:
    """Reads that look right, then a create answered with a transition state and no UUID (the
    old `KeyError: 'UUID'`): that change fails with words naming the endpoint, and the create
    is not sent again."""
    fake = endpoint(
        HTML,
        list=EMPTY_PAGE,
        get_function=A_FUNCTION,
        create=Answer(status=202, body=b'{"State": "Creating"}'),
    )
    result = esm_against(
        moto_server, "apply", "--auto-approve", "-f", spec, lambda_endpoint=fake.url
    )

    assert result.code == 1, result.output
    lines = [line.strip() for line in result.out.splitlines()]
    failed = [line for line in lines if line.startswith("failed:")]
    assert len(failed) == 1, result.out
    assert failed[0].startswith(f"failed: {FUNCTION}[{QUEUE}] (create):")
    assert (
        f"the Lambda endpoint {fake.url} answered CreateEventSourceMapping with something that "
        "is not a Lambda answer (HTTP 202, application/json, a mapping without UUID)" in failed[0]
    )
    assert [method for method, _ in fake.writes()] == ["POST"]


def test_export_refuses_a_lambda_endpoint_that_is_not_lambda(
    endpoint: Callable[..., FakeEndpoint],
    moto_server: str,
) -> None:
    fake = endpoint(HTML)
    line = the_error_line(
        esm_against(moto_server, "export", "--function", FUNCTION, lambda_endpoint=fake.url)
    )

    assert f"the Lambda endpoint {fake.url} answered " in line
    assert "not a Lambda answer (HTTP 200, text/html, not JSON)" in line
    assert not fake.writes()


# -- every endpoint is wrong: STS is asked first ------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (HTML, "HTTP 200, text/html, XML without GetCallerIdentityResponse"),
        (EMPTY_OBJECT, "HTTP 200, application/json, not XML"),
        (BYTES, "HTTP 200, no content type, not XML"),
        (Answer(status=403, content_type="text/html", body=b"<html>denied</html>"), "HTTP 403"),
    ],
    ids=["html", "empty-object", "garbage", "html-403"],
)
@pytest.mark.parametrize("command", [("plan", "-f"), ("apply", "--auto-approve", "-f")])
def test_an_sts_endpoint_that_is_not_sts_is_named(
    answer: Answer,
    says: str,
    command: tuple[str, ...],
    endpoint: Callable[..., FakeEndpoint],
    spec: Path,
) -> None:
    fake = endpoint(answer)
    line = the_error_line(esm_against(fake.url, *command, spec))

    assert "sts:GetCallerIdentity" in line
    assert (
        f"the STS endpoint {fake.url} answered GetCallerIdentity with something that is not an "
        f"STS answer ({says}" in line
    ), line
    assert not fake.writes() or all(path == "/" for _, path in fake.writes())  # STS is POST /
    assert len(fake.requests) == 1  # not retried: it will not turn into AWS


def test_a_5xx_page_is_retried_then_named(
    endpoint: Callable[..., FakeEndpoint],
    fast_failures: None,
    spec: Path,
) -> None:
    """A proxy's 502 page may pass: it is retried like any 5xx, and named once it persists."""
    fake = endpoint(Answer(status=502, content_type="text/html", body=b"<html>Bad Gateway"))
    line = the_error_line(esm_against(fake.url, "plan", "-f", spec))

    assert f"the STS endpoint {fake.url} answered GetCallerIdentity" in line
    assert "(HTTP 502, text/html, not XML)" in line
    assert len(fake.requests) == 1 + aws.MAX_RETRIES


# -- endpoints that do not answer at all ----------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_endpoint_refusing_connections_is_one_line(
    fast_failures: None,
    spec: Path,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    line = the_error_line(esm_against(url, "plan", "-f", spec))

    assert "Could not connect to the endpoint URL" in line and url in line


def test_an_endpoint_that_never_answers_is_one_line(
    fast_failures: None,
    spec: Path,
) -> None:
    # Listening but never accepting: the kernel completes the connection, nobody answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        line = the_error_line(esm_against(url, "plan", "-f", spec))

    assert "timeout" in line.lower() and url in line


# -- what AWS and its emulators send passes ------------------------------------------------------
# moto's server labels Lambda's JSON answers text/html, and the body decides, not the label: every
# test of test_cli_e2e.py plans and applies through it.


def test_an_answer_botocore_cannot_parse_is_named_and_other_errors_pass_through() -> None:
    """The last line of defence, for what the body checks let through."""
    from botocore.parsers import ResponseParserError

    guard = answers.AnswerGuard("sts", "http://127.0.0.1:9", "query")
    with pytest.raises(answers.NotAnAwsAnswer) as refused:
        guard.after_call_error(
            exception=ResponseParserError("Unable to parse response"),
            event_name="after-call-error.sts.GetCallerIdentity",
        )
    assert str(refused.value).startswith(
        "the STS endpoint http://127.0.0.1:9 answered GetCallerIdentity with something that is "
        "not an STS answer (an answer botocore cannot parse (ResponseParserError"
    )
    guard.after_call_error(exception=TimeoutError(), event_name="after-call-error.sts.X")
