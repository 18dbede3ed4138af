"""The `esm` command line: options in, words and exit codes out. What a command does is the
application layer's (app.py); the core only raises, and errors become words here."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

import click

from . import app
from .errors import EsmError, SpecErrors
from .github import append_step_summary, error_annotation
from .outcomes import ApplyResult
from .plan import Plan
from .render import render, summary_line, terminal_safe

FORMATS = click.Choice(["text", "json", "markdown"])


@dataclass
class Options:
    settings: app.Settings
    color: bool


def _color_wanted(no_color: bool) -> bool:
    # no-color.org: NO_COLOR disables color when it is set to a non-empty value.
    return not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()


class SpecPath(click.Path):
    """A spec path; from ESM_FILE a whitespace-separated list (click.Path splits on os.pathsep)."""

    envvar_list_splitter = None


def _notify(message: str) -> None:
    # Progress names addresses and sources taken from specs and endpoints: escape them.
    click.echo(terminal_safe(message), err=True)


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
    from_env = ctx.get_parameter_source("region") is click.core.ParameterSource.ENVIRONMENT
    settings = app.Settings(
        region=region,
        profile=profile,
        sandbox=sandbox,
        max_rps=max_rps,
        region_source="ESM_REGION" if from_env else "--region",
    )
    ctx.obj = Options(settings, _color_wanted(no_color))


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


def _targets() -> Any:
    return click.option(
        "--target",
        "targets",
        multiple=True,
        envvar="ESM_TARGET",
        help="Only this function (as the spec names it) or mapping address (as the plan prints "
        "it); repeatable.",
    )


def _format() -> Any:
    return click.option(
        "--format", "fmt", type=FORMATS, default="text", show_default=True, envvar="ESM_FORMAT"
    )


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
    spec = app.validate(paths, opts.settings)
    count = len(spec.mappings())
    click.echo(
        f"{len(spec.files)} file(s) valid: {len(spec.functions)} function(s), {count} mapping(s)."
    )


@cli.command()
@_spec_paths()
@_format()
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
    spec = app.load(paths, opts.settings)
    with app.connected(spec, opts.settings, _notify) as connections:
        run = app.plan(connections, targets)
    _show(run.plan, fmt, opts)
    if out:
        app.write_file(out, app.saved_plan_text(run, out))
        _notify(f"Saved the plan to {out}; apply it with: esm apply {out}")
    _step_summary(run.plan)
    if detailed_exitcode and run.plan.has_changes:
        sys.exit(2)


@cli.command()
@click.argument("planfile", required=False, type=click.Path(exists=True, dir_okay=False))
@_spec_paths(required=False)
@_format()
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes were made.")
@_targets()
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=app.DEFAULT_PARALLELISM,
    show_default=True,
    help="Lambda calls in flight at once (all share --max-rps; waiting mappings hold none).",
)
@click.option(
    "--max-destroy",
    type=click.IntRange(min=0),
    envvar="ESM_APPLY_MAX_DESTROY",
    help="Refuse, changing nothing, when the plan deletes or replaces more than N mappings.",
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
    max_destroy: int | None,
) -> None:
    """Plan, confirm, then make the live mappings equal to the spec.

    With PLANFILE (from `esm plan --out`), apply exactly that plan, refusing it if any mapping
    it saw has moved since.
    """
    if max_destroy is None and os.environ.get("ESM_APPLY_MAX_DESTROY", "x").strip() == "":
        # click reads an empty variable as unset: a guard must not fail open on `=$UNSET`.
        raise EsmError("ESM_APPLY_MAX_DESTROY is set but empty: give a number (0: no deletes)")
    if planfile:
        if paths or targets:
            raise click.UsageError("give either PLANFILE or -f/--target, not both")
        jobs = app.saved_plan_jobs(planfile, opts.settings)
        run = Apply(opts, fmt, auto_approve, detailed_exitcode, parallelism, max_destroy)
        sys.exit(run.confirm_and_apply(jobs))
    if not paths:
        raise click.UsageError("give -f PATH (spec files) or a PLANFILE")
    spec = app.load(paths, opts.settings)
    with app.connected(spec, opts.settings, _notify) as connections:
        planned = app.plan(connections, targets)
        _step_summary(planned.plan)
        run = Apply(opts, fmt, auto_approve, detailed_exitcode, parallelism, max_destroy)
        code = run.confirm_and_apply(planned.jobs)
    sys.exit(code)


@dataclass
class Apply:
    """One `esm apply`'s options, from showing the plan to the exit code."""

    opts: Options
    fmt: str
    auto_approve: bool
    detailed_exitcode: bool
    parallelism: int = app.DEFAULT_PARALLELISM
    max_destroy: int | None = None

    def confirm_and_apply(self, jobs: list[app.ApplyJob]) -> int:
        """Show the plan, check the guards, ask (unless told not to), apply, report.

        With --format json stdout gets exactly one JSON document (plan, outcomes, summary);
        the plan to confirm and the report go to stderr."""
        plan = app.shown_plan(jobs)
        as_json = self.fmt == "json"
        if as_json:
            if not self.auto_approve:
                click.echo(render(plan, "text"), err=True)
        else:
            _show(plan, self.fmt, self.opts)
        app.check_destroy_limit(jobs, self.max_destroy)
        if not plan.has_changes:
            if as_json:
                click.echo(app.apply_document(plan, ApplyResult()))
            return 0
        _confirm(self.auto_approve)
        result = _execute(jobs, self.parallelism, report_to_stderr=as_json)
        if as_json:
            click.echo(app.apply_document(plan, result))
        return _exit_code(result, self.detailed_exitcode)


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
    jobs: list[app.ApplyJob],
    parallelism: int = app.DEFAULT_PARALLELISM,
    report_to_stderr: bool = False,
) -> ApplyResult:
    """Apply, with progress on stderr, then the report (on stdout unless told otherwise)."""
    from .apply import report_lines
    from .progress import ProgressSink, calls_planned

    # On a terminal, show how long each wait has taken; in logs (cron, CI), one line per
    # action, with a timestamp and how many of the calls have been sent.
    tty = sys.stderr.isatty()
    progress = ProgressSink(calls_planned([job.plan for job in jobs]), tty=tty, emit=_echo_err)
    result = app.apply(
        jobs,
        parallelism=parallelism,
        progress=progress,
        waiting=_notify if tty else None,
        stop=threading.Event(),  # one Ctrl-C stops every region
    )
    click.echo("\n" + "\n".join(report_lines(result)), err=report_to_stderr)
    return result


