"""The one way tests run the `esm` CLI.

`run_esm` calls `esm_reconcile.cli.main` in this process: no interpreter start and no boto3 or
moto import per run, and it reaches in-process servers (moto, the sandbox) directly. Use it
unless a real process is the point; `run_esm_process` runs the installed console script for
those few: stdin that is not a terminal, a process that must exit by itself, a crash that must
not take the test run with it.

Both give the CLI the same environment: fake credentials, no profile or shared config, and
none of the developer's ESM_*, GITHUB_* or NO_COLOR; `endpoint` sets AWS_ENDPOINT_URL, and
`env` adds variables on top (a None value removes one). `run_esm` restores the environment
afterwards, and `sys.stdin` is empty (not a terminal) while it runs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from esm_reconcile.cli import main
from tests.conftest import FAKE_AWS_ENV, REPO_ROOT

CONSOLE_SCRIPT = Path(sysconfig.get_path("scripts")) / "esm"

EnvChanges = Mapping[str, str | None]


@dataclass(frozen=True)
class CliResult:
    """What one `esm` run did: its exit code and everything it wrote."""

    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    def error_line(self) -> str:
        """The one line a refusal says on stderr: exit 1, `Error: ...`, nothing else."""
        assert self.code == 1, (self.out, self.err)
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), lines
        return lines[0]


def cli_environment(
    base: Mapping[str, str], endpoint: str | None = None, env: EnvChanges | None = None
) -> dict[str, str]:
    """`base` without anything that could reach a real account or change the CLI's options,
    with fake credentials, the endpoint and `env` added."""
    clean = {
        name: value
        for name, value in base.items()
        if not name.startswith(("AWS_", "ESM_", "GITHUB_")) and name != "NO_COLOR"
    }
    clean.update(FAKE_AWS_ENV)
    clean.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if endpoint:
        clean["AWS_ENDPOINT_URL"] = endpoint
    for name, value in (env or {}).items():
        if value is None:
            clean.pop(name, None)
        else:
            clean[name] = value
    return clean


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def _exit_code(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exited:  # commands end with sys.exit(code); a str code exits 1
        return exited.code if isinstance(exited.code, int) else int(exited.code is not None)
    return 0


def run_esm(
    *args: str | Path, endpoint: str | None = None, env: EnvChanges | None = None
) -> CliResult:
    """`esm ARGS` in this process. An exception other than SystemExit fails the test with its
    traceback; a traceback printed by the CLI fails it too."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(cli_environment(os.environ, endpoint, env)),
        _stdin(""),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        code = _exit_code([str(arg) for arg in args])
    result = CliResult(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in result.output, result.output
    return result


def run_esm_process(
    *args: str | Path,
    endpoint: str | None = None,
    env: EnvChanges | None = None,
    timeout: float = 60,
) -> CliResult:
    """`esm ARGS` as the installed console script, stdin /dev/null, from the repository root
    and importing this checkout; no traceback allowed."""
    environment = cli_environment(os.environ, endpoint, env)
    environment["PYTHONPATH"] = os.pathsep.join(
        path for path in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if path
    )
    process = subprocess.run(
        [str(CONSOLE_SCRIPT), *map(str, args)],
        env=environment,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result = CliResult(process.returncode, process.stdout, process.stderr)
    assert "Traceback" not in result.output, result.output
    return result


class WatchedProcess:
    """`python -m esm_reconcile ARGS` running in the background, in this process's environment
    (a sandbox's endpoint included; ESM_* left out), its stderr read line by line so a test can
    wait for a moment (a progress line) and then signal it."""

    def __init__(self, args: list[str | Path], marker: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ESM_")}
        environment["PYTHONPATH"] = os.pathsep.join(
            path for path in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if path
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "esm_reconcile", *map(str, args)],
            env=environment,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.marker, self.seen = marker, threading.Event()
        self.err_lines: list[str] = []
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.err_lines.append(line)
            if self.marker in line:
                self.seen.set()

    def wait_for_marker(self, timeout: float = 30) -> None:
        assert self.seen.wait(timeout=timeout), self.err

    @property
    def err(self) -> str:
        return "".join(self.err_lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=5)


@contextmanager
def watched_esm(*args: str | Path, marker: str) -> Iterator[WatchedProcess]:
    """A WatchedProcess, killed (if still running) when the block ends."""
    watched = WatchedProcess(list(args), marker)
    try:
        yield watched
    finally:
        watched.stop()
