"""The GitHub Action: action.yml's wiring, and esm_reconcile/action.py run as the runner runs it.

GitHub itself cannot run here. It is replaced by what the runner hands a step: GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH as temporary files, the other GITHUB_* variables, and
the REST API as `FakeGitHub`, an http.server on 127.0.0.1 that keeps comments and records every
request. AWS is the session's moto server (AWS_ENDPOINT_URL reaches the esm subprocesses).
action.yml's steps run as bash with their `${{ }}` expressions filled in by `expression()`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from esm_reconcile import action
from tests.cli_runner import cli_environment, run_esm
from tests.conftest import REPO_ROOT

ACTION_YML = REPO_ROOT / "action.yml"
TOKEN = "ghs_test-token-never-printed"
REPOSITORY = "acme/mappings"
PR = 7
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"
REGION = "us-east-1"


def load_action() -> dict[str, Any]:
    return yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))


def step_by_id(document: dict[str, Any], step_id: str) -> dict[str, Any]:
    (step,) = [s for s in document["runs"]["steps"] if s.get("id") == step_id]
    return step


# -- a stub of the GitHub REST API -------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorization: str
    body: Any


@dataclass
class FakeGitHub:
    """Issue comments of one pull request, served as GitHub's REST API serves them (pages with
    Link headers, 401 without the token, 422 for a body over 65536 characters)."""

    page_size: int = 100
    fail_with: int | None = None  # answer every request with this status
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    next_id: int = 1000

    def add(self, body: str, login: str = "github-actions[bot]") -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "user": {"login": login}}
        self.comments.append(comment)
        return comment

    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if method is None or r.method == method]

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = handler.headers.get("Authorization", "")
        self.requests.append(Recorded(handler.command, parsed.path, query, auth, body))
        if self.fail_with:
            return self.send(handler, self.fail_with, {"message": "Resource not accessible"})
        if auth != f"Bearer {TOKEN}":
            return self.send(handler, 401, {"message": "Bad credentials"})
        listing = f"/repos/{REPOSITORY}/issues/{PR}/comments"
        edit = re.fullmatch(rf"/repos/{REPOSITORY}/issues/comments/(\d+)", parsed.path)
        if (handler.command, parsed.path) == ("GET", listing):
            size = min(int(query.get("per_page", 30)), self.page_size)
            page = int(query.get("page", 1))
            items = self.comments[(page - 1) * size : page * size]
            headers = {}
            if page * size < len(self.comments):
                nxt = f"{self.url}{listing}?per_page={query.get('per_page', 30)}&page={page + 1}"
                headers["Link"] = f'<{nxt}>; rel="next", <{self.url}{listing}?page=99>; rel="last"'
            return self.send(handler, 200, items, headers)
        if body is not None and len(body.get("body", "")) > action.COMMENT_LIMIT:
            return self.send(handler, 422, {"message": "Body is too long (maximum is 65536)"})
        if (handler.command, parsed.path) == ("POST", listing):
            return self.send(handler, 201, self.add(body["body"]))
        if handler.command == "PATCH" and edit:
            for comment in self.comments:
                if comment["id"] == int(edit.group(1)):
                    comment["body"] = body["body"]
                    return self.send(handler, 200, comment)
        return self.send(handler, 404, {"message": "Not Found"})

    @staticmethod
    def send(
        handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A FakeGitHub on 127.0.0.1; it shuts itself down after the test, or after two minutes
    if something keeps the test from ending it."""
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.answer(self)

        do_POST = do_PATCH = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    watchdog = threading.Timer(120, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield fake
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nobody listens there now


# -- running the action ------------------------------------------------------------------------


@dataclass
class ActionRun:
    code: int
    out: str
    err: str
    outputs: dict[str, str]
    summary: str


def parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: name=value, or name<<DELIMITER ... DELIMITER."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            outputs[name] = "\n".join(value)
        elif line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def expression(text: str, context: dict[str, str]) -> str:
    """Fill in `${{ name }}` as the runner would, for the plain names action.yml uses."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        assert name in context, f"action.yml uses ${{{{ {name} }}}}, which the test cannot fill"
        return context[name]

    return re.sub(r"\$\{\{(.*?)\}\}", lookup, text)


class Runner:
    """Runs the action step after step against one fake GitHub (and moto), each run with fresh
    GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files."""

    def __init__(self, tmp_path: Path, endpoint: str | None, api_url: str) -> None:
        self.tmp_path, self.endpoint, self.api_url = tmp_path, endpoint, api_url
        self.count = 0
        self.event_name = "pull_request"
        self.event: dict[str, Any] = {"number": PR, "pull_request": {"number": PR}}
        self.event["pull_request"]["head"] = {"sha": HEAD_SHA}

    def environment(self, inputs: dict[str, str]) -> dict[str, str]:
        self.count += 1
        run_dir = self.tmp_path / f"run{self.count}"
        run_dir.mkdir()
        event_path = run_dir / "event.json"
        event_path.write_text(json.dumps(self.event))
        github_env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(run_dir / "output"),
            "GITHUB_STEP_SUMMARY": str(run_dir / "summary.md"),
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_API_URL": self.api_url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_SHA": "f" * 40,
            "RUNNER_TEMP": str(run_dir / "temp"),
        }
        env = cli_environment(os.environ, self.endpoint, github_env)
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env.pop(proxy, None)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
        )
        for name, value in inputs.items():
            env["INPUT_" + name.upper().replace("-", "_")] = value
        return env

    def run(self, via_action_yml: bool = False, **inputs: str) -> ActionRun:
        inputs.setdefault("github-token", TOKEN)
        env = self.environment(inputs)
        if via_action_yml:
            argv, env = self.action_yml_step(inputs, env)
        else:
            argv = [sys.executable, "-m", "esm_reconcile.action"]
        process = subprocess.run(
            argv,
            env=env,
            cwd=self.tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        output_file, summary_file = Path(env["GITHUB_OUTPUT"]), Path(env["GITHUB_STEP_SUMMARY"])
        run = ActionRun(
            process.returncode,
            process.stdout,
            process.stderr,
            parse_outputs(output_file.read_text() if output_file.exists() else ""),
            summary_file.read_text() if summary_file.exists() else "",
        )
        assert TOKEN not in run.out + run.err + run.summary
        assert "Traceback" not in run.err, run.err
        return run

    def action_yml_step(
        self, inputs: dict[str, str], env: dict[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The `esm` step of action.yml as the runner would run it: its env from the inputs
        (action.yml's defaults for those not given), `python` the one setup-python put first
        on PATH, GITHUB_ACTION_PATH the action's checkout."""
        document = load_action()
        context = {"github.token": TOKEN}
        for name, spec in document["inputs"].items():
            default = expression(str(spec.get("default", "")), context)
            context[f"inputs.{name}"] = inputs.get(name, default)
        step = step_by_id(document, "esm")
        env = {k: v for k, v in env.items() if not k.startswith("INPUT_")}
        for name, value in step["env"].items():
            env[name] = expression(str(value), context)
        bin_dir = self.tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        python = bin_dir / "python"  # a wrapper, not a symlink: a venv's python stays the venv's
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["GITHUB_ACTION_PATH"] = str(REPO_ROOT)
        assert step["shell"] == "bash"
        return ["bash", "-e", "-c", step["run"]], env


@pytest.fixture
def gh_action(tmp_path: Path, moto_server: str, github: FakeGitHub) -> Runner:
    return Runner(tmp_path, moto_server, github.url)


def marker(paths: str) -> str:
    return action.marker_for(paths)


# -- action.yml --------------------------------------------------------------------------------


def test_action_yml_inputs_and_outputs_match_the_module():
    document = load_action()
    assert document["runs"]["using"] == "composite"
    inputs, outputs = document["inputs"], document["outputs"]
    install_only = {"version", "python-version"}
    assert set(inputs) == set(action.INPUTS) | install_only
    assert all(spec.get("description") for spec in [*inputs.values(), *outputs.values()])
    assert inputs["paths"]["required"] is True
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["command"]["default"] in action.COMMANDS

    step = step_by_id(document, "esm")
    env_names = {f"INPUT_{name.upper().replace('-', '_')}": name for name in action.INPUTS}
    assert step["env"] == {var: f"${{{{ inputs.{name} }}}}" for var, name in env_names.items()}
    script = re.search(r'"\$GITHUB_ACTION_PATH/([^"]+)"', step["run"]).group(1)
    assert (REPO_ROOT / script).resolve() == Path(action.__file__).resolve()

    assert set(outputs) == set(action.OUTPUTS) == set(action.Result(0).outputs())
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.esm.outputs.{name} }}}}"

    # Every expression names a declared input (or the github context); none is pasted into a
    # script, where an input's text would run as shell (script injection): inputs go via env.
    text = ACTION_YML.read_text(encoding="utf-8")
    for used in re.findall(r"inputs\.([\w-]+)", text):
        assert used in inputs, used
    for each in document["runs"]["steps"]:
        assert "${{" not in each.get("run", ""), each


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("", ["{action_path}"]),
        ("0.1.0", ["esm-reconcile==0.1.0"]),
        ("latest", ["--upgrade", "esm-reconcile"]),
    ],
)
def test_install_step_installs_the_checkout_or_the_version_asked(tmp_path, version, expected):
    (install,) = [s for s in load_action()["runs"]["steps"] if s.get("name") == "Install esm"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "calls"
    (fake_bin / "python").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (fake_bin / "python").chmod(0o755)
    env = {"PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}", "GITHUB_ACTION_PATH": "/act"}
    env.update(
        {k: expression(str(v), {"inputs.version": version}) for k, v in install["env"].items()}
    )
    subprocess.run(["bash", "-e", "-c", install["run"]], env=env, check=True, timeout=30)
    pip, shown = calls.read_text().splitlines()
    wanted = [word.format(action_path="/act") for word in expected]
    assert pip.split()[:3] == ["-m", "pip", "install"] and pip.split()[-len(wanted) :] == wanted
    assert shown == "-m esm_reconcile --version"


# -- end to end against moto and the fake GitHub -----------------------------------------------


def test_plan_creates_one_comment_then_edits_it(gh_action, github, seed, write_spec):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=gh_action.endpoint)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    other = github.add("LGTM", login="reviewer")

    first = gh_action.run(via_action_yml=True, paths=str(spec))  # as action.yml runs it
    assert first.code == 0, first.out + first.err
    assert first.outputs["exitcode"] == "2" and first.outputs["has-changes"] == "true"
    plan = json.loads(Path(first.outputs["plan-json"]).read_text())
    assert plan["summary"] == {"create": 1, "update": 0, "replace": 0, "delete": 0}
    assert first.outputs["result-json"] == first.outputs["plan-json"]
    saved = json.loads(Path(first.outputs["plan-file"]).read_text())
    assert saved["kind"] == "esm-saved-plan"
    assert "Plan: 1 to create" in first.out  # the text plan is in the log
    assert [r.method for r in github.requests] == ["GET", "POST"]
    assert github.requests[0].query["per_page"] == "100"
    assert all(r.authorization == f"Bearer {TOKEN}" for r in github.requests)
    assert len(github.comments) == 2
    body = github.comments[1]["body"]
    assert body.startswith(marker(str(spec)) + "\n")
    assert "**Plan: 1 to create, 0 to update, 0 to replace, 0 to delete.**" in body
    assert "(changes)" in body and HEAD_SHA[:12] in body
    assert "https://github.example/acme/mappings/actions/runs/4242" in body
    # The job summary: the same report, once (esm itself did not append a second plan).
    assert first.summary.count("**Plan: 1 to create") == 1
    assert first.summary.startswith("### esm plan: ")
    assert "<!-- esm-reconcile" not in first.summary

    # The next push changes the spec: the same comment is edited, no second one appears.
    spec.write_text(spec.read_text().replace("functions:", "functions:\n  beta: []"))
    seed(functions=["beta"], endpoint_url=gh_action.endpoint)
    second = gh_action.run(paths=str(spec))
    assert second.code == 0 and second.outputs["exitcode"] == "2"
    assert [r.method for r in github.requests[2:]] == ["GET", "PATCH"]
    assert github.requests[3].path == f"/repos/{REPOSITORY}/issues/comments/{github.next_id}"
    assert len(github.comments) == 2 and github.comments[0] == other
    assert github.comments[1]["body"].startswith(marker(str(spec)))
    assert "esm-reconcile: updated comment" in second.out

    # Another spec set (here: another comment-key) gets a comment of its own.
    third = gh_action.run(paths=str(spec), **{"comment-key": "prod account"})
    assert third.code == 0
    assert [r.method for r in github.requests[4:]] == ["GET", "POST"]
    assert github.comments[2]["body"].startswith(marker("prod account"))
    assert len(github.comments) == 3