def _echo_err(line: str) -> None:
    click.echo(line, err=True)  # already terminal-safe


def _exit_code(result: ApplyResult, detailed_exitcode: bool) -> int:
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
    from .model import parse_function_ref

    if bool(functions) == all_functions:
        raise click.UsageError("give --function NAME (repeatable) or --all")
    for ref in functions:
        try:
            parse_function_ref(ref)
        except ValueError as exc:
            raise click.UsageError(f"--function {ref}: {exc}") from None
    exported = app.export(functions, all_functions, opts.settings)
    if output:
        app.write_file(output, exported.text)
        _notify(f"Wrote {exported.mappings} mapping(s) to {output}")
    else:
        click.echo(exported.text, nl=False)


@cli.command()
@_spec_paths()
@_format()
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when any managed mapping is not ok."
)
@click.option(
    "--orphans",
    is_flag=True,
    help="Also list mappings whose function no longer exists (ListFunctions pages).",
)
@click.pass_obj
def status(
    opts: Options, paths: tuple[str, ...], fmt: str, detailed_exitcode: bool, orphans: bool
) -> None:
    """Health of every managed mapping, and the region's unmanaged ones. Changes nothing."""
    from .status import render as render_status

    spec = app.load(paths, opts.settings)
    with app.connected(spec, opts.settings, _notify) as connections:
        report = app.status(connections, orphans=orphans)
    click.echo(render_status(report, fmt, color=opts.color and fmt == "text"))
    sys.exit(report.exit_code(detailed_exitcode))


@cli.command()
@click.argument("planfile")
@_format()
@click.pass_obj
def show(opts: Options, planfile: str, fmt: str) -> None:
    """Render a saved plan (from `esm plan --out`) without calling AWS."""
    click.echo(app.show_saved_plan(planfile, fmt, color=opts.color and fmt == "text"))


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
    opts.settings.sandbox = True
    spec = app.load(paths, opts.settings)
    with app.connected(spec, opts.settings, _notify) as connections:
        click.echo("== esm plan")
        run = app.plan(connections)
        _show(run.plan, "text", opts)
        click.echo("\n== esm apply --auto-approve")
        code = _exit_code(_execute(run.jobs), detailed_exitcode=False)
        if code:
            sys.exit(code)
        click.echo("\n== esm plan (again)")
        second = app.plan(connections).plan
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
        exc.message = terminal_safe(exc.message)  # usage errors quote what was typed
        exc.show()
        sys.exit(1)
    except SpecErrors as exc:
        for error in exc.shown:
            click.echo(terminal_safe(str(error)), err=True)
            if os.environ.get("GITHUB_ACTIONS") == "true":
                # Workflow command: GitHub shows it as an annotation on that file and line.
                message = f"{error.field}: {error.message}" if error.field else error.message
                click.echo(error_annotation(error.file, error.line, message))
        if len(exc.errors) > len(exc.shown):
            click.echo(f"... and {len(exc.errors) - len(exc.shown)} more error(s)", err=True)
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
