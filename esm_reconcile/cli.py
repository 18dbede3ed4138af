"""The `esm` command line. Errors become words and exit codes here; the core only raises."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from .errors import EsmError, SpecErrors
from .github import append_step_summary, error_annotation
from .loader import expand_paths
from .plan import Plan

if TYPE_CHECKING:
    from .aws import AwsContext
    from .reconcile import Scope
from .render import render, summary_line, terminal_safe
from .validate import Spec, load_spec

FORMATS = click.Choice(["text", "json", "markdown"])
# Mappings take seconds to minutes to settle; waiting on several at once is what makes a big
# apply finish. The rate limiter, not this, bounds the request rate.
DEFAULT_PARALLELISM = 32


@dataclass
class Options:
    region: str | None
    profile: str | None
    sandbox: bool
    color: bool
    max_rps: float
    region_source: str = "--region"  # or ESM_REGION: named in a conflict with a spec


def _color_wanted(no_color: bool) -> bool:
    # no-color.org: NO_COLOR disables color when it is set to a non-empty value.
    return not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()


class SpecPath(click.Path):
    """A spec path; from ESM_FILE a whitespace-separated list (click.Path splits on os.pathsep)."""

    envvar_list_splitter = None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ESM"})
@click.option("--region", help="AWS region (else the spec's, else the AWS config).")
@click.option("--profile", help="AWS profile from the shared config.")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run against an embedded local AWS emulator seeded from the spec (no account needed).",
)
@click.option("--no-color", is_flag=True, help="Plain output (also: NO_COLOR).")
@click.option(
    "--max-rps",
    type=click.FloatRange(0.1, 100),
    default=10.0,
    show_default=True,
    help="Client-side limit on Lambda API requests per second.",
)
@click.version_option(package_name="esm-reconcile")
@click.pass_context
def cli(
    ctx: click.Context,
    region: str | None,
    profile: str | None,
    sandbox: bool,
    no_color: bool,
    max_rps: float,
) -> None:
    """Keep AWS Lambda event source mappings equal to YAML spec files."""
    source = ctx.get_parameter_source("region")
    ctx.obj = Options(
        region,
        profile,
        sandbox,
        _color_wanted(no_color),
        max_rps,
        "ESM_REGION" if source is click.core.ParameterSource.ENVIRONMENT else "--region",
    )


def _spec_paths(required: bool = True) -> Any:
    return click.option(
        "-f",
        "--file",
        "paths",
        multiple=True,
        required=required,
        envvar="ESM_FILE",  # whitespace-separated
        type=SpecPath(exists=True),
        help="Spec file, or directory of *.yaml/*.yml (repeatable).",
    )


def _load(paths: tuple[str, ...], opts: Options | None = None) -> Spec:
    files = expand_paths(list(paths))
    if not files:
        raise EsmError("no *.yaml or *.yml files found in " + ", ".join(paths))
    spec = load_spec(files)
    if opts is not None:
        _check_region_flag(spec, opts)
    return spec


def _check_region_flag(spec: Spec, opts: Options) -> None:
    """--region fills in for files that name no region; contradicting a file's is a mistake
    (AWS_REGION stays a fallback: CI environments set it for every job)."""
    if opts.region is None:
        return
    for spec_file in spec.files:
        if spec_file.region and spec_file.region != opts.region:
            raise EsmError(
                f"{opts.region_source} {opts.region} conflicts with region: {spec_file.region} "
                f"in {spec_file.path}; drop one of them"
            )


def _write_output(path: str, text: str) -> None:
    """Write a file the user asked for; failure is one line, not a traceback."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise EsmError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def _connected(opts: Options, spec: Spec) -> Iterator[list[tuple[Scope, AwsContext]]]:
    """Each group of files (by region and profile) with its own clients and rate limit."""
    from .aws import connect, default_region
    from .reconcile import split_by_scope

    context: Any = nullcontext()
    if opts.sandbox:
        region = opts.region or next((f.region for f in spec.files if f.region), None)
        region = region or "us-east-1"
        # The sandbox hosts one account with the ambient test credentials: no profiles.
        scopes = split_by_scope(spec, region, None, lambda _profile: region)
        for scope in scopes:
            scope.profile = None
        context = _sandbox_for(spec, scopes, region)
    else:
        scopes = split_by_scope(spec, opts.region, opts.profile, default_region)
    with context:
        contexts = [
            connect(region=scope.region, profile=scope.profile, max_rps=opts.max_rps)
            for scope in scopes
        ]
        if len(scopes) > 1:
            click.echo(
                f"{len(scopes)} regions/accounts, planned and applied concurrently: "
                + ", ".join(scope.name for scope in scopes),
                err=True,
            )
        yield list(zip(scopes, contexts, strict=True))