def test_comment_marker_on_a_later_page_is_found(gh_action, github, seed, write_spec):
    seed(functions=["alpha"], endpoint_url=gh_action.endpoint)
    spec = write_spec({"alpha": []}, region=REGION)  # managed, no mappings: no changes
    github.page_size = 3
    github.add(f"> {marker(str(spec))}\n> quoted by a reviewer")  # not a comment of ours
    for n in range(4):
        github.add(f"comment {n}")
    ours = github.add(f"{marker(str(spec))}\nold plan")
    github.add("a later comment")

    run = gh_action.run(paths=str(spec))
    assert run.code == 0, run.out + run.err
    assert run.outputs["exitcode"] == "0" and run.outputs["has-changes"] == "false"
    gets = github.calls("GET")
    assert [g.query.get("page", "1") for g in gets] == ["1", "2"]
    assert [(r.method, r.path) for r in github.calls()[2:]] == [
        ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{ours['id']}")
    ]
    assert "No changes." in ours["body"] and "(no changes)" in ours["body"]
    assert github.comments[0]["body"].startswith("> ")


def test_apply_applies_the_reviewed_plan_and_reports_outcomes(
    gh_action, github, seed, write_spec, list_mappings
):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=gh_action.endpoint)
    spec = write_spec(
        {"alpha": [{"event_source_arn": seeded.queues["qa"], "batch_size": 7}]}, region=REGION
    )
    # --region goes before the subcommand, --max-destroy to the apply (plan has no such option).
    args = "--region us-east-1 --max-destroy 0 --target alpha --detailed-exitcode"
    applied = gh_action.run(command="apply", paths=str(spec), args=args)
    assert applied.code == 0, applied.out + applied.err
    assert applied.outputs["exitcode"] == "2" and applied.outputs["has-changes"] == "true"
    (mapping,) = list_mappings(gh_action.endpoint)
    assert mapping["BatchSize"] == 7
    document = json.loads(Path(applied.outputs["result-json"]).read_text())
    assert [o["status"] for o in document["outcomes"]] == ["done"]
    assert document["outcomes"][0]["uuid"] == mapping["UUID"]
    assert json.loads(Path(applied.outputs["plan-json"]).read_text()) == document["plan"]
    assert "$ esm --region us-east-1 apply " in applied.out and "--max-destroy 0" in applied.out
    body = github.comments[0]["body"]
    assert "(applied)" in body and "**Apply complete: 1 created, 0 updated" in body
    assert f"| `alpha[{seeded.queues['qa']}]` | create | done |" in body
    assert "**Apply complete" in applied.summary

    again = gh_action.run(command="apply", paths=str(spec), comment="false")
    assert again.code == 0
    assert again.outputs["exitcode"] == "0" and again.outputs["has-changes"] == "false"
    assert again.outputs["result-json"] == ""
    assert "Nothing to apply." in again.summary
    assert [line for line in again.out.splitlines() if line.startswith("$ esm")] == [
        line for line in again.out.splitlines() if line.startswith(("$ esm plan", "$ esm show"))
    ]
    assert len(github.requests) == 2  # comment=false: no API call at all


