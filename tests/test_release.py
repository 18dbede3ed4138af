"""A release that installs cleanly, from a copy of this checkout:

- `python -m build` makes the sdist, then the wheel from the sdist (so the sdist holds all the
  wheel needs), and `twine check --strict` accepts both, as PyPI's upload would;
- the wheel, installed into a new virtualenv, runs `esm --version`, `esm schema` and
  `esm-validate`, importing itself from that virtualenv;
- the version is written once, in the copy's pyproject.toml, and the file names, the metadata,
  `esm --version` and `esm_reconcile.__version__` all say it.

Offline and in seconds: built without isolation (the build backend comes with the test extra)
and installed with --no-index into a virtualenv that sees this environment's packages for its
dependencies only (a .pth file; the wheel's own files come first on its path). What a user's
`pipx install esm-reconcile` adds, the download of those dependencies, is not exercised here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

from tests.cli_runner import cli_environment
from tests.conftest import REPO_ROOT

VERSION = "1.2.3.dev4"  # set in the copy only: what the release would carry
NOT_SOURCE = shutil.ignore_patterns(
    ".git", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache", ".benchmarks", ".venv"
)
NOT_SOURCE_EXTRA = ("build", "dist")


def _copy_checkout(target: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(NOT_SOURCE(folder, names))
        if Path(folder) == REPO_ROOT:
            skipped |= {n for n in names if n in NOT_SOURCE_EXTRA or n.endswith(".egg-info")}
        return skipped

    shutil.copytree(REPO_ROOT, target, ignore=ignore)
    pyproject = target / "pyproject.toml"
    text, count = re.subn(
        r'^version = "[^"]*"', f'version = "{VERSION}"', pyproject.read_text(), flags=re.M
    )
    assert count == 1, "pyproject.toml should set [project] version exactly once"
    pyproject.write_text(text)


def _run(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(arg) for arg in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done


def _venv_seeing_these_packages(folder: Path, env: dict[str, str]) -> Path:
    """A new virtualenv (no pip of its own) whose path ends with this environment's
    site-packages, so the wheel's dependencies are found there and nothing is downloaded."""
    venv.create(folder, with_pip=False)
    python = folder / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run(python, "-c", code, env=env, cwd=folder).stdout.strip())
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "zz_test_dependencies.pth").write_text("\n".join(outer) + "\n")
    return python


def test_wheel_and_sdist_build_check_and_install(tmp_path: Path) -> None:
    env = cli_environment(os.environ)  # fake credentials, no AWS config, no ESM_*
    for name in ("PYTHONPATH", "PYTHONHOME"):  # nothing from this checkout on the path
        env.pop(name, None)
    source, dist = tmp_path / "source", tmp_path / "dist"
    _copy_checkout(source)

    _run(
        sys.executable,
        "-m",
        "build",
        "--no-isolation",
        "--outdir",
        dist,
        source,
        env=env,
        cwd=tmp_path,
    )
    sdist = dist / f"esm_reconcile-{VERSION}.tar.gz"
    wheel = dist / f"esm_reconcile-{VERSION}-py3-none-any.whl"
    assert set(dist.iterdir()) == {sdist, wheel}
    _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel, env=env, cwd=tmp_path)

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"esm_reconcile-{VERSION}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    modules = {
        path.relative_to(source).as_posix() for path in (source / "esm_reconcile").rglob("*.py")
    }
    assert modules - names == set(), "modules missing from the wheel"
    assert f"\nVersion: {VERSION}\n" in metadata
    assert "esm = esm_reconcile.cli:main" in entry_points
    assert "esm-validate = esm_reconcile.precommit:main" in entry_points
    with tarfile.open(sdist) as archive:
        shipped = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in (
        "CHANGELOG.md",
        "README.md",
        "schema/esm-spec.schema.json",
        "mappings.example.yaml",
    ):
        assert name in shipped, f"{name} missing from the sdist"

    python = _venv_seeing_these_packages(tmp_path / "venv", env)
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "--no-index", wheel)
    _run(*pip, env=env, cwd=tmp_path)
    bin_dir = python.parent
    assert _run(bin_dir / "esm", "--version", env=env, cwd=tmp_path).stdout == (
        f"esm, version {VERSION}\n"
    )
    code = "import esm_reconcile as e; print(e.__version__); print(e.__file__)"
    version, where = _run(python, "-c", code, env=env, cwd=tmp_path).stdout.split()
    assert version == VERSION
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    schema = json.loads(_run(bin_dir / "esm", "schema", env=env, cwd=tmp_path).stdout)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    example = source / "mappings.example.yaml"
    checked = _run(bin_dir / "esm-validate", example, env=env, cwd=tmp_path)
    assert checked.stdout.startswith("1 file(s) valid: "), checked.stdout