def _sandbox_for(spec: Spec, scopes: list[Scope], region: str) -> Any:
    """The embedded emulator, seeded with every function and source the spec names."""
    from .model import parse_function_ref
    from .sandbox import choose_account, sandbox

    sources = []
    for m in spec.mappings():
        sources.append(m.settings.get("event_source_arn"))
        sources.append(
            ((m.settings.get("destination_config") or {}).get("on_failure") or {}).get(
                "destination"
            )
        )
    sources = [s for s in sources if s]
    account_id = next((f.account_id for f in spec.files if f.account_id), None)
    refs = list(spec.functions)
    if len({scope.region for scope in scopes}) > 1:
        # A bare function name means "in its file's region": name the region for the seeder.
        account = choose_account(account_id, refs, sources)
        refs = [
            parse_function_ref(ref).arn(scope.region or region, account)
            for scope in scopes
            for ref in scope.spec.functions
        ]
    click.echo(f"sandbox: embedded AWS emulator for {region}, seeded from the spec", err=True)
    return sandbox(refs, sources, region, account_id=account_id)


def _show(plan: Plan, fmt: str, opts: Options) -> None:
    click.echo(render(plan, fmt, color=opts.color and fmt == "text"))


def _step_summary(plan: Plan) -> None:
    """In GitHub Actions, append the markdown plan to the job's step summary (never fatal)."""
    if not os.environ.get("GITHUB_STEP_SUMMARY"):
        return
    problem = append_step_summary(render(plan, "markdown"))
    if problem:
        click.echo(problem, err=True)


@cli.command()
@_spec_paths()
@click.pass_obj
def validate(opts: Options, paths: tuple[str, ...]) -> None:
    """Check spec files offline (no AWS call)."""
    from .aws import default_region
    from .reconcile import split_by_scope

    spec = _load(paths, opts)

    def offline_region(profile: str | None) -> str | None:
        # A profile missing from this machine's config leaves the region open, as plan would
        # fail on it anyway; validate must run where there is no AWS config at all.
        try:
            return default_region(profile)
        except EsmError:
            return None

    # The same grouping by region and profile as plan, so both agree on who owns a function.
    split_by_scope(spec, opts.region, opts.profile, offline_region)
    count = len(spec.mappings())
    click.echo(
        f"{len(spec.files)} file(s) valid: {len(spec.functions)} function(s), {count} mapping(s)."
    )


def _targets() -> Any:
    return click.option(
        "--target",
        "targets",
        multiple=True,
        envvar="ESM_TARGET",
        help="Only this function (as the spec names it) or mapping address (as the plan prints "
        "it); repeatable.",
    )


@cli.command()
@_spec_paths()
@click.option(
    "--format", "fmt", type=FORMATS, default="text", show_default=True, envvar="ESM_FORMAT"
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes.")
@_targets()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, writable=True),
    help="Also save the plan, with what it saw, for `esm apply FILE`.",
)
@click.pass_obj
def plan(
    opts: Options,
    paths: tuple[str, ...],
    fmt: str,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    out: str | None,
) -> None:
    """Read live state and print what apply would change. Changes nothing."""
    from .reconcile import merge_plans, plan_scopes_with_context, saved_plan_text

    spec = _load(paths, opts)
    with _connected(opts, spec) as connected:
        scopes, contexts = [s for s, _ in connected], [a for _, a in connected]
        planned = plan_scopes_with_context(scopes, contexts, targets)
    result = merge_plans([plan for plan, _, _ in planned])
    _show(result, fmt, opts)
    if out:
        text = saved_plan_text(out, scopes, contexts, planned, targets)
        _write_output(out, text)
        click.echo(f"Saved the plan to {out}; apply it with: esm apply {out}", err=True)
    _step_summary(result)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


