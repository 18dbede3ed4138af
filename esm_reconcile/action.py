"""The logic of the GitHub Action (action.yml): run esm, write the step's outputs and job
summary, and keep one pull-request comment per spec set up to date.

Standard library only, and it never imports the rest of the package: action.yml runs it from
the action's own checkout (`python -P "$GITHUB_ACTION_PATH/esm_reconcile/action.py"`) next to
whichever esm version the workflow installed, which it runs as a subprocess
(`python -m esm_reconcile`). `python -m esm_reconcile.action` runs it too.

Inputs come from the environment as action.yml sets them: INPUT_COMMAND (plan, apply, status),
INPUT_PATHS (spec paths, whitespace-separated), INPUT_ARGS (extra esm arguments, shell-quoted),
INPUT_GITHUB_TOKEN, INPUT_COMMENT (auto, true, false), INPUT_COMMENT_KEY. The hyphenated form
GitHub gives JavaScript actions (INPUT_GITHUB-TOKEN) is read too.

How a command runs (one plan, never two):

- plan: `esm plan -f ... --out PLANFILE --detailed-exitcode` (the text plan goes to the log),
  then `esm show PLANFILE --format json` (the plan-json output) and `--format markdown`
  (the comment and the summary).
- apply: the same plan, then `esm apply PLANFILE --auto-approve --detailed-exitcode --format json`
  when it has changes, so what was shown is exactly what is applied (esm refuses the saved plan
  if a mapping it touches moved in between).
- status: `esm status -f ... --format json --detailed-exitcode`, shown as a table.

Exit codes: esm's own code is the `exitcode` output (0 no changes, 2 changes, 1 error); the
step fails only on an error. Everything about the comment is best effort: an API failure is a
`::warning::`, never a failed step, and the token never reaches a log or the esm process.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

COMMANDS = ("plan", "apply", "status")
# action.yml inputs this module reads (as INPUT_<NAME>, "-" -> "_"); `version` and
# `python-version` are the install steps' own.
INPUTS = ("command", "paths", "args", "github-token", "comment", "comment-key")
OUTPUTS = ("exitcode", "has-changes", "plan-json", "plan-file", "result-json")

# Global esm options (they go before the subcommand) and apply's own (they go to the apply of
# the saved plan, not to the plan); every other extra argument goes to plan (or status).
GLOBAL_VALUE_OPTIONS = ("--region", "--profile", "--max-rps")
GLOBAL_FLAGS = ("--sandbox", "--no-color")
APPLY_VALUE_OPTIONS = ("--max-destroy", "--parallelism")
IMPLIED_FLAGS = ("--detailed-exitcode", "--auto-approve")  # the action passes these itself
RESERVED_OPTIONS = ("-f", "--file", "--format", "--out")  # `paths` and the action's files

COMMENT_LIMIT = 65536  # GitHub refuses a longer comment body
SUMMARY_LIMIT = 1024 * 1024  # GitHub drops a step's whole summary beyond 1 MiB
API_TIMEOUT = 20  # seconds per GitHub API request
MAX_COMMENT_PAGES = 100  # 100 comments a page: a pull request with more is not searched further
ERROR_TAIL_LINES = 40  # of esm's stderr shown in the comment when a command fails
ERROR_TAIL_CHARS = 6000

MARKER_PREFIX = "<!-- esm-reconcile: "
FORK_HINT = (
    "the token needs `pull-requests: write` (workflow `permissions:`); a pull request from a "
    "fork gets a read-only token"
)


class InputError(Exception):
    """An input the action cannot run with (the step fails, saying which)."""


# -- inputs ------------------------------------------------------------------------------------


def read_input(env: Mapping[str, str], name: str, default: str = "") -> str:
    """An action input from INPUT_<NAME> ("-" -> "_"), or the form with the hyphen kept."""
    upper = name.upper()
    for key in (f"INPUT_{upper.replace('-', '_')}", f"INPUT_{upper}"):
        value = env.get(key)
        if value is not None and value.strip():
            return value.strip()
    return default


@dataclass
class EsmArgs:
    """`args` split by where esm wants them."""

    global_args: list[str] = field(default_factory=list)
    command_args: list[str] = field(default_factory=list)
    apply_args: list[str] = field(default_factory=list)


def split_args(text: str) -> EsmArgs:
    """Shell-split the extra arguments and sort them: global options before the subcommand,
    apply's own to the apply step, the rest to the subcommand (plan or status)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InputError(f"args: {exc}") from None
    out = EsmArgs()
    index = 0
    while index < len(words):
        word = words[index]
        name = word.split("=", 1)[0] if word.startswith("--") else word
        takes_value = name in GLOBAL_VALUE_OPTIONS + APPLY_VALUE_OPTIONS and "=" not in word
        taken = [word]
        if takes_value:
            if index + 1 >= len(words):
                raise InputError(f"args: {word} needs a value")
            taken.append(words[index + 1])
        index += len(taken)
        if name in RESERVED_OPTIONS or name.startswith("--format=") or name.startswith("--out="):
            raise InputError(
                f"args: {name} is set by the action (spec paths go in `paths`; the plan files "
                "are the action's outputs); remove it"
            )
        if name in IMPLIED_FLAGS:
            continue
        if name in GLOBAL_VALUE_OPTIONS or name in GLOBAL_FLAGS:
            out.global_args += taken
        elif name in APPLY_VALUE_OPTIONS:
            out.apply_args += taken
        else:
            out.command_args += taken
    return out