def test_esm_error_fails_the_step_and_the_comment_says_why(tmp_path, github):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nfunctions:\n  f:\n"
        f"    - event_source_arn: arn:aws:sqs:{REGION}:123456789012:q\n"
        "      starting_position: LATEST\n"
    )
    runner = Runner(tmp_path, None, github.url)  # fails offline: no AWS needed
    run = runner.run(paths=str(bad))
    assert run.code == 1
    assert run.outputs == {
        "exitcode": "1",
        "has-changes": "false",
        "plan-json": "",
        "plan-file": "",
        "result-json": "",
    }
    assert f"::error file={bad},line=5::" in run.out  # esm's annotation reaches the log
    body = github.comments[0]["body"]
    assert "(failed)" in body and "**esm plan failed (exit 1).**" in body
    assert "starting_position: not supported for SQS" in body
    assert "esm plan failed" in run.summary


def test_github_api_down_is_a_warning_and_the_result_still_stands(
    tmp_path, moto_server, github, seed, write_spec
):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    down = Runner(tmp_path, moto_server, closed_port_url())
    run = down.run(paths=str(spec))
    assert run.code == 0, run.out + run.err
    assert run.outputs["exitcode"] == "2" and run.outputs["has-changes"] == "true"
    assert "Plan: 1 to create" in run.summary
    (warning,) = [line for line in run.out.splitlines() if line.startswith("::warning::")]
    assert "could not write the pull-request comment" in warning
    assert "cannot reach the GitHub API" in warning

    # Up, but refusing (a fork's read-only token): a warning that says what the token needs.
    github.fail_with = 403
    refused = Runner(tmp_path / "again", moto_server, github.url)
    (tmp_path / "again").mkdir()
    run = refused.run(paths=str(spec))
    assert run.code == 0 and run.outputs["exitcode"] == "2"
    assert "::warning::could not write the pull-request comment: GET " in run.out
    assert "HTTP 403 Resource not accessible" in run.out and "pull-requests: write" in run.out
    assert github.comments == []