@cli.command()
@click.argument("planfile", required=False, type=click.Path(exists=True, dir_okay=False))
@_spec_paths(required=False)
@click.option(
    "--format", "fmt", type=FORMATS, default="text", show_default=True, envvar="ESM_FORMAT"
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes were made.")
@_targets()
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    help="Changes to different mappings carried out at once (all share --max-rps).",
)
@click.pass_obj
def apply(
    opts: Options,
    planfile: str | None,
    paths: tuple[str, ...],
    fmt: str,
    auto_approve: bool,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    parallelism: int,
) -> None:
    """Plan, confirm, then make the live mappings equal to the spec.

    With PLANFILE (from `esm plan --out`), apply exactly that plan, refusing it if any mapping
    it saw has moved since.
    """
    if planfile:
        if paths or targets:
            raise click.UsageError("give either PLANFILE or -f/--target, not both")
        sys.exit(_apply_saved(opts, planfile, fmt, auto_approve, detailed_exitcode, parallelism))
    if not paths:
        raise click.UsageError("give -f PATH (spec files) or a PLANFILE")
    from .reconcile import merge_plans, plan_scopes

    spec = _load(paths, opts)
    with _connected(opts, spec) as connected:
        contexts = [aws for _, aws in connected]
        plans = plan_scopes([scope for scope, _ in connected], contexts, targets)
        result = merge_plans(plans)
        _show(result, fmt, opts)
        _step_summary(result)
        if not result.has_changes:
            return
        _confirm(auto_approve)
        code = _execute(list(zip(plans, contexts, strict=True)), detailed_exitcode, parallelism)
    sys.exit(code)


def _apply_saved(
    opts: Options,
    planfile: str,
    fmt: str,
    auto_approve: bool,
    detailed_exitcode: bool,
    parallelism: int,
) -> int:
    from . import saved_plan
    from .aws import connect
    from .reconcile import merge_plans, verified_plans

    if opts.sandbox:
        raise EsmError("a saved plan cannot be applied in a new sandbox: it would be stale")
    saved = saved_plan.load(planfile)

    def connect_for(part: saved_plan.SavedScopePlan) -> AwsContext:
        # A plan of one region may be pointed elsewhere with --region (and is then refused as
        # made for another region); several keep their own.
        region = (opts.region if len(saved) == 1 else None) or part.region
        return connect(region=region, profile=part.profile or opts.profile, max_rps=opts.max_rps)

    # Checked offline first (re-derived from the file's spec and observation: edited files are
    # refused before any AWS call), then against the account; these plans, never the file's
    # stored requests, are what is carried out.
    runs = verified_plans(planfile, saved, connect_for)
    result = merge_plans([plan for plan, _ in runs])
    _show(result, fmt, opts)
    if not result.has_changes:
        return 0
    _confirm(auto_approve)
    return _execute(runs, detailed_exitcode, parallelism)


