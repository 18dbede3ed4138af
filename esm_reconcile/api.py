"""esm as a library: one call per command, for teams that build their own automation.

    from esm_reconcile import api

    report = api.plan(["specs/team-a", "specs/team-b"], region="eu-west-1")
    if report.has_changes:
        post_to_chat(report.render("markdown"))
    applied = api.apply(["specs/team-a"], max_destroy=0)
    assert applied.ok, applied.report

`api.status(paths)` gives each managed mapping's health (`report.all_ok`). Each function loads
the spec files, connects (credentials from boto3's usual chain, or an
embedded emulator with `sandbox=True`), does what the command of the same name does, and returns
plain typed results. Failures raise `esm_reconcile.errors.EsmError` (one line naming what is
wrong) or `SpecErrors` (every problem of the spec, each with file, line and field). These are
the functions of the application layer (`esm_reconcile.app`) that the CLI itself calls; use
`app` directly to keep one connection across several steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import app
from .model import Spec
from .outcomes import ApplyResult, report_lines
from .plan import Plan
from .render import render
from .status import StatusReport

Paths = str | Path | Sequence[str | Path]


def _listed(paths: Paths) -> list[str | Path]:
    """One path, or several: a lone string is a path, never a sequence of characters."""
    if isinstance(paths, (str, Path)):
        return [paths]
    return list(paths)


def _settings(
    region: str | None, profile: str | None, sandbox: bool, max_rps: float
) -> app.Settings:
    return app.Settings(region=region, profile=profile, sandbox=sandbox, max_rps=max_rps)


@dataclass
class PlanReport:
    """What `esm plan` found: the plan of every region and account, merged."""

    plan: Plan

    @property
    def has_changes(self) -> bool:
        return self.plan.has_changes

    @property
    def summary(self) -> dict[str, int]:
        """Counts by action: create, update, replace, delete."""
        return self.plan.summary()

    def render(self, fmt: str = "text") -> str:
        """The plan as `esm plan --format FMT` prints it: text, json or markdown."""
        return render(self.plan, fmt)


@dataclass
class ApplyReport:
    """What `esm apply` did: the plan it carried out and what became of each change."""

    plan: Plan
    result: ApplyResult = field(default_factory=ApplyResult)

    @property
    def ok(self) -> bool:
        """Every change done and settled (nothing failed, skipped or still settling)."""
        return self.result.ok

    @property
    def summary(self) -> dict[str, int]:
        """Counts: created, adopted, updated, replaced, deleted, failed, skipped, settling."""
        return self.result.summary()

    @property
    def report(self) -> str:
        """The end-of-apply report in words, as the CLI prints it."""
        return "\n".join(report_lines(self.result))

    def json(self) -> str:
        """The document `esm apply --format json` prints."""
        return app.apply_document(self.plan, self.result)


def validate(paths: Paths, *, region: str | None = None, profile: str | None = None) -> Spec:
    """Check spec files offline, as `esm validate` does; the loaded spec."""
    return app.validate(_listed(paths), app.Settings(region=region, profile=profile))


def plan(
    paths: Paths,
    *,
    region: str | None = None,
    profile: str | None = None,
    targets: Sequence[str] = (),
    sandbox: bool = False,
    max_rps: float = app.DEFAULT_MAX_RPS,
) -> PlanReport:
    """Read live state and plan, changing nothing (`esm plan`)."""
    settings = _settings(region, profile, sandbox, max_rps)
    spec = app.load(_listed(paths), settings)
    with app.connected(spec, settings) as connections:
        return PlanReport(app.plan(connections, targets).plan)


def apply(
    paths: Paths,
    *,
    region: str | None = None,
    profile: str | None = None,
    targets: Sequence[str] = (),
    max_destroy: int | None = None,
    parallelism: int = app.DEFAULT_PARALLELISM,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    sandbox: bool = False,
    max_rps: float = app.DEFAULT_MAX_RPS,
) -> ApplyReport:
    """Plan, then make the live mappings equal to the spec (`esm apply --auto-approve`).
    `max_destroy`: refuse, changing nothing, when the plan deletes or replaces more mappings.
    `progress`: called with each progress line. `stop`: set it to send nothing more."""
    settings = _settings(region, profile, sandbox, max_rps)
    spec = app.load(_listed(paths), settings)
    with app.connected(spec, settings) as connections:
        jobs = app.plan(connections, targets).jobs
        app.check_destroy_limit(jobs, max_destroy)
        shown = app.shown_plan(jobs)
        if not shown.has_changes:
            return ApplyReport(shown)
        result = app.apply(
            jobs, parallelism=parallelism, progress=progress or (lambda _line: None), stop=stop
        )
        return ApplyReport(shown, result)


def status(
    paths: Paths,
    *,
    region: str | None = None,
    profile: str | None = None,
    orphans: bool = False,
    sandbox: bool = False,
    max_rps: float = app.DEFAULT_MAX_RPS,
) -> StatusReport:
    """The health of every managed mapping and the region's unmanaged ones (`esm status`);
    `report.all_ok`, `report.summary`, and `esm_reconcile.status.render(report, fmt)`."""
    settings = _settings(region, profile, sandbox, max_rps)
    spec = app.load(_listed(paths), settings)
    with app.connected(spec, settings) as connections:
        return app.status(connections, orphans=orphans)


def export(
    functions: Sequence[str] = (),
    *,
    all_functions: bool = False,
    region: str | None = None,
    profile: str | None = None,
    max_rps: float = app.DEFAULT_MAX_RPS,
) -> str:
    """A spec (YAML text) for the live mappings of these functions, or of every function in
    the region (`esm export`)."""
    settings = _settings(region, profile, False, max_rps)
    return app.export(functions, all_functions, settings).text