def test_oversize_plan_is_truncated_in_the_comment_not_in_the_summary(
    gh_action, github, seed, write_spec
):
    queues = [f"queue-{n:02d}" for n in range(24)]
    seeded = seed(functions=["alpha"], queues=queues, endpoint_url=gh_action.endpoint)
    long_pattern = {"body": {"kind": [f"value-{n:04d}-{'x' * 20}" for n in range(110)]}}
    spec = write_spec(
        {
            "alpha": [
                {
                    "event_source_arn": seeded.queues[q],
                    "filter_criteria": {"filters": [{"pattern": long_pattern}]},
                }
                for q in queues
            ]
        },
        region=REGION,
    )
    run = gh_action.run(paths=str(spec))
    assert run.code == 0, run.out + run.err
    assert run.outputs["exitcode"] == "2"
    plan = json.loads(Path(run.outputs["plan-json"]).read_text())
    assert plan["summary"]["create"] == len(queues)

    (body,) = [c["body"] for c in github.comments]
    assert len(body.encode()) <= action.COMMENT_LIMIT
    assert body.startswith(marker(str(spec)))
    assert "Truncated:" in body and "more line(s) did not fit here" in body
    assert "The whole report is in the job summary" in body
    assert body.rstrip().endswith("</sub>")  # the footer survives the cut
    assert body.count("<details>") == body.count("</details>")
    # The summary (1 MiB) holds the whole plan.
    assert "Truncated:" not in run.summary
    assert run.summary.count("#### `+` create:") == len(queues)
    assert len(run.summary.encode()) > action.COMMENT_LIMIT


