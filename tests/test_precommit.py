"""The pre-commit hook (`.pre-commit-hooks.yaml`, id `esm-validate`) as its users run it.

`pre-commit try-repo` does what a user's `.pre-commit-config.yaml` does: clone the hook's
repository (here a git copy of this checkout), install it into the hook's own virtualenv, and run
the hook's entry on the files its `files:`/`exclude:` match. Offline where the tests run on the
interpreter's own site-packages (as CI does): the hook's virtualenv sees them
(system-site-packages) and pip builds without isolation, so what gets installed from the clone
is the project itself. Run from a virtualenv of its own, pip downloads the dependencies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pre_commit.clientlib import load_manifest

from esm_reconcile import precommit
from tests.cli_runner import cli_environment
from tests.conftest import REPO_ROOT

MANIFEST = REPO_ROOT / ".pre-commit-hooks.yaml"
# What `pip install .` of the hook's clone needs from this checkout.
PROJECT_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "esm_reconcile")

GOOD = """\
version: 1
region: us-east-1
functions:
  orders-handler:
    - event_source_arn: arn:aws:sqs:us-east-1:123456789012:orders
      batch_size: 5
"""
BAD = GOOD.replace("orders-handler", "audit-handler").replace("batch_size: 5", "batch_size: 0")
NOT_A_SPEC = "name: ci\non: [push]\njobs: {}\n"  # a GitHub workflow


def test_manifest_is_one_pre_commit_accepts() -> None:
    (hook,) = load_manifest(str(MANIFEST))  # pre-commit's own schema check
    assert hook["id"] == "esm-validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert hook["require_serial"] is True  # one process: rules across files hold among them
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[hook["entry"]] == "esm_reconcile.precommit:main"


@pytest.mark.parametrize(
    ("path", "checked"),
    [
        ("mappings.yaml", True),
        ("mappings/prod/orders.yml", True),
        ("README.md", False),
        (".github/workflows/esm.yml", False),
        (".pre-commit-config.yaml", False),
        ("sub/.pre-commit-config.yaml", False),
    ],
)
def test_default_files_are_yaml_outside_github_and_pre_commit(path: str, checked: bool) -> None:
    (hook,) = load_manifest(str(MANIFEST))
    # pre-commit matches `files` and `exclude` with re.search on the repository-relative path.
    matched = bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)
    assert matched is checked


def _validate(files: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        precommit.main(files)
    except SystemExit as exited:
        code = exited.code
    else:
        code = 0
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_files_are_checked_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):  # no developer's region, profile or ESM_* option in the way
        if name.startswith(("AWS_", "ESM_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "-b.yaml").write_text(GOOD)  # a name like an option is still a file
    monkeypatch.chdir(tmp_path)
    assert _validate(["a.yaml"], capsys) == (0, "1 file(s) valid: 1 function(s), 1 mapping(s).\n")
    code, output = _validate(["a.yaml", "-b.yaml"], capsys)
    assert code == 1
    assert "-b.yaml:4: functions.orders-handler: function is also managed by a.yaml" in output
    assert "narrow it in .pre-commit-config.yaml" in output  # the hint for `files:`
    assert _validate([], capsys) == (0, "")  # nothing matched, nothing to check


def _git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
        + list(args),
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_try_repo_passes_good_specs_and_fails_a_bad_one(tmp_path: Path) -> None:
    env = cli_environment(os.environ)  # fake credentials, no AWS config, no ESM_*
    env = {k: v for k, v in env.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        VIRTUALENV_SYSTEM_SITE_PACKAGES="1",  # the hook's env sees this one's dependencies
        VIRTUALENV_NO_PERIODIC_UPDATE="1",  # no look for newer seed wheels
        PIP_NO_BUILD_ISOLATION="0",  # (sic) pip's spelling of --no-build-isolation
    )
    hook_repo, user_repo = tmp_path / "esm-reconcile", tmp_path / "user"
    for name in PROJECT_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, hook_repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            hook_repo.mkdir(exist_ok=True)
            shutil.copy2(source, hook_repo / name)
    _git("init", "-q", cwd=hook_repo, env=env)
    _git("add", "-A", cwd=hook_repo, env=env)
    _git("commit", "-q", "-m", "hook", cwd=hook_repo, env=env)

    user_repo.mkdir()
    _git("init", "-q", cwd=user_repo, env=env)
    _write(user_repo, {"mappings/orders.yaml": GOOD, ".github/workflows/ci.yml": NOT_A_SPEC})

    def try_repo() -> subprocess.CompletedProcess[str]:
        _git("add", "-A", cwd=user_repo, env=env)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "esm-validate"]
            + ["--all-files", "--color", "never"],
            cwd=user_repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    passed = try_repo()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"esm validate\.+Passed", passed.stdout), passed.stdout

    _write(user_repo, {"mappings/audit.yaml": BAD})
    failed = try_repo()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"esm validate\.+Failed", failed.stdout), failed.stdout
    assert (
        "mappings/audit.yaml:6: functions.audit-handler[0].batch_size: "
        "Input should be greater than or equal to 1"
    ) in failed.stdout
    assert "1 error(s) in the spec" in failed.stdout
    assert "ci.yml" not in failed.stdout  # excluded by the hook's default
