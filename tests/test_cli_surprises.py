"""Surprises from the environment and the command line (issue 9): each is one clear line and
exit 1 (or an exit at once for a second Ctrl-C), never a traceback, never a silent guess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from esm_reconcile.cli import _color_wanted
from esm_reconcile.sandbox import sandbox
from tests.cli_runner import run_esm, watched_esm

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"


def spec_text(function: str = "orders", queue: str = "orders", region: str | None = REGION) -> str:
    document: dict[str, Any] = {"version": 1}
    if region:
        document["region"] = region
    document["functions"] = {
        function: [{"event_source_arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"}]
    }
    return yaml.safe_dump(document)


def run(
    argv: list[str], _capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """The CLI in-process (tests/cli_runner.py): exit code, stdout, stderr."""
    result = run_esm(*argv, env=env)
    return result.code, result.out, result.err


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "a.yaml"
    path.write_text(spec_text())
    return path


# -- regions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "env"])
def test_region_flag_conflicting_with_the_spec_is_an_error(
    spec_file: Path, capsys: pytest.CaptureFixture[str], aws_env: None, how: str
) -> None:
    argv, env = ["validate", "-f", str(spec_file)], {}
    if how == "flag":
        argv = ["--region", "us-west-2", *argv]
    else:
        env = {"ESM_REGION": "us-west-2"}
    for command in (argv, [a if a != "validate" else "plan" for a in argv]):
        code, _out, err = run(command, capsys, env)
        assert code == 1
        name = "--region" if how == "flag" else "ESM_REGION"
        assert f"{name} us-west-2 conflicts with region: us-east-1 in {spec_file}" in err
        assert len(err.strip().splitlines()) == 1


def test_region_flag_agreeing_with_the_spec_or_filling_in_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    named = tmp_path / "named.yaml"
    named.write_text(spec_text())
    bare = tmp_path / "bare.yaml"
    bare.write_text(spec_text("other", "other", region=None))
    code, out, _err = run(
        ["--region", REGION, "validate", "-f", str(named), "-f", str(bare)], capsys
    )
    assert code == 0 and "2 file(s) valid" in out
    # AWS_REGION is the AWS config's fallback, not a choice that contradicts the file.
    code, _out, _err = run(["validate", "-f", str(named)], capsys, {"AWS_REGION": "eu-west-1"})
    assert code == 0


def test_validate_resolves_regions_as_plan_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    """One file names us-east-1, the other none: with --region us-east-1 both are us-east-1,
    and two owners of one function there; validate must say what plan would say."""
    (tmp_path / "a.yaml").write_text(spec_text())
    (tmp_path / "b.yaml").write_text(spec_text(queue="other", region=None))
    argv = ["--region", REGION, "validate", "-f", str(tmp_path)]
    code, _out, err = run(argv, capsys)
    assert code == 1
    assert "function orders in us-east-1 is also managed by" in err
    # Without --region the bare file falls to AWS_REGION (us-east-1 in the test env): the same.
    code, _out, err = run(["validate", "-f", str(tmp_path)], capsys)
    assert code == 1 and "also managed by" in err


def test_validate_needs_no_aws_config_for_a_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    """Offline means offline: a profile this machine does not know is not validate's concern."""
    document = yaml.safe_load(spec_text())
    document["profile"] = "prod-not-here"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(document))
    code, out, err = run(["validate", "-f", str(tmp_path / "a.yaml")], capsys)
    assert code == 0, err
    assert "1 file(s) valid" in out


# -- files and environment -------------------------------------------------------------------


def test_esm_file_is_a_whitespace_separated_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    (tmp_path / "a.yaml").write_text(spec_text())
    (tmp_path / "b.yaml").write_text(spec_text("other", "other"))
    env = {"ESM_FILE": f"{tmp_path / 'a.yaml'}  {tmp_path / 'b.yaml'}\n"}
    code, out, err = run(["validate"], capsys, env)
    assert code == 0, err
    assert "2 file(s) valid: 2 function(s)" in out


