"""The application layer: what a run of esm does, assembled once for every caller.

The CLI, the tests, the benchmarks and library users call these functions with plain options
and get plain results back; none of them wires loader, scopes, clients, planner and applier
together itself. The pipeline underneath: loader → validate (spec model) → ownership (scopes,
one owner, targets) → live → diff → plan → render / saved_plan → apply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import aws as aws_api  # called through the module, so tests can patch connect
from . import guards
from . import status as status_of
from .apply import Applier, ApplyResult, apply_all
from .aws import DEFAULT_MAX_RPS, AwsContext, default_region
from .errors import EsmError
from .loader import expand_paths
from .model import LiveMapping, ManagedFunction, Spec, parse_function_ref
from .ownership import Scope, split_by_scope
from .plan import Plan
from .planning import ScopePlan, merge_plans, plan_scopes
from .status import StatusReport
from .validate import load_spec

# Mappings take seconds to minutes to settle; waiting on several at once is what makes a big
# apply finish. The rate limiter, not this, bounds the request rate.
DEFAULT_PARALLELISM = 32
SANDBOX_REGION = "us-east-1"


def _quiet(_message: str) -> None:
    pass


@dataclass
class Settings:
    """Where and how a run reaches AWS (the CLI's global options)."""

    region: str | None = None  # fills in for files that name no region
    profile: str | None = None
    sandbox: bool = False  # an embedded emulator seeded from the spec, for this run only
    max_rps: float = DEFAULT_MAX_RPS
    region_source: str = "--region"  # how the user gave `region`, for messages


# -- specs -------------------------------------------------------------------------------------


def load(paths: Sequence[str | Path], settings: Settings | None = None) -> Spec:
    """Spec files (or directories of them) loaded and validated; SpecErrors lists every
    problem. A region given in `settings` must not contradict a file's own."""
    files = expand_paths([str(p) for p in paths])
    if not files:
        raise EsmError("no *.yaml or *.yml files found in " + ", ".join(map(str, paths)))
    spec = load_spec(files)
    if settings is not None:
        _check_region_setting(spec, settings)
    return spec


def _check_region_setting(spec: Spec, settings: Settings) -> None:
    """The region setting fills in for files that name no region; contradicting a file's is a
    mistake (AWS_REGION stays a fallback: CI environments set it for every job)."""
    if settings.region is None:
        return
    for spec_file in spec.files:
        if spec_file.region and spec_file.region != settings.region:
            raise EsmError(
                f"{settings.region_source} {settings.region} conflicts with region: "
                f"{spec_file.region} in {spec_file.path}; drop one of them"
            )


def validate(paths: Sequence[str | Path], settings: Settings | None = None) -> Spec:
    """What `esm validate` checks, offline: the files, and who owns which function once each
    file's region is resolved the way plan resolves it (from the AWS config, no API call)."""
    settings = settings or Settings()
    spec = load(paths, settings)
    scopes(spec, settings, offline=True)
    return spec


def scopes(spec: Spec, settings: Settings, offline: bool = False) -> list[Scope]:
    """The spec's files grouped by the region and credentials they go to."""
    if settings.sandbox:
        region = _sandbox_region(spec, settings)
        # The sandbox hosts one account with the ambient test credentials: no profiles.
        found = split_by_scope(spec, region, None, lambda _profile: region)
        for scope in found:
            scope.profile = None
        return found
    return split_by_scope(
        spec, settings.region, settings.profile, _offline_region if offline else default_region
    )


def _offline_region(profile: str | None) -> str | None:
    # A profile missing from this machine's config leaves the region open: validate must run
    # where there is no AWS config at all, and plan would name the problem anyway.
    try:
        return default_region(profile)
    except EsmError:
        return None


# -- connecting --------------------------------------------------------------------------------


@dataclass
class Connection:
    """One scope with its own clients and rate limit."""

    scope: Scope
    aws: AwsContext


@contextmanager
def connected(
    spec: Spec, settings: Settings, notify: Callable[[str], None] = _quiet
) -> Iterator[list[Connection]]:
    """Each scope of the spec connected (inside a seeded sandbox when settings ask for one);
    the sandbox stops when the block ends."""
    found = scopes(spec, settings)
    context: Any = nullcontext()
    if settings.sandbox:
        region = _sandbox_region(spec, settings)
        notify(f"sandbox: embedded AWS emulator for {region}, seeded from the spec")
        context = _sandbox_for(spec, found, region)
    with context:
        sessions: dict[str | None, Any] = {}  # one per profile: its regions share the models
        connections = []
        for scope in found:
            if scope.profile not in sessions:
                sessions[scope.profile] = aws_api.new_session(scope.profile)
            context_of_scope = aws_api.connect(
                region=scope.region,
                profile=scope.profile,
                max_rps=settings.max_rps,
                session=sessions[scope.profile],
            )
            connections.append(Connection(scope, context_of_scope))
        if len(found) > 1:
            notify(
                f"{len(found)} regions/accounts, each read (and applied) concurrently: "
                + ", ".join(scope.name for scope in found)
            )
        yield connections


def _sandbox_region(spec: Spec, settings: Settings) -> str:
    named = next((f.region for f in spec.files if f.region), None)
    return settings.region or named or SANDBOX_REGION


def _sandbox_for(spec: Spec, found: list[Scope], region: str) -> Any:
    """The embedded emulator, seeded with every function and source the spec names."""
    from .sandbox import choose_account, sandbox  # moto is only needed here

    sources = []
    for desired in spec.mappings():
        on_failure = (desired.settings.get("destination_config") or {}).get("on_failure") or {}
        sources += [desired.settings.get("event_source_arn"), on_failure.get("destination")]
        # Secrets (SASL/SCRAM, basic auth...) the mapping names: the seeder makes them too.
        access = desired.settings.get("source_access_configurations") or []
        sources += [entry.get("uri") for entry in access if isinstance(entry, dict)]
    sources = [s for s in sources if s]
    account_id = next((f.account_id for f in spec.files if f.account_id), None)
    refs = list(spec.functions)
    if len({scope.region for scope in found}) > 1:
        # A bare function name means "in its file's region": name the region for the seeder.
        account = choose_account(account_id, refs, sources)
        refs = [
            parse_function_ref(ref).arn(scope.region or region, account)
            for scope in found
            for ref in scope.spec.functions
        ]
    return sandbox(refs, sources, region, account_id=account_id)


# -- planning ----------------------------------------------------------------------------------


@dataclass
class PlanRun:
    """A plan of every scope of a run, with what each was made from."""

    scope_plans: list[ScopePlan]
    targets: tuple[str, ...] = ()
    plan: Plan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = merge_plans([s.plan for s in self.scope_plans])

    @property
    def jobs(self) -> list[ApplyJob]:
        return [ApplyJob(s.plan, s.aws) for s in self.scope_plans]


def plan(connections: list[Connection], targets: Sequence[str] = ()) -> PlanRun:
    """Read live state and plan every scope (concurrently); changes nothing. A plan that
    deletes or replaces a `prevent_destroy` mapping is refused (guards.GuardError)."""
    planned = plan_scopes(
        [c.scope for c in connections], [c.aws for c in connections], tuple(targets)
    )
    guards.check([p.plan for p in planned])
    now = datetime.now(UTC)
    for scope_plan in planned:  # unhealthy managed mappings, from the reads the plan made
        scope_plan.plan.warnings += status_of.unhealthy_warnings(
            status_of.health([scope_plan], now)
        )
    return PlanRun(planned, tuple(targets))


def status(connections: list[Connection], orphans: bool = False) -> StatusReport:
    """The health of every managed mapping, and the region's unmanaged mappings (`esm
    status`), from the reads plan makes; `orphans`: also the mappings whose function no
    longer exists (ListFunctions pages). Changes nothing; a spec function not deployed yet
    is reported as missing, not an error."""
    planned = plan_scopes(
        [c.scope for c in connections],
        [c.aws for c in connections],
        orphans=orphans,
        allow_missing_functions=True,
    )
    return status_of.health(planned, datetime.now(UTC))


def plan_one(spec: Spec, aws: AwsContext, targets: Sequence[str] = ()) -> Plan:
    """The plan of a spec whose files all go to `aws` (one region, one set of credentials)."""
    return plan([Connection(Scope(aws.region, None, spec), aws)], targets).plan


def plan_one_scope(
    spec: Spec, aws: AwsContext, targets: Sequence[str] = ()
) -> tuple[Plan, list[LiveMapping], list[ManagedFunction]]:
    """plan_one, with the live mappings and managed functions it was made from."""
    (made,) = plan([Connection(Scope(aws.region, None, spec), aws)], targets).scope_plans
    return made.plan, made.live, made.functions


def saved_plan_text(run: PlanRun, out: str) -> str:
    """What `plan --out` writes for this run (checked as apply will check it)."""
    from .saved_plan_check import saved_plan_text as text_of

    return text_of(out, run.scope_plans, run.targets)


def write_file(path: str, text: str) -> None:
    """Write a file the user asked for; failure is one line (EsmError), not a traceback."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise EsmError(f"cannot write {path}: {exc.strerror or exc}") from None


# -- applying ----------------------------------------------------------------------------------


@dataclass
class ApplyJob:
    """A plan to carry out with the clients of its region and account."""

    plan: Plan
    aws: AwsContext


def shown_plan(jobs: list[ApplyJob]) -> Plan:
    """The one plan to show for these jobs (several regions merged)."""
    return merge_plans([job.plan for job in jobs])


def check_destroy_limit(jobs: list[ApplyJob], max_destroy: int | None) -> None:
    """Refuse (guards.GuardError, nothing changed) when the plans delete or replace more than
    `max_destroy` mappings, or touch a `prevent_destroy` one. None: no limit."""
    guards.check([job.plan for job in jobs], max_destroy)


def show_saved_plan(planfile: str, fmt: str = "text", color: bool = False) -> str:
    """A saved plan rendered as `plan` renders, derived again offline (no AWS call)."""
    from .show import show_saved_plan as render_saved

    return render_saved(planfile, fmt, color)


def apply_document(plan: Plan, result: ApplyResult) -> str:
    """`esm apply --format json`'s one JSON document: the plan, each outcome, the counts."""
    from .outcomes import apply_json

    return apply_json(plan, result)


def saved_plan_jobs(planfile: str, settings: Settings) -> list[ApplyJob]:
    """The plans of a saved plan file, derived again from what it recorded and checked against
    the live account (EsmError when edited, damaged, for other credentials, or stale)."""
    from . import saved_plan
    from .saved_plan_check import verified_plans

    if settings.sandbox:
        raise EsmError("a saved plan cannot be applied in a new sandbox: it would be stale")
    saved = saved_plan.load(planfile)

    def connect_for(part: saved_plan.SavedScopePlan) -> AwsContext:
        # A plan of one region may be pointed elsewhere with a region setting (and is then
        # refused as made for another region); several keep their own.
        region = (settings.region if len(saved) == 1 else None) or part.region
        return aws_api.connect(
            region=region, profile=part.profile or settings.profile, max_rps=settings.max_rps
        )

    return [ApplyJob(plan, aws) for plan, aws in verified_plans(planfile, saved, connect_for)]


def apply(
    jobs: list[ApplyJob],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    progress: Callable[[str], None] = _quiet,
    waiting: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    **tuning: Any,
) -> ApplyResult:
    """Carry out the plans (every region at once); `stop` (Ctrl-C) ends them all. Progress
    lines of several regions are prefixed with the region. `tuning`: the Applier's polling
    and timeouts (poll_start, poll_max, timeouts, sleep), e.g. test speed."""
    stop = stop if stop is not None else threading.Event()
    runs = []
    for job in jobs:
        prefix = f"[{job.aws.region}] " if len(jobs) > 1 else ""
        applier = Applier(
            job.aws.lambda_client,
            progress=_prefixed(progress, prefix),
            waiting=_prefixed(waiting, prefix) if waiting is not None else None,
            parallelism=parallelism,
            stop=stop,
            **tuning,
        )
        runs.append((applier, job.plan))
    return apply_all(runs, stop)


def _prefixed(sink: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return sink if not prefix else lambda message: sink(prefix + message)


# -- exporting ---------------------------------------------------------------------------------


@dataclass
class Export:
    text: str  # the spec, YAML
    mappings: int


def export(functions: Sequence[str], all_functions: bool, settings: Settings) -> Export:
    """A spec for the live mappings of these functions (or of every function in the region),
    values at AWS defaults left out, with their tags."""
    from .export import dump_yaml, export_spec, label_for
    from .live import LiveReader

    if settings.sandbox:
        raise EsmError("export reads a real account; the sandbox would be empty")
    context = aws_api.connect(
        region=settings.region, profile=settings.profile, max_rps=settings.max_rps
    )
    reader = LiveReader(context)
    account = context.identity()["account"]
    for ref in functions:
        parsed = parse_function_ref(ref)
        if parsed.region not in (None, context.region) or parsed.account not in (None, account):
            # Mappings live in their function's region and account: these are not read here.
            raise EsmError(
                f"--function {ref} is not in account {account} region {context.region}; "
                "export it with that function's region and credentials"
            )
    labels = {reader.function_arn(ref): ref for ref in functions}
    missing = reader.missing_functions(list(functions))
    if missing:
        # An empty export of a typo would read as "this function has no mappings".
        raise EsmError(
            f"function does not exist in account {account} region {context.region}: "
            + ", ".join(missing)
        )
    live = reader.mappings(None if all_functions else set(labels))
    live = [m for m in live if m.state != "Deleting"]
    for mapping in live:
        reader.read_tags(mapping)  # exported specs manage the tags they carry
        labels.setdefault(
            mapping.function_arn, label_for(mapping.function_arn, context.region, account)
        )
    return Export(dump_yaml(export_spec(live, labels, context.region, account)), len(live))


__all__ = [
    "DEFAULT_PARALLELISM",
    "ApplyJob",
    "Connection",
    "Export",
    "PlanRun",
    "Settings",
    "apply",
    "apply_document",
    "check_destroy_limit",
    "connected",
    "export",
    "load",
    "plan",
    "plan_one",
    "plan_one_scope",
    "saved_plan_jobs",
    "saved_plan_text",
    "show_saved_plan",
    "shown_plan",
    "scopes",
    "status",
    "validate",
    "write_file",
]