def test_status_reports_health(gh_action, github, seed, write_spec):
    if run_esm("status", "--help").code != 0:
        pytest.skip("this esm has no status command yet")
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=gh_action.endpoint)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    run = gh_action.run(command="status", paths=str(spec))
    assert run.code == 0, run.out + run.err
    assert run.outputs["exitcode"] == "2" and run.outputs["has-changes"] == "true"
    assert run.outputs["plan-json"] == ""
    document = json.loads(Path(run.outputs["result-json"]).read_text())
    assert document["summary"]["missing"] == 1
    assert "**Status: 0 ok, 1 missing" in github.comments[0]["body"]


# -- the module's parts, without esm or a server ----------------------------------------------


class FakeEsm(action.Runner):
    """A Runner that answers from a script instead of starting esm."""

    answers: dict[str, tuple[int, str]] = {}

    def run(self, args: list[str], stdout_name: str, echo_stdout: bool) -> action.Step:
        subcommand = next(a for a in args if a in ("plan", "show", "apply", "status"))
        if subcommand == "show":
            subcommand += " " + args[args.index("--format") + 1]
        code, stdout = self.answers[subcommand]
        path = os.path.join(self.workdir, stdout_name)
        Path(path).write_text(stdout)
        return action.Step(args, code, path, "")