def test_the_same_file_given_twice_counts_once(
    spec_file: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    for argv in (
        ["validate", "-f", str(spec_file), "-f", str(spec_file)],
        ["validate", "-f", str(spec_file.parent), "-f", str(spec_file)],
    ):
        code, out, err = run(argv, capsys)
        assert code == 0, err
        assert "1 file(s) valid" in out


def test_empty_no_color_does_not_disable_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "")
    assert _color_wanted(False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _color_wanted(False)
    monkeypatch.delenv("NO_COLOR")
    assert _color_wanted(False) and not _color_wanted(True)


def test_stdout_that_cannot_be_written_is_one_line(spec_file: Path) -> None:
    """`esm schema > /dev/full`: the write fails; say so, exit 1, no traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    for args in (["schema"], ["validate", "-f", str(spec_file)]):
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "esm_reconcile", *args],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO_ROOT,
                timeout=60,
            )
        assert result.returncode == 1
        assert result.stderr.strip() == "Error: cannot write output: No space left on device"


# -- export ----------------------------------------------------------------------------------


def test_export_of_a_function_that_does_not_exist_is_an_error(
    moto_server: str, seed: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    seed(functions=["real"], endpoint_url=moto_server)
    env = {"AWS_ENDPOINT_URL": moto_server}
    code, out, err = run(["export", "--function", "no-such-fn"], capsys, env)
    assert code == 1
    assert "function does not exist" in err and "no-such-fn" in err
    assert out == ""
    # An existing function with no mappings still exports as an empty list.
    code, out, err = run(["export", "--function", "real"], capsys, env)
    assert code == 0, err
    assert yaml.safe_load(out)["functions"] == {"real": []}


@pytest.mark.parametrize("target", ["missing-dir/out.yaml", "/dev/full", "."])
def test_export_to_a_path_that_cannot_be_written_is_one_line(
    moto_server: str,
    seed: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    target: str,
) -> None:
    if target == "/dev/full" and not Path(target).exists():
        pytest.skip("no /dev/full here")
    seed(functions=["real"], endpoint_url=moto_server)
    output = target if target.startswith("/") else str(tmp_path / target)
    argv = ["export", "--function", "real", "-o", output]
    code, _out, err = run(argv, capsys, {"AWS_ENDPOINT_URL": moto_server})
    assert code == 1
    assert err.startswith(("Error: cannot write", "Usage:", "Error: Invalid value")), err
    assert len([line for line in err.splitlines() if line.startswith("Error")]) == 1


# -- a second Ctrl-C -------------------------------------------------------------------------


def _stall_creates(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Creates never get an answer (within the test): a call stuck in flight."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].rstrip("/").endswith(
            "/event-source-mappings"
        ):
            time.sleep(45)
        return app(environ, start_response)

    return wrapped


def test_second_ctrl_c_exits_at_once_with_a_call_in_flight(tmp_path: Path) -> None:
    """The first Ctrl-C asks apply to stop after the calls in flight; the second must not wait
    for a call that may never return."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text())
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"
    with sandbox(["orders"], [queue], REGION, middleware=_stall_creates) as url:
        assert os.environ["AWS_ENDPOINT_URL"] == url
        with watched_esm("apply", "--auto-approve", "-f", spec, marker=": creating") as esm:
            esm.wait_for_marker()
            time.sleep(0.3)  # the create request is now in flight
            esm.process.send_signal(signal.SIGINT)
            time.sleep(0.3)
            started = time.monotonic()
            esm.process.send_signal(signal.SIGINT)
            esm.process.wait(timeout=10)
            took = time.monotonic() - started
        assert esm.process.returncode == 130, esm.err
        assert took < 3, took
        assert "Traceback" not in esm.err
        assert "Interrupted." in esm.err


# -- GitHub Actions --------------------------------------------------------------------------


def test_step_summary_that_cannot_be_written_does_not_abort_an_apply(
    moto_server: str,
    seed: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    seeded = seed(functions=["orders"], queues=["orders"], endpoint_url=moto_server)
    spec = tmp_path / "a.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"version": 1, "functions": {"orders": [{"event_source_arn": seeded.queues["orders"]}]}}
        )
    )
    env = {"AWS_ENDPOINT_URL": moto_server, "GITHUB_STEP_SUMMARY": str(tmp_path)}  # a directory
    code, out, err = run(["apply", "--auto-approve", "-f", str(spec)], capsys, env)
    assert code == 0, err
    assert "Apply complete: 1 created" in out
    assert f"could not write the GitHub step summary to {tmp_path}" in err and "going on" in err