def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise EsmError("refusing to apply: no terminal to confirm on (use --auto-approve)")
    answer = click.prompt(
        "\nDo you want to apply these changes? Only 'yes' will be accepted",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip() != "yes":
        raise EsmError("apply cancelled")


def _execute(
    runs: list[tuple[Plan, AwsContext]],
    detailed_exitcode: bool,
    parallelism: int = DEFAULT_PARALLELISM,
) -> int:
    import threading

    from .apply import Applier, apply_all, report_lines

    def reporter(prefix: str) -> Any:
        def progress(message: str) -> None:
            click.echo(prefix + message, err=True)

        return progress

    stop = threading.Event()  # one Ctrl-C stops every region
    appliers = []
    for plan, aws in runs:
        progress = reporter(f"[{aws.region}] " if len(runs) > 1 else "")
        # On a terminal, show how long each wait has taken; in logs, one line per action only.
        waiting = progress if sys.stderr.isatty() else None
        applier = Applier(
            aws.lambda_client,
            progress=progress,
            waiting=waiting,
            parallelism=parallelism,
            stop=stop,
        )
        appliers.append((applier, plan))
    result = apply_all(appliers, stop)
    click.echo("\n" + "\n".join(report_lines(result)))
    if not result.ok:
        return 1
    return 2 if detailed_exitcode and result.changed else 0


@cli.command()
@click.option(
    "--function",
    "functions",
    multiple=True,
    envvar="ESM_FUNCTION",
    help="Function to export (name, name:qualifier or ARN); repeatable.",
)
@click.option("--all", "all_functions", is_flag=True, help="Every mapping in the region.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the spec here instead of stdout.",
)
@click.pass_obj
def export(
    opts: Options, functions: tuple[str, ...], all_functions: bool, output: str | None
) -> None:
    """Print a spec (YAML) for the live mappings of functions, with values at AWS defaults left out."""
    from .aws import connect
    from .export import dump_yaml, export_spec, label_for
    from .live import LiveReader
    from .model import parse_function_ref

    if bool(functions) == all_functions:
        raise click.UsageError("give --function NAME (repeatable) or --all")
    for ref in functions:
        try:
            parse_function_ref(ref)
        except ValueError as exc:
            raise click.UsageError(f"--function {ref}: {exc}") from None
    if opts.sandbox:
        raise EsmError("export reads a real account; the sandbox would be empty")
    aws = connect(region=opts.region, profile=opts.profile, max_rps=opts.max_rps)
    reader = LiveReader(aws)
    account = aws.identity()["account"]
    labels = {reader.function_arn(ref): ref for ref in functions}
    missing = reader.missing_functions(list(functions))
    if missing:
        # An empty export of a typo would read as "this function has no mappings".
        raise EsmError(
            f"function does not exist in account {account} region {aws.region}: "
            + ", ".join(missing)
        )
    live = reader.mappings(None if all_functions else set(labels))
    live = [m for m in live if m.state != "Deleting"]
    for mapping in live:
        reader.read_tags(mapping)  # exported specs manage the tags they carry
        labels.setdefault(
            mapping.function_arn, label_for(mapping.function_arn, aws.region, account)
        )
    text = dump_yaml(export_spec(live, labels, aws.region, account))
    if output:
        _write_output(output, text)
        click.echo(f"Wrote {len(live)} mapping(s) to {output}", err=True)
    else:
        click.echo(text, nl=False)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the spec format (for editors)."""
    from .schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


@cli.command()
@_spec_paths()
@click.pass_obj
def demo(opts: Options, paths: tuple[str, ...]) -> None:
    """In the sandbox: plan, apply, then plan again (which says No changes.)."""
    from .reconcile import merge_plans, plan_scopes

    opts.sandbox = True
    spec = _load(paths, opts)
    with _connected(opts, spec) as connected:
        scopes, contexts = [s for s, _ in connected], [a for _, a in connected]
        click.echo("== esm plan")
        plans = plan_scopes(scopes, contexts)
        _show(merge_plans(plans), "text", opts)
        click.echo("\n== esm apply --auto-approve")
        code = _execute(list(zip(plans, contexts, strict=True)), detailed_exitcode=False)
        if code:
            sys.exit(code)
        click.echo("\n== esm plan (again)")
        second = merge_plans(plan_scopes(scopes, contexts))
        _show(second, "text", opts)
        if second.has_changes:
            raise EsmError("the second plan still has changes: " + summary_line(second))


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors exit 1 (click's default is 2, which means 'changes' here)."""
    # Values are shown as written; a terminal that cannot encode a character gets \uXXXX
    # rather than a UnicodeEncodeError traceback.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        cli.main(args=argv, prog_name="esm", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            _exit_interrupted()  # click turns Ctrl-C into Abort
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except SpecErrors as exc:
        for error in exc.errors:
            click.echo(terminal_safe(str(error)), err=True)
            if os.environ.get("GITHUB_ACTIONS") == "true":
                # Workflow command: GitHub shows it as an annotation on that file and line.
                message = f"{error.field}: {error.message}" if error.field else error.message
                click.echo(error_annotation(error.file, error.line, message))
        click.echo(f"{len(exc.errors)} error(s) in the spec; nothing was changed.", err=True)
        sys.exit(1)
    except EsmError as exc:
        # Messages may quote hostile input: keep its control characters off the terminal.
        lines = str(exc).split("\n")
        click.echo(
            "\n".join(terminal_safe(line) for line in [f"Error: {lines[0]}", *lines[1:]]), err=True
        )
        sys.exit(1)
    except KeyboardInterrupt:
        _exit_interrupted()
    except OSError as exc:
        # Our own output failed (stdout on a full disk, a closed pipe): say so once.
        _silence_stdout()
        click.echo(f"Error: cannot write output: {exc.strerror or exc}", err=True)
        sys.exit(1)


def _exit_interrupted() -> None:
    """Ctrl-C that reached the main thread (a second one during apply): exit now. Worker
    threads may still be inside an AWS call, and a normal exit would wait for them."""
    try:
        click.echo("Interrupted.", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(130)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