@dataclass
class Inputs:
    command: str
    paths: list[str]
    args: EsmArgs
    token: str
    comment: str  # auto, true, false
    comment_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Inputs:
        command = read_input(env, "command", "plan").lower()
        if command not in COMMANDS:
            raise InputError(f"command: {command!r} is not one of {', '.join(COMMANDS)}")
        paths = read_input(env, "paths").split()
        if not paths:
            raise InputError("paths: give the spec files or folders (whitespace-separated)")
        comment = read_input(env, "comment", "auto").lower()
        if comment not in ("auto", "true", "false"):
            raise InputError(f"comment: {comment!r} is not one of auto, true, false")
        return cls(
            command=command,
            paths=paths,
            args=split_args(read_input(env, "args")),
            token=read_input(env, "github-token"),
            comment=comment,
            comment_key=read_input(env, "comment-key") or " ".join(paths),
        )


# -- running esm -------------------------------------------------------------------------------


@dataclass
class Step:
    """One esm process: its exit code, its stdout (the file it went to) and stderr's tail."""

    argv: list[str]
    code: int
    stdout_path: str
    stderr_tail: str

    def stdout(self) -> str:
        try:
            with open(self.stdout_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""


def esm_command() -> list[str]:
    """How to start esm: the installed package, with this interpreter."""
    return [sys.executable, "-m", "esm_reconcile"]


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The esm process's environment: no action inputs (the token is one), no token, and no
    step summary (the action writes the summary itself, once); no color codes in the log."""
    dropped = ("GITHUB_TOKEN", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT")
    child = {k: v for k, v in env.items() if not k.startswith("INPUT_") and k not in dropped}
    child["NO_COLOR"] = "1"
    return child


class Runner:
    """Runs esm subcommands in `workdir`, streaming stderr to the log as it comes."""

    def __init__(self, workdir: str, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = child_environment(env)

    def run(self, args: list[str], stdout_name: str, echo_stdout: bool) -> Step:
        argv = esm_command() + args
        print(f"$ esm {shlex.join(args)}", flush=True)
        stdout_path = os.path.join(self.workdir, stdout_name)
        tail: collections.deque[str] = collections.deque(maxlen=ERROR_TAIL_LINES)
        try:
            with open(stdout_path, "wb") as out:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.PIPE,
                    env=self.env,
                )
                assert process.stderr is not None
                for raw in process.stderr:  # progress lines reach the log as they come
                    line = raw.decode("utf-8", errors="replace")
                    sys.stderr.write(line)
                    sys.stderr.flush()
                    tail.append(line.rstrip("\n"))
                code = process.wait()
        except OSError as exc:
            message = f"cannot run esm ({argv[0]}): {exc.strerror or exc}"
            print(f"::error::{escape_data(message)}", flush=True)
            return Step(argv, 1, stdout_path, message)
        step = Step(argv, code, stdout_path, "\n".join(tail))
        if echo_stdout or code not in (0, 2):
            # The text plan, and on failure whatever esm said there (its ::error annotations).
            sys.stdout.write(step.stdout())
            sys.stdout.flush()
        return step


@dataclass
class Result:
    """What the command came to: the outputs and the markdown for the summary and comment."""

    exitcode: int
    has_changes: bool = False
    plan_json: str = ""
    plan_file: str = ""
    result_json: str = ""
    markdown: str = ""

    def outputs(self) -> dict[str, str]:
        return {
            "exitcode": str(self.exitcode),
            "has-changes": "true" if self.has_changes else "false",
            "plan-json": self.plan_json,
            "plan-file": self.plan_file,
            "result-json": self.result_json,
        }


def run_command(inputs: Inputs, runner: Runner) -> Result:
    files = [word for path in inputs.paths for word in ("-f", path)]
    extra = inputs.args
    if inputs.command == "status":
        return _status(runner, files, extra)
    planfile = os.path.join(runner.workdir, "plan.saved")
    planned = runner.run(
        [*extra.global_args, "plan", *files, "--out", planfile, "--detailed-exitcode"]
        + extra.command_args,
        "plan.txt",
        echo_stdout=True,
    )
    if planned.code not in (0, 2):
        return Result(planned.code, markdown=failure_markdown("esm plan", planned))
    shown = runner.run(["show", planfile, "--format", "json"], "plan.json", echo_stdout=False)
    markdown = runner.run(["show", planfile, "--format", "markdown"], "plan.md", False)
    for step in (shown, markdown):
        if step.code != 0:
            return Result(step.code, markdown=failure_markdown("esm show", step))
    result = Result(
        planned.code,
        has_changes=planned.code == 2,
        plan_json=shown.stdout_path,
        plan_file=planfile,
        markdown=markdown.stdout(),
    )
    if inputs.command == "plan":
        result.result_json = shown.stdout_path
        return result
    if not result.has_changes:
        result.markdown += "\nNothing to apply.\n"
        return result
    applied = runner.run(
        [*extra.global_args, "apply", planfile, "--auto-approve", "--detailed-exitcode"]
        + ["--format", "json", *extra.apply_args],
        "apply.json",
        echo_stdout=False,
    )
    result.exitcode = applied.code
    document = _json_document(applied.stdout())
    if document is None:
        # A refusal (stale plan, --max-destroy) or a crash: no document, only what esm said.
        result.markdown += "\n" + failure_markdown("esm apply", applied)
        return result
    result.result_json = applied.stdout_path
    result.markdown += "\n" + apply_markdown(document)
    if applied.code not in (0, 2):
        result.markdown += "\n" + failure_markdown("esm apply", applied, headline=False)
    return result


def _status(runner: Runner, files: list[str], extra: EsmArgs) -> Result:
    step = runner.run(
        [*extra.global_args, "status", *files, "--format", "json", "--detailed-exitcode"]
        + extra.command_args,
        "status.json",
        echo_stdout=False,
    )
    document = _json_document(step.stdout()) if step.code in (0, 2) else None
    if document is None:
        return Result(step.code if step.code else 1, markdown=failure_markdown("esm status", step))
    markdown = status_markdown(document)
    print(markdown, flush=True)
    return Result(
        step.code, has_changes=step.code == 2, result_json=step.stdout_path, markdown=markdown
    )


def _json_document(text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


# -- markdown ----------------------------------------------------------------------------------


def fenced(text: str, info: str = "text") -> str:
    """`text` as a fenced code block that nothing inside can close."""
    longest = max((len(run) for run in re.findall("`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def code_span(text: str) -> str:
    """A CommonMark code span showing `text` literally (on one line), whatever it holds."""
    text = " ".join(text.split())
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    ticks = "`" * (longest + 1)
    padded = not text or text.startswith("`") or text.endswith("`")
    return f"{ticks} {text} {ticks}" if padded else f"{ticks}{text}{ticks}"


def code_cell(value: Any) -> str:
    # GFM splits a table row at an unescaped pipe before it looks for code spans.
    return code_span("" if value is None else str(value)).replace("|", "\\|")


def cell(value: Any) -> str:
    """A GFM table cell showing `value` as plain text: no pipes, HTML or line breaks from it."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def failure_markdown(what: str, step: Step, headline: bool = True) -> str:
    tail = step.stderr_tail[-ERROR_TAIL_CHARS:].strip() or "(esm printed nothing on stderr)"
    head = f"**{what} failed (exit {step.code}).**\n\n" if headline else ""
    return f"{head}{fenced(tail)}\n"


def apply_markdown(document: Mapping[str, Any]) -> str:
    """The outcomes of `esm apply --format json`: a counts line, then a row per change."""
    summary = document.get("summary") or {}
    order = ["created", "updated", "replaced", "deleted", "failed", "skipped"]
    names = order + [k for k in summary if k not in order and summary.get(k)]
    counts = ", ".join(f"{summary.get(name, 0)} {name}" for name in names)
    failed = bool(summary.get("failed"))
    lines = [f"**Apply {'incomplete' if failed else 'complete'}: {counts}.**", ""]
    outcomes = document.get("outcomes") or []
    if outcomes:
        lines += ["| mapping | action | status | message |", "|---|---|---|---|"]
        for outcome in outcomes:
            row = [code_cell(outcome.get("address"))]
            row += [cell(outcome.get(k)) for k in ("action", "status", "message")]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


STATUS_VERDICTS = ("ok", "missing", "drifted", "disabled", "problem", "stuck")


def status_markdown(document: Mapping[str, Any]) -> str:
    """`esm status --format json` as markdown: counts, the managed mappings that are not ok,
    and the region's unmanaged mappings."""
    summary = document.get("summary") or {}
    counts = ", ".join(f"{summary.get(v, 0)} {v}" for v in STATUS_VERDICTS)
    mappings = document.get("mappings") or []
    unmanaged = document.get("unmanaged") or []
    lines = [f"**Status: {counts}.**", ""]
    attention = [m for m in mappings if m.get("health") != "ok"]
    if attention:
        lines += ["| mapping | health | state | detail |", "|---|---|---|---|"]
        for item in attention:
            row = [code_cell(item.get("address"))]
            row += [cell(item.get(k)) for k in ("health", "state", "detail")]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    elif mappings:
        lines += [f"All {len(mappings)} managed mapping(s) are ok.", ""]
    if unmanaged:
        lines += [
            f"{len(unmanaged)} unmanaged mapping(s) in the region (no spec lists their function):",
            "",
            "| function | event source | uuid | state |",
            "|---|---|---|---|",
        ]
        for item in unmanaged:
            row = [code_cell(item.get(k)) for k in ("function_arn", "event_source", "uuid")]
            row.append(cell(item.get("state")))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines).rstrip() + "\n"


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", errors="replace"))


