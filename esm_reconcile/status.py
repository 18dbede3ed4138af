"""`esm status`: the health of every managed mapping, from what plan already read. Pure: no AWS,
no I/O; the clock is a parameter.

For each desired mapping of each managed function, the live mapping diff pairs it with
(planning.paired) gets one verdict. When several apply, the first of PRECEDENCE wins and the
`detail` text names the others too ("...; also drifted: ..."):

1. `missing`: in the spec, not live (the plan creates it). Nothing else can be said of it.
2. `stuck`: in a transition state (Creating, Enabling, Disabling, Updating, Deleting) for more
   than STUCK_AFTER (15 minutes) by LastModified. First of the live verdicts: AWS refuses to
   change a mapping mid-transition, so nothing else can be fixed until it settles; an unknown
   LastModified is never stuck.
3. `problem`: LastProcessingResult or StateTransitionReason starts with `PROBLEM` (how Lambda
   reports a mapping that cannot poll or invoke, Kafka's failures among them). Before
   `disabled`: Lambda itself disables mappings for such problems, and the problem says why.
4. `disabled`: State is Disabled while the spec wants it enabled (`enabled` not false and not in
   ignore_changes). The plan turns it back on (so it is drifted too), but on-call should know
   it was off.
5. `drifted`: the plan updates or replaces it (its settings differ from the spec).
6. `ok`.

Live mappings of managed functions that no desired mapping pairs with (the plan deletes them)
are listed as `drifted` as well, so that status is `ok` throughout exactly when a plan would have
nothing to do for them; a leftover already Deleting is listed only when it is stuck.

`unmanaged` lists the region's mappings of functions that no spec lists (the rest of the List
pages plan read); `orphans` (only when asked for: ScopePlan.orphans) the mappings, managed or
not, whose function no longer exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import rules
from .model import LiveMapping, ManagedFunction, address, function_scope
from .plan import FORMAT_VERSION, Change, Plan
from .planning import paired
from .render import code_span, json_text, markdown_text, scope_text, terminal_safe

if TYPE_CHECKING:
    from .planning import ScopePlan

HEALTHS = ("ok", "missing", "drifted", "disabled", "problem", "stuck")  # the SPEC's summary order
PRECEDENCE = ("missing", "stuck", "problem", "disabled", "drifted")  # the first that applies wins
WARNED = ("problem", "stuck", "disabled")  # what plan and apply print as warnings
STUCK_AFTER = timedelta(minutes=15)
STUCK_STATES = rules.TRANSITION_STATES
PROBLEM_PREFIX = "PROBLEM"
FIELDS_NAMED = 5  # a drift detail names this many changed fields, then "and N more"


@dataclass(frozen=True)
class MappingHealth:
    """One managed mapping's verdict; the fields in the SPEC's order and names."""

    address: str
    region: str | None
    account: str | None
    uuid: str | None
    state: str | None
    state_transition_reason: str | None
    last_processing_result: str | None
    last_modified: str | None  # ISO 8601, UTC
    health: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UnmanagedMapping:
    """A mapping in the region whose function no spec lists."""

    uuid: str
    function_arn: str
    event_source: str
    state: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OrphanMapping:
    """A mapping whose function no longer exists; `managed`: a spec lists that function."""

    uuid: str
    function_arn: str
    event_source: str
    state: str
    managed: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StatusReport:
    mappings: list[MappingHealth] = field(default_factory=list)
    unmanaged: list[UnmanagedMapping] = field(default_factory=list)
    orphans: list[OrphanMapping] | None = None  # None: not asked for
    scopes: list[tuple[str | None, str | None]] = field(default_factory=list)  # (region, account)

    @property
    def summary(self) -> dict[str, int]:
        """Counts by verdict (a property, as PlanReport's and ApplyReport's are)."""
        counts = dict.fromkeys(HEALTHS, 0)
        for mapping in self.mappings:
            counts[mapping.health] += 1
        return counts

    @property
    def all_ok(self) -> bool:
        """Every managed mapping is `ok` (also when there are none)."""
        return all(m.health == "ok" for m in self.mappings)

    def exit_code(self, detailed: bool) -> int:
        """`--detailed-exitcode`: 2 when any managed mapping is not ok, else 0 (as without it)."""
        return 2 if detailed and not self.all_ok else 0

    def to_json(self) -> dict[str, Any]:
        """The SPEC's status object; `orphans` only when they were asked for."""
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "mappings": [m.to_json() for m in self.mappings],
            "unmanaged": [m.to_json() for m in self.unmanaged],
            "summary": self.summary,
        }
        if self.orphans is not None:
            out["orphans"] = [m.to_json() for m in self.orphans]
        return out


