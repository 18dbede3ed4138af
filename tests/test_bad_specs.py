"""A corpus of bad spec files (tests/bad_specs/): each is refused offline, at the right line and
field, with a helpful message, and nothing reaches AWS even through `apply --auto-approve`.

Each corpus file holds one kind of mistake and starts with

    # expect: <line> <field path, or - for none> <substring of the message>

which is what `esm` must print on stderr as `FILE:LINE: FIELD: ...MESSAGE...` (or
`FILE:LINE: ...MESSAGE...` for `-`). The per-file checks validate one file each; one run
applies the whole directory against the moto server, which records every request it receives.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.cli_runner import CliResult, run_esm

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "tests" / "bad_specs"
REGION = "us-east-1"
EXPECT = re.compile(r"^# expect: (?P<line>\d+) (?P<field>\S+) (?P<message>.+)$")


@dataclass(frozen=True)
class Expect:
    path: Path
    line: int
    field: str  # "" when the error names no field
    message: str

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(REPO_ROOT))

    def found_in(self, stderr: str, shown_path: str) -> bool:
        """True when stderr has `shown_path:LINE: FIELD: ...MESSAGE...`."""
        head = f"{shown_path}:{self.line}: " + (f"{self.field}: " if self.field else "")
        for out in stderr.splitlines():
            if out.startswith(head):
                rest = out[len(head) :]
                # With no field, the message must follow the line number directly.
                if self.message in rest and (self.field or not _starts_with_field(rest)):
                    return True
        return False


def _starts_with_field(rest: str) -> bool:
    return bool(re.match(r"(functions|defaults|version|region|account_id)\b[^:\s]*: ", rest))


def _expectation(path: Path) -> Expect:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    match = EXPECT.match(first)
    assert match, f"{path.name}: first line must be '# expect: LINE FIELD|- MESSAGE'"
    field = match["field"]
    return Expect(path, int(match["line"]), "" if field == "-" else field, match["message"])


FILES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".yml"))
EXPECTS = [_expectation(p) for p in FILES]


def test_corpus_is_big_and_well_formed() -> None:
    assert len(FILES) >= 40
    names = [p.name for p in FILES]
    assert all(re.match(r"^\d{2,3}-[a-z0-9-]+\.yaml$", n) for n in names), names
    numbers = [int(n.split("-", 1)[0]) for n in names]
    assert len(set(numbers)) == len(names), "two files share a number"


@pytest.mark.parametrize("expect", EXPECTS, ids=[p.stem for p in FILES])
def test_validate_names_file_line_field(expect: Expect) -> None:
    result = run_esm("validate", "-f", expect.path)
    err = result.err
    assert result.code == 1, result.output
    assert "nothing was changed" in err
    want = f"{expect.path}:{expect.line}: " + (f"{expect.field}: " if expect.field else "")
    assert expect.found_in(err, str(expect.path)), (
        f"expected a line starting {want!r} containing {expect.message!r}; got:\n{err}"
    )


# -- the whole directory through apply --auto-approve, as a user would run it -------------------


def _check_refused(result: CliResult) -> None:
    assert result.code == 1, result.output
    # The refusal comes before any plan is made.
    assert "Plan:" not in result.output and "No changes." not in result.output, result.output
    assert result.out == "", result.out
    assert re.search(r"^\d+ error\(s\) in the spec; nothing was changed\.$", result.err, re.M)


def _check_every_file_reported(result: CliResult) -> None:
    """A directory of bad files reports every file's errors in one run."""
    missing = [e.rel for e in EXPECTS if not e.found_in(result.err, e.rel)]
    assert not missing, "expected errors not reported for:\n  " + "\n  ".join(missing)


@pytest.fixture
def recorded_requests(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every request the (in-process, threaded) moto server receives while the test runs."""
    from moto.moto_api import recorder

    log = tmp_path / "moto-requests.jsonl"
    monkeypatch.setattr(recorder, "_location", str(log))
    recorder.reset_recording()
    recorder.start_recording()

    def requests() -> list[dict]:
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        return [json.loads(line) for line in lines]

    try:
        yield requests
    finally:
        recorder.stop_recording()


def test_apply_directory_refuses_everything_before_any_aws_call(
    moto_server: str, recorded_requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # errors then name the files as a user in the checkout sees them
    result = run_esm(
        "apply",
        "--auto-approve",
        "-f",
        CORPUS.relative_to(REPO_ROOT),
        endpoint=moto_server,
        env={"AWS_MAX_ATTEMPTS": "1"},  # fail fast rather than retry, if anything did call
    )
    _check_refused(result)
    seen = recorded_requests()
    assert seen == [], [f"{r['method']} {r['url']}" for r in seen]
    # The recorder is live (it sees this read), and nothing was created.
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    assert len(recorded_requests()) == 1
    _check_every_file_reported(result)