def bounded(head: str, content: str, tail: str, limit: int, elsewhere: str) -> str:
    """head + content + tail, cutting content at a line so that the whole is at most `limit`
    UTF-8 bytes (which bounds characters too, however GitHub counts them), closing any code
    fence or <details> the cut leaves open, and saying how much was cut and, in `elsewhere`,
    where the whole is."""
    whole = head + content + tail
    if utf8_size(whole) <= limit:
        return whole
    total_lines = content.count("\n") + 1
    note_room = 400  # the note below, with its numbers
    room = limit - utf8_size(head) - utf8_size(tail) - note_room
    kept = content.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore")
    kept = kept[: kept.rfind("\n") + 1] if "\n" in kept else ""
    closers = []
    fences = [m.group(1) for m in re.finditer(r"^(`{3,})", kept, flags=re.MULTILINE)]
    if len(fences) % 2:
        closers.append(fences[-1])
    opened = kept.count("<details>") - kept.count("</details>")
    closers += ["</details>"] * max(opened, 0)
    cut_lines = total_lines - kept.count("\n")
    note = f"\n> [!NOTE]\n> Truncated: {cut_lines} more line(s) did not fit here. {elsewhere}\n"
    closing = "\n" + "\n\n".join(closers) + "\n" if closers else ""
    return head + kept + closing + note + tail