# -- the verdicts ------------------------------------------------------------------------------


def health(scope_plans: Sequence[ScopePlan], now: datetime) -> StatusReport:
    """The status of the scopes planned (planning.plan_scopes; `orphans=True` there for the
    orphans, `allow_missing_functions=True` so that a function not yet deployed is a detail of
    its `missing` mappings rather than an error), without targets (a targeted plan leaves
    changes out, and `drifted` is read from the plan). `now`: the time to judge `stuck` by."""
    report = StatusReport(scopes=[(sp.plan.region, sp.plan.account) for sp in scope_plans])
    managed_arns = {f.arn for sp in scope_plans for f in sp.functions}
    for sp in scope_plans:
        report.mappings += scope_health(
            sp.functions,
            sp.live,
            sp.plan,
            now,
            missing_functions=sp.missing_functions,
            orphans=sp.orphans,
        )
    report.unmanaged = unmanaged_mappings(
        m for sp in scope_plans for m in sp.unmanaged if m.function_arn not in managed_arns
    )
    if any(sp.orphans is not None for sp in scope_plans):
        report.orphans = orphan_mappings(
            (m for sp in scope_plans for m in sp.orphans or ()), managed_arns
        )
    return report


def scope_health(
    functions: list[ManagedFunction],
    live: list[LiveMapping],
    plan: Plan,
    now: datetime,
    *,
    missing_functions: Iterable[str] = (),
    orphans: Iterable[LiveMapping] | None = None,
) -> list[MappingHealth]:
    """The verdicts of one scope: its managed functions, the live mappings of those functions,
    and the plan made from them (its updates and replaces are what `drifted` means)."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    changes = {c.uuid: c for c in plan.changes if c.uuid and c.action in ("update", "replace")}
    missing = set(missing_functions)
    orphaned = {m.uuid for m in orphans or ()}
    out: list[MappingHealth] = []
    paired_uuids: set[str] = set()
    per_function: dict[str, list[MappingHealth]] = {f.arn: [] for f in functions}
    for function, desired, match in paired(functions, live):
        where = _scope_of(function.arn, plan)
        at = address(function.label, desired.source)
        if match is None:
            detail = "in the spec, not live: the plan creates it"
            if function.label in missing:
                detail += f"; function {function.label} does not exist"
            deleting = sorted(
                m.uuid
                for m in live
                if m.function_arn == function.arn
                and m.source == desired.source
                and m.state == "Deleting"
            )
            if deleting:
                detail += "; still Deleting: " + ", ".join(deleting)
            per_function[function.arn].append(_missing(at, where, detail))
            continue
        paired_uuids.add(match.uuid)
        wants_enabled = (
            desired.settings.get("enabled", True) is not False
            and "enabled" not in desired.ignore_changes
        )
        reasons = _reasons(match, now, wants_enabled, changes.get(match.uuid))
        if match.uuid in orphaned:
            reasons.append(("", "its function no longer exists"))
        per_function[function.arn].append(_verdict(at, where, match, reasons))

    labels = {f.arn: f.label for f in reversed(functions)}  # the first label naming an ARN
    for mapping in sorted(live, key=lambda m: (m.source, m.uuid)):
        if mapping.uuid in paired_uuids or mapping.function_arn not in labels:
            continue
        reasons = _reasons(mapping, now, False, None)
        if mapping.state != "Deleting":
            reasons.append(("drifted", "live, not in the spec: the plan deletes it"))
        elif not any(name == "stuck" for name, _ in reasons):
            continue  # going away already
        if mapping.uuid in orphaned:
            reasons.append(("", "its function no longer exists"))
        at = address(labels[mapping.function_arn], mapping.source)
        where = _scope_of(mapping.function_arn, plan)
        per_function[mapping.function_arn].append(_verdict(at, where, mapping, reasons))
    for function in functions:
        out += per_function.pop(function.arn, [])
    return out


def _reasons(
    mapping: LiveMapping, now: datetime, wants_enabled: bool, change: Change | None
) -> list[tuple[str, str]]:
    """(verdict, why) for each verdict that applies to a live mapping, in any order."""
    found: list[tuple[str, str]] = []
    if mapping.state in STUCK_STATES:
        modified = _parsed(mapping.last_modified)
        if modified is not None and now - modified > STUCK_AFTER:
            minutes = int((now - modified).total_seconds() // 60)
            found.append(
                ("stuck", f"{mapping.state} for {minutes} minutes (since {mapping.last_modified})")
            )
    problems = [
        f"{name}: {value}"
        for name, value in (
            ("LastProcessingResult", mapping.last_processing_result),
            ("StateTransitionReason", mapping.state_transition_reason),
        )
        if is_problem(value)
    ]
    if problems:
        found.append(("problem", "; ".join(problems)))
    if mapping.state == "Disabled" and wants_enabled:
        why = "Disabled while the spec wants it enabled"
        if mapping.state_transition_reason and not is_problem(mapping.state_transition_reason):
            why += f" (StateTransitionReason: {mapping.state_transition_reason})"
        found.append(("disabled", why))
    if change is not None:
        found.append(("drifted", _drift_text(change)))
    return found


def is_problem(value: str | None) -> bool:
    """How Lambda marks a failing mapping: LastProcessingResult or StateTransitionReason
    beginning with `PROBLEM` ("PROBLEM: Function call failed", ...)."""
    return isinstance(value, str) and value.lstrip().startswith(PROBLEM_PREFIX)


def _drift_text(change: Change) -> str:
    names = [f.name for f in change.fields]
    shown = ", ".join(names[:FIELDS_NAMED])
    if len(names) > FIELDS_NAMED:
        shown += f" and {len(names) - FIELDS_NAMED} more"
    how = "updates it in place" if change.action == "update" else "replaces it"
    return f"settings differ ({shown}): the plan {how}"


def _verdict(
    at: str,
    where: tuple[str | None, str | None],
    mapping: LiveMapping,
    reasons: list[tuple[str, str]],
) -> MappingHealth:
    verdicts = [name for name, _ in reasons if name]
    chosen = next((v for v in PRECEDENCE if v in verdicts), "ok")
    ordered = sorted(reasons, key=lambda r: PRECEDENCE.index(r[0]) if r[0] else len(PRECEDENCE))
    parts = []
    for name, why in ordered:
        parts.append(why if name in ("", chosen) else f"also {name}: {why}")
    return MappingHealth(
        address=at,
        region=where[0],
        account=where[1],
        uuid=mapping.uuid,
        state=mapping.state or None,
        state_transition_reason=mapping.state_transition_reason,
        last_processing_result=mapping.last_processing_result,
        last_modified=mapping.last_modified,
        health=chosen,
        detail="; ".join(parts),
    )


def _missing(at: str, where: tuple[str | None, str | None], detail: str) -> MappingHealth:
    return MappingHealth(at, where[0], where[1], None, None, None, None, None, "missing", detail)


def _scope_of(function_arn: str, plan: Plan) -> tuple[str | None, str | None]:
    """(region, account) a mapping is in: its function's, else the plan's."""
    region, account = function_scope(function_arn)
    return region or plan.region, account or plan.account


def _parsed(timestamp: str | None) -> datetime | None:
    if not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def unmanaged_mappings(mappings: Iterable[LiveMapping]) -> list[UnmanagedMapping]:
    """Each once (scopes may share a region and account), by function, source and UUID."""
    unique = {m.uuid: m for m in mappings}
    return [
        UnmanagedMapping(m.uuid, m.function_arn, m.source, m.state)
        for m in sorted(unique.values(), key=lambda m: (m.function_arn, m.source, m.uuid))
    ]


def orphan_mappings(mappings: Iterable[LiveMapping], managed_arns: set[str]) -> list[OrphanMapping]:
    unique = {m.uuid: m for m in mappings}
    return [
        OrphanMapping(m.uuid, m.function_arn, m.source, m.state, m.function_arn in managed_arns)
        for m in sorted(unique.values(), key=lambda m: (m.function_arn, m.source, m.uuid))
    ]


def unhealthy_warnings(report: StatusReport) -> list[str]:
    """One line per managed mapping that is `problem`, `stuck` or `disabled`, for plan and apply
    to print among their warnings. Named by region when the report covers several scopes (a
    one-scope report's lines get theirs from merge_plans)."""
    several = len(set(report.scopes)) > 1
    lines = []
    for m in report.mappings:
        if m.health not in WARNED:
            continue
        where = f"{m.region}: " if several and m.region else ""
        lines.append(f"{where}{m.address}: {m.health}: {m.detail} (uuid {m.uuid})")
    return lines


# -- rendering ---------------------------------------------------------------------------------

COLORS = {
    "ok": "green",
    "missing": "yellow",
    "drifted": "yellow",
    "disabled": "red",
    "problem": "red",
    "stuck": "red",
}


def summary_line(report: StatusReport) -> str:
    counts = report.summary
    return "Status: " + ", ".join(f"{counts[h]} {h}" for h in HEALTHS) + "."


def _scopes_text(report: StatusReport) -> str:
    scopes = [s for s in (scope_text(r, a) for r, a in dict.fromkeys(report.scopes)) if s]
    if not scopes:
        return ""
    if len(scopes) == 1:
        return scopes[0][0].upper() + scopes[0][1:]
    return f"{len(scopes)} regions/accounts: " + "; ".join(scopes)


def _or_dash(value: str | None) -> str:
    return terminal_safe(value) if value else "-"


def render_text(report: StatusReport, color: bool = False) -> str:
    import click

    def paint(word: str) -> str:
        return click.style(word, fg=COLORS.get(word.strip()), bold=True) if color else word

    several = len(set(report.scopes)) > 1
    width = max(len(h) for h in HEALTHS) + 2
    indent = " " * width
    blocks: list[str] = []
    header = _scopes_text(report)
    if header:
        blocks.append(terminal_safe(header))
    if report.mappings:
        lines = []
        for m in report.mappings:
            lines.append(paint(m.health.ljust(width)) + terminal_safe(m.address))
            if several:
                lines.append(indent + "in: " + terminal_safe(scope_text(m.region, m.account)))
            if m.uuid is not None:
                reason = f" ({terminal_safe(m.state_transition_reason)})"
                lines.append(
                    f"{indent}uuid {terminal_safe(m.uuid)}  state {_or_dash(m.state)}"
                    f"{reason if m.state_transition_reason else ''}"
                )
                lines.append(
                    f"{indent}last processing result {_or_dash(m.last_processing_result)}  "
                    f"last modified {_or_dash(m.last_modified)}"
                )
            if m.detail:
                mark = "" if m.health == "ok" else "! "
                lines.append(f"{indent}{mark}{terminal_safe(m.detail)}")
        blocks.append("\n".join(lines))
    else:
        blocks.append("No managed mappings.")
    if report.unmanaged:
        lines = [f"Unmanaged: {len(report.unmanaged)} mapping(s) of functions no spec lists"]
        lines += [
            _listed_line(m.uuid, m.state, m.function_arn, m.event_source) for m in report.unmanaged
        ]
        blocks.append("\n".join(lines))
    if report.orphans is not None:
        if report.orphans:
            lines = [f"Orphans: {len(report.orphans)} mapping(s) whose function no longer exists"]
            for m in report.orphans:
                line = _listed_line(m.uuid, m.state, m.function_arn, m.event_source)
                lines.append(line + ("  (managed)" if m.managed else ""))
            blocks.append("\n".join(lines))
        else:
            blocks.append("Orphans: none (every mapping's function exists).")
    blocks.append(summary_line(report))
    return "\n\n".join(blocks)


def _listed_line(uuid: str, state: str, function_arn: str, event_source: str) -> str:
    return (
        f"  {_or_dash(state).ljust(10)} {terminal_safe(uuid)}  {terminal_safe(function_arn)}"
        f"  <- {terminal_safe(event_source)}"
    )


def _cell(value: str | None) -> str:
    """A table cell showing `value` literally (a code span), empty for none."""
    if value is None or value == "":
        return ""
    return code_span(terminal_safe(value)).replace("|", "\\|")


def render_markdown(report: StatusReport) -> str:
    several = len(set(report.scopes)) > 1
    out = [f"**{summary_line(report)}**", ""]
    scopes = [
        ", ".join(
            p
            for p in (
                f"region {code_span(terminal_safe(r))}" if r else "",
                f"account {code_span(terminal_safe(a))}" if a else "",
            )
            if p
        )
        for r, a in dict.fromkeys(report.scopes)
    ]
    scopes = [s for s in scopes if s]
    if len(scopes) == 1:
        out += [scopes[0][0].upper() + scopes[0][1:], ""]
    elif scopes:
        out += [f"{len(scopes)} regions/accounts: " + "; ".join(scopes), ""]
    if report.mappings:
        columns = ["health", "address"] + (["region", "account"] if several else [])
        columns += [
            "uuid",
            "state",
            "state transition reason",
            "last processing result",
            "last modified",
            "detail",
        ]
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "---|" * len(columns))
        for m in report.mappings:
            health_cell = m.health if m.health == "ok" else f"**{m.health}**"
            cells = [health_cell, _cell(m.address)]
            if several:
                cells += [_cell(m.region), _cell(m.account)]
            cells += [
                _cell(m.uuid),
                _cell(m.state),
                _cell(m.state_transition_reason),
                _cell(m.last_processing_result),
                _cell(m.last_modified),
                markdown_text(m.detail),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    else:
        out += ["No managed mappings.", ""]
    if report.unmanaged:
        out += [f"#### Unmanaged mappings ({len(report.unmanaged)})", ""]
        out += ["| uuid | function | event source | state |", "|---|---|---|---|"]
        for u in report.unmanaged:
            cells = [_cell(u.uuid), _cell(u.function_arn), _cell(u.event_source), _cell(u.state)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if report.orphans is not None:
        out += [f"#### Orphaned mappings ({len(report.orphans)})", ""]
        if report.orphans:
            out += ["| uuid | function | event source | state | managed |", "|---|---|---|---|---|"]
            for o in report.orphans:
                cells = [_cell(o.uuid), _cell(o.function_arn), _cell(o.event_source)]
                cells += [_cell(o.state), "yes" if o.managed else "no"]
                out.append("| " + " | ".join(cells) + " |")
        else:
            out.append("Every mapping's function exists.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_json(report: StatusReport) -> str:
    return json_text(report.to_json())


def render(report: StatusReport, fmt: str = "text", color: bool = False) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report, color=color)