def test_spec_error_annotations_follow_github_escaping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    spec = tmp_path / "a,b:c.yaml"
    spec.write_text(spec_text().replace("functions:", "functions:\n  bad: 5\n", 1))
    code, out, _err = run(["validate", "-f", str(spec)], capsys, {"GITHUB_ACTIONS": "true"})
    assert code == 1
    annotation = next(line for line in out.splitlines() if line.startswith("::error"))
    assert "a%2Cb%3Ac.yaml,line=" in annotation
    assert ",line=0" not in annotation


def test_a_source_in_another_region_than_the_resolved_one_is_caught_before_aws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    """A file without `region:` goes where --region or the AWS config says; its sources must
    be there too, and validate and plan both say so once that region is known."""
    spec = tmp_path / "c.yaml"
    spec.write_text(spec_text(region=None).replace("us-east-1", "eu-west-1"))
    for command in ("validate", "plan"):
        code, _out, err = run([command, "-f", str(spec)], capsys)
        assert code == 1
        assert "the source is in region eu-west-1, but the function is in us-east-1" in err
    code, _out, err = run(["--region", "eu-west-1", "validate", "-f", str(spec)], capsys)
    assert code == 0, err


def test_a_huge_key_is_cut_in_messages_and_errors_are_capped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    """A 1 MB key must not make a 1 MB message; a million errors are not all printed."""
    key = "k" * 1_000_000
    spec = tmp_path / "a.yaml"
    spec.write_text(f"version: 1\nfunctions:\n  f:\n    - ? {key}\n      : 1\n")
    code, _out, err = run(["validate", "-f", str(spec)], capsys)
    assert code == 1
    assert "… (1000000 characters)" in err and len(err) < 2000
    many = tmp_path / "b.yaml"
    many.write_text("version: 1\nfunctions:\n" + "".join(f"  f{i}: 5\n" for i in range(1500)))
    code, _out, err = run(["validate", "-f", str(many)], capsys)
    assert code == 1
    assert "... and 500 more error(s)" in err and "1500 error(s) in the spec" in err
    assert len(err.splitlines()) == 1002


# -- files that are not what they seem (adversarial review) ------------------------------------


def test_an_alias_of_a_long_string_repeated_is_a_bomb_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    """Each alias is one node, but 100 KB of text: counted by the text it repeats."""
    spec = tmp_path / "a.yaml"
    spec.write_text(
        "version: 1\nx-s: &s " + "x" * 100_000 + "\nfunctions:\n  f:\n"
        f"    - event_source_arn: arn:aws:sqs:us-east-1:{ACCOUNT}:q\n"
        "      filter_criteria: {filters: [{pattern: {body: ["
        + ", ".join(["*s"] * 30_000)
        + "]}}]}\n"
    )
    started = time.monotonic()
    code, _out, err = run(["validate", "-f", str(spec)], capsys)
    assert code == 1 and time.monotonic() - started < 5
    assert "alias *s repeats 100,000 characters" in err and "(an alias bomb?)" in err


def test_a_file_of_millions_of_values_is_refused_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text("version: 1\nf: [" + ",".join(["1"] * 1_500_000) + "]\n")
    code, _out, err = run(["validate", "-f", str(spec)], capsys)
    assert code == 1
    assert "more than 1,000,000 values in one file: refused" in err


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_only_regular_files_of_bounded_size_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None, kind: str
) -> None:
    from esm_reconcile import loader

    if kind == "fifo":
        path = tmp_path / "spec.yaml"
        os.mkfifo(path)  # no writer: reading it would wait for ever
        expected = "not a regular file"
    elif kind == "device":
        path = Path("/dev/zero")
        expected = "not a regular file"
    else:
        path = tmp_path / "spec.yaml"
        with open(path, "wb") as handle:
            handle.truncate(loader.MAX_SPEC_BYTES + 1)  # sparse: no disk used
        expected = "larger than 32 MiB"
    started = time.monotonic()
    code, _out, err = run(["validate", "-f", str(path)], capsys)
    assert code == 1 and time.monotonic() - started < 5
    assert f"{path}: {expected}" in err


def test_a_symlink_out_of_a_spec_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    """A pull request must not get a file from elsewhere on the CI machine quoted in errors."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(spec_text())
    (specs / "b.yaml").symlink_to(secret)
    (specs / "c.yaml").symlink_to(specs / "a.yaml")  # inside: fine, and the same file as a.yaml
    code, _out, err = run(["validate", "-f", str(specs)], capsys)
    assert code == 1
    assert f"{specs / 'b.yaml'}: a symlink out of {specs}: refused" in err
    assert "root:x" not in err