# -- GitHub: outputs, summary, comment ---------------------------------------------------------


def escape_data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def warning(message: str) -> None:
    print(f"::warning::{escape_data(message)}", flush=True)


def write_outputs(outputs: Mapping[str, str], env: Mapping[str, str]) -> None:
    """Append the step outputs to GITHUB_OUTPUT (multi-line values with a delimiter)."""
    path = env.get("GITHUB_OUTPUT")
    if not path:
        for name, value in outputs.items():
            print(f"output {name}={value}")
        return
    lines = []
    for name, value in outputs.items():
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            lines.append(f"{name}={value}\n")
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))
    except OSError as exc:
        warning(f"could not write the step outputs to {path}: {exc.strerror or exc}")


def append_summary(report: Report, env: Mapping[str, str]) -> None:
    """Append the report to the job summary, within what is left of GitHub's 1 MiB."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        used = os.path.getsize(path)
    except OSError:
        used = 0
    room = SUMMARY_LIMIT - used
    elsewhere = "The whole report is in the log, and the JSON in the action's output files."
    text = bounded(report.title, report.content, report.footer + "\n", room, elsewhere)
    if utf8_size(text) > room:
        warning(f"the job summary {path} is full; the report is only in the log")
        return
    try:
        with open(path, "a", encoding="utf-8", errors="replace") as handle:
            handle.write(text)
    except OSError as exc:
        warning(f"could not write the job summary to {path}: {exc.strerror or exc}")


@dataclass
class Report:
    """The markdown shown in the job summary and, with the marker, in the comment."""

    marker: str
    title: str
    content: str
    footer: str

    def comment_body(self) -> str:
        return bounded(
            f"{self.marker}\n{self.title}",
            self.content,
            self.footer,
            COMMENT_LIMIT,
            "The whole report is in the job summary, and the JSON in the action's output files.",
        )


def marker_for(key: str) -> str:
    """The hidden first line that finds this spec set's comment again. The key is quoted so
    that nothing in it ends the HTML comment early."""
    quoted = urllib.parse.quote(" ".join(key.split()), safe="/ :._~@+,=*")
    return f"{MARKER_PREFIX}{quoted} -->"


def run_url(env: Mapping[str, str]) -> str:
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repository, run_id = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    return f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else ""


def make_report(
    inputs: Inputs, result: Result, env: Mapping[str, str], event: Mapping[str, Any]
) -> Report:
    shown_paths = " ".join(code_span(path) for path in inputs.paths)
    outcome = {0: "no changes", 2: "changes"}.get(result.exitcode, "failed")
    if inputs.command == "status":
        outcome = {0: "all ok", 2: "needs attention"}.get(result.exitcode, "failed")
    if inputs.command == "apply" and result.exitcode == 2:
        outcome = "applied"
    title = f"### esm {inputs.command}: {shown_paths} ({outcome})\n\n"
    details = []
    url = run_url(env)
    if url:
        details.append(f"[workflow run]({url})")
    sha = ((event.get("pull_request") or {}).get("head") or {}).get("sha") or env.get("GITHUB_SHA")
    if sha:
        details.append(f"commit {code_span(sha[:12])}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    details.append(f"updated {stamp}")
    footer = "\n<sub>esm-reconcile · " + " · ".join(details) + "</sub>\n"
    content = result.markdown.rstrip("\n") + "\n"
    return Report(marker_for(inputs.comment_key), title, content, footer)


def load_event(env: Mapping[str, str]) -> dict[str, Any]:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError) as exc:
        warning(f"cannot read the event payload {path}: {exc}")
        return {}
    return event if isinstance(event, dict) else {}


def pull_request_number(event: Mapping[str, Any]) -> int | None:
    """The pull request this event is about: pull_request(_target), or a comment on one."""
    pull = event.get("pull_request")
    if isinstance(pull, dict) and isinstance(pull.get("number"), int):
        return pull["number"]
    issue = event.get("issue")
    if (
        isinstance(issue, dict)
        and issue.get("pull_request")
        and isinstance(issue.get("number"), int)
    ):
        return issue["number"]
    return None


class ApiError(Exception):
    pass


class GitHubApi:
    """The few REST calls the comment needs, with urllib. The token goes only in the
    Authorization header of requests to the API's own host (never on to a redirect)."""

    def __init__(self, api_url: str, token: str, timeout: float = API_TIMEOUT) -> None:
        self.base = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, url: str, body: Any = None) -> tuple[Any, str]:
        """(the JSON answer, its Link header)."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "esm-reconcile-action")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        shown = f"{method} {urllib.parse.urlsplit(url).path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                link = response.headers.get("Link", "")
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{shown}: HTTP {exc.code} {_api_message(exc)}".rstrip()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ApiError(f"{shown}: cannot reach the GitHub API ({reason})") from None
        try:
            return (json.loads(payload) if payload else None), link
        except ValueError:
            raise ApiError(f"{shown}: the answer is not JSON") from None

    def find_comment(self, repository: str, number: int, marker: str) -> dict[str, Any] | None:
        """The first comment on the pull request that starts with `marker`, paging through."""
        url = f"{self.base}/repos/{_quote_repo(repository)}/issues/{number}/comments?per_page=100"
        for _ in range(MAX_COMMENT_PAGES):
            comments, link = self.request("GET", url)
            for comment in comments or []:
                if isinstance(comment, dict) and str(comment.get("body") or "").startswith(marker):
                    return comment
            url = _next_link(link)
            if not url:
                return None
            if not url.startswith(self.base + "/"):
                raise ApiError(f"the next page is not on the GitHub API ({self.base})")
        return None

    def upsert_comment(self, repository: str, number: int, marker: str, body: str) -> str:
        """Edit this spec set's comment, or create it. Returns what was done, for the log."""
        existing = self.find_comment(repository, number, marker)
        if existing is not None:
            url = f"{self.base}/repos/{_quote_repo(repository)}/issues/comments/{existing['id']}"
            answer, _ = self.request("PATCH", url, {"body": body})
            return f"updated comment {(answer or {}).get('html_url') or existing['id']}"
        url = f"{self.base}/repos/{_quote_repo(repository)}/issues/{number}/comments"
        answer, _ = self.request("POST", url, {"body": body})
        return f"created comment {(answer or {}).get('html_url', '')}".rstrip()