def test_no_comment_outside_pull_requests(tmp_path, github):
    FakeEsm.answers = {
        "plan": (0, "No changes.\n"),
        "show json": (0, '{"format_version": "1", "changes": [], "summary": {}}'),
        "show markdown": (0, "**No changes.**\n"),
    }
    runner = Runner(tmp_path, None, github.url)
    runner.event_name, runner.event = "push", {"after": HEAD_SHA}
    for comment in ("auto", "true", "false"):
        env = runner.environment({"paths": "specs/", "comment": comment, "github-token": TOKEN})
        assert action.main(env, FakeEsm) == 0
        assert parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text())["exitcode"] == "0"
    assert github.requests == []


STATUS_DOCUMENT = {
    "format_version": "1",
    "mappings": [
        {"address": "a[arn:q]", "health": "ok", "state": "Enabled", "detail": ""},
        {"address": "b[arn:|q]", "health": "problem", "state": "Enabled", "detail": "PROBLEM: <x>"},
    ],
    "unmanaged": [
        {"uuid": "u-1", "function_arn": "arn:f", "event_source": "arn:s", "state": "Enabled"}
    ],
    "summary": {"ok": 1, "missing": 0, "drifted": 0, "disabled": 0, "problem": 1, "stuck": 0},
}


def test_status_document_becomes_outputs_and_comment(tmp_path, github):
    """status through the contract's JSON document (SPEC.md), with esm scripted."""
    FakeEsm.answers = {"status": (2, json.dumps(STATUS_DOCUMENT))}
    runner = Runner(tmp_path, None, github.url)
    env = runner.environment({"command": "status", "paths": "specs/", "github-token": TOKEN})
    assert action.main(env, FakeEsm) == 0
    outputs = parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["exitcode"] == "2" and outputs["has-changes"] == "true"
    assert outputs["plan-json"] == outputs["plan-file"] == ""
    assert json.loads(Path(outputs["result-json"]).read_text()) == STATUS_DOCUMENT
    body = github.comments[0]["body"]
    assert "### esm status: `specs/` (needs attention)" in body
    assert "1 problem" in body and "PROBLEM: &lt;x&gt;" in body


def test_apply_refused_after_the_plan_fails_the_step(tmp_path, github):
    """esm refuses the saved plan (stale, --max-destroy): no apply document, exit 1, the
    plan and esm's reason in the comment."""
    FakeEsm.answers = {
        "plan": (2, "Plan: 0 to create, 0 to update, 0 to replace, 1 to delete.\n"),
        "show json": (0, '{"format_version": "1", "changes": [], "summary": {"delete": 1}}'),
        "show markdown": (0, "**Plan: 0 to create, 0 to update, 0 to replace, 1 to delete.**\n"),
        "apply": (1, ""),
    }
    runner = Runner(tmp_path, None, github.url)
    env = runner.environment({"command": "apply", "paths": "specs/", "github-token": TOKEN})
    assert action.main(env, FakeEsm) == 1
    outputs = parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["exitcode"] == "1" and outputs["has-changes"] == "true"
    assert outputs["result-json"] == "" and outputs["plan-json"].endswith("plan.json")
    body = github.comments[0]["body"]
    assert "(failed)" in body and "1 to delete" in body and "**esm apply failed (exit 1).**" in body


def test_bad_inputs_fail_the_step_with_an_error(tmp_path, capsys):
    output = tmp_path / "output"
    cases = [
        ({"INPUT_COMMAND": "destroy", "INPUT_PATHS": "a.yaml"}, "command: 'destroy'"),
        ({"INPUT_PATHS": "  "}, "paths: give the spec files"),
        ({"INPUT_PATHS": "a.yaml", "INPUT_ARGS": "--out x"}, "args: --out is set by the action"),
        ({"INPUT_PATHS": "a.yaml", "INPUT_ARGS": "--format=json"}, "args: --format"),
        ({"INPUT_PATHS": "a.yaml", "INPUT_ARGS": "'unclosed"}, "args: No closing quotation"),
        ({"INPUT_PATHS": "a.yaml", "INPUT_COMMENT": "maybe"}, "comment: 'maybe'"),
    ]
    for env, message in cases:
        output.write_text("")
        assert action.main({**env, "GITHUB_OUTPUT": str(output)}) == 1
        assert f"::error::{message}" in capsys.readouterr().out
        assert parse_outputs(output.read_text())["exitcode"] == "1"


def test_args_are_sorted_by_where_esm_wants_them():
    split = action.split_args(
        "--region=eu-west-1 --target 'alpha[arn:x]' --max-destroy 2 --sandbox "
        "--auto-approve --parallelism=4 --profile ops --detailed-exitcode"
    )
    assert split.global_args == ["--region=eu-west-1", "--sandbox", "--profile", "ops"]
    assert split.command_args == ["--target", "alpha[arn:x]"]
    assert split.apply_args == ["--max-destroy", "2", "--parallelism=4"]


def test_inputs_read_either_spelling_and_the_token_stays_out_of_esm():
    env = {"INPUT_PATHS": "a b", "INPUT_GITHUB-TOKEN": TOKEN, "GITHUB_TOKEN": TOKEN}
    inputs = action.Inputs.from_env(env)
    assert inputs.paths == ["a", "b"] and inputs.token == TOKEN and inputs.comment_key == "a b"
    child = action.child_environment({**env, "GITHUB_STEP_SUMMARY": "s", "HOME": "/h"})
    assert child == {"HOME": "/h", "NO_COLOR": "1"}


def test_marker_cannot_end_its_html_comment_early():
    made = action.marker_for("specs/a --> <b>  specs/c")
    assert made.startswith("<!-- esm-reconcile: specs/a ") and made.endswith(" -->")
    assert made.count("-->") == 1 and "<b>" not in made


def test_bounded_closes_what_it_cuts_and_fits_the_limit():
    content = "intro\n<details><summary>more</summary>\n\n```text\n" + "line\n" * 5000 + "```\n"
    text = action.bounded("HEAD\n", content, "\nFOOT\n", 4000, "See the log.")
    assert len(text.encode()) <= 4000 and text.startswith("HEAD\nintro\n")
    assert text.endswith("\nFOOT\n") and "Truncated:" in text
    assert text.count("```") == 2 and text.index("```\n\n</details>") < text.index("Truncated")
    small = action.bounded("H\n", "short\n", "F\n", 4000, "See the log.")
    assert small == "H\nshort\nF\n"
    wide = action.bounded("", "é" * 3000 + "\n" + "é" * 3000 + "\n", "", 7000, "See the log.")
    assert len(wide.encode()) <= 7000 and "\ufffd" not in wide


def test_next_page_link_and_foreign_links():
    header = '<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last"'
    assert action._next_link(header) == "https://api.github.com/x?page=2"
    assert action._next_link('<https://api.github.com/x?page=5>; rel="last"') is None
    assert action._next_link("") is None

    # A next page on another host is not followed: the token would go with the request.
    api = action.GitHubApi("https://api.github.com", TOKEN)
    asked = []

    def answer(method, url, body=None):
        asked.append(url)
        return [{"id": 1, "body": "other"}], '<https://evil.example/next>; rel="next"'

    api.request = answer
    with pytest.raises(action.ApiError, match="not on the GitHub API"):
        api.find_comment(REPOSITORY, PR, "<!-- esm-reconcile: x -->")
    assert asked == [f"https://api.github.com/repos/{REPOSITORY}/issues/{PR}/comments?per_page=100"]


def test_status_markdown_from_the_spec_document():
    text = action.status_markdown(STATUS_DOCUMENT)
    assert text.startswith(
        "**Status: 1 ok, 0 missing, 0 drifted, 0 disabled, 1 problem, 0 stuck.**"
    )
    assert "| `b[arn:\\|q]` | problem | Enabled | PROBLEM: &lt;x&gt; |" in text
    assert "a[arn:q]" not in text and "1 unmanaged mapping(s)" in text


def test_the_module_runs_without_the_package_on_its_path(tmp_path):
    """action.yml runs action.py as a file with `python -P` next to any installed esm: it must
    import nothing from the package."""
    copy = tmp_path / "action.py"
    shutil.copy(action.__file__, copy)
    env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(tmp_path / "out")}
    done = subprocess.run(
        [sys.executable, "-P", "-I", str(copy)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "::error::paths: give the spec files" in done.stdout
    assert "Traceback" not in done.stderr