def _quote_repo(repository: str) -> str:
    return urllib.parse.quote(repository, safe="/")


def _api_message(error: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(error.read()).get("message", "")
    except (ValueError, AttributeError, OSError):
        message = error.reason or ""
    return " ".join(str(message).split())[:300]


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        match = re.match(r"\s*<([^>]+)>\s*;(.*)", part)
        if match and re.search(r'rel="?next"?', match.group(2)):
            return match.group(1)
    return None


def post_comment(inputs: Inputs, report: Report, env: Mapping[str, str], event: Mapping) -> None:
    """Keep this spec set's pull-request comment up to date; any failure is a warning."""
    if inputs.comment == "false":
        return
    number = pull_request_number(event)
    if number is None:
        if inputs.comment == "true":
            event_name = env.get("GITHUB_EVENT_NAME", "this event")
            warning(f"comment: {event_name} is not about a pull request; no comment written")
        return
    repository = env.get("GITHUB_REPOSITORY", "")
    if not inputs.token or not repository:
        warning("comment: no github-token or GITHUB_REPOSITORY; no comment written")
        return
    api = GitHubApi(env.get("GITHUB_API_URL") or "https://api.github.com", inputs.token)
    try:
        done = api.upsert_comment(repository, number, report.marker, report.comment_body())
    except ApiError as exc:
        hint = f" ({FORK_HINT})" if re.search(r"HTTP 40[34]\b", str(exc)) else ""
        warning(f"could not write the pull-request comment: {exc}{hint}")
        return
    print(f"esm-reconcile: {done} on pull request #{number}", flush=True)


# -- main --------------------------------------------------------------------------------------


def work_directory(env: Mapping[str, str]) -> str:
    parent = env.get("RUNNER_TEMP") or None
    if parent:
        os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix="esm-reconcile-", dir=parent)


def main(
    env: Mapping[str, str] | None = None,
    runner_factory: Callable[[str, Mapping[str, str]], Runner] = Runner,
) -> int:
    env = dict(os.environ if env is None else env)
    empty = Result(1)
    try:
        inputs = Inputs.from_env(env)
    except InputError as exc:
        print(f"::error::{escape_data(str(exc))}", flush=True)
        write_outputs(empty.outputs(), env)
        return 1
    result = run_command(inputs, runner_factory(work_directory(env), env))
    write_outputs(result.outputs(), env)
    event = load_event(env)
    report = make_report(inputs, result, env, event)
    append_summary(report, env)
    post_comment(inputs, report, env, event)
    meaning = {0: "no changes", 2: "changes"}.get(result.exitcode, "error")
    print(f"esm {inputs.command}: exit {result.exitcode} ({meaning})", flush=True)
    return 0 if result.exitcode in (0, 2) else 1


if __name__ == "__main__":
    sys.exit(main())
