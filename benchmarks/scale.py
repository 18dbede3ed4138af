"""Plan and apply N mappings against a moto server; calls, wall time and memory at scale.

For each N: a spec of N SQS mappings on N/10 functions, a sandbox server (moto) in a child
process, and a fresh measuring process that runs, against that server:

  1. plan on the empty account (N creates),
  2. apply of those creates (achieved Lambda requests/s against --max-rps, throttled answers,
     failed calls); above --skip-apply-above the account is seeded in moto's backend instead,
  3. a steady-state plan (the cron case), against the target ceil(N/100) + 2 Lambda calls,
  4. the per-mapping baseline a Terraform refresh makes: one GetEventSourceMapping and one
     ListTags per mapping, sequential through a client with the same client-side limiter.

Then, with no server, the pure part at --diff-size mappings: load_spec, diff.diff (CPU time)
and render, and the peak memory of load + diff + render in a fresh process.

Lambda calls are counted client side, per HTTP attempt (retries included), by operation and
HTTP status; when the sandbox keeps a response log, the server's count is shown next to it.

    python benchmarks/scale.py [--sizes 100,1000,5000] [--latency-ms 0] [--quota 15]
        [--max-rps 10] [--parallelism 10] [--skip-apply-above 1000] [--baseline-max 1000]
        [--settle-ms 0] [--diff-size 10000] [--json results.json]

With --engine, instead: the apply engines side by side in one run (issue 11). Each scenario
(creates:N@SETTLE, mixed:UPDATES/DELETES/CREATES@SETTLE, replaces:N@SETTLE) runs once per
engine ("new": esm_reconcile.apply.Applier; "legacy": benchmarks/legacy_apply.py, the engine
before issue 11), each time on a fresh server: wall time against the ideal (N/rate + settle;
replaces 2N/rate + 2 settle), Lambda calls by operation, 429s, failed changes, duplicates,
mappings still in transition when apply returns, and PASS/FAIL per target.

    python benchmarks/scale.py --engine [--scenarios creates:200@10,...] [--engines new,legacy]
        [--quota 15] [--max-rps 10] [--parallelism 32] [--json results.json]
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import multiprocessing as mp
import resource
import sys
import tempfile
import time
import traceback
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

REGION, ACCOUNT = "us-east-1", "123456789012"
PER_FUNCTION = 10
MB = 1024 * 1024

# Spawn, not fork: each measuring process starts with nothing but what it imports, so its peak
# memory is esm's, and no moto state or server thread leaks in from the parent.
CTX = mp.get_context("spawn")


# -- specs ---------------------------------------------------------------------------------------


def function_name(i: int) -> str:
    return f"bench-fn{i // PER_FUNCTION}"


def queue_arn(i: int, prefix: str = "bench-q") -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{prefix}{i}"


def server_spec(n: int) -> dict[str, Any]:
    """N plain SQS mappings, as benchmarks measured before (batch_size 5, N/10 functions)."""
    functions: dict[str, list[dict[str, Any]]] = {}
    for i in range(n):
        functions.setdefault(function_name(i), []).append(
            {"event_source_arn": queue_arn(i), "batch_size": 5}
        )
    return {"version": 1, "region": REGION, "functions": functions}


def diff_spec(n: int) -> dict[str, Any]:
    """N SQS mappings with a realistic mix of settings, so diff compares more than one field."""
    functions: dict[str, list[dict[str, Any]]] = {}
    for i in range(n):
        mapping: dict[str, Any] = {"event_source_arn": queue_arn(i), "batch_size": 5}
        if i % 2 == 0:
            mapping["function_response_types"] = ["ReportBatchItemFailures"]
        if i % 3 == 0:
            mapping["maximum_batching_window_in_seconds"] = 5
            mapping["scaling_config"] = {"maximum_concurrency": 10}
        if i % 10 == 0:
            mapping["filter_criteria"] = {"filters": [{"pattern": {"body": {"kind": [f"k{i}"]}}}]}
        functions.setdefault(function_name(i), []).append(mapping)
    return {"version": 1, "region": REGION, "account_id": ACCOUNT, "functions": functions}


def write_spec(kind: str, n: int, path: str, conn: Connection) -> None:
    """Child: write a spec file, so that neither the measuring processes nor the parent they
    are started from carry the dump's memory (on Linux a child's ru_maxrss starts from its
    parent's resident set at fork)."""
    spec = server_spec(n) if kind == "server" else diff_spec(n)
    Path(path).write_text(yaml.dump(spec, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    conn.send(("result", path))


# -- memory and call counting --------------------------------------------------------------------


def rss_high_water_mb() -> float:
    """This process's peak resident set so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


class CallCounter:
    """HTTP attempts per operation and status, counted client side (each retry is one more).

    `response-received` fires once per attempt, after the limiter's `before-send`, so this is
    what the server saw from us.
    """

    def __init__(self) -> None:
        self.by_operation: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()

    def attach(self, client: Any, service: str) -> None:
        client.meta.events.register(f"response-received.{service}", self._on_response)

    def _on_response(
        self, event_name: str, response_dict: dict[str, Any] | None, exception: Any, **_: Any
    ) -> None:
        self.by_operation[event_name.rsplit(".", 1)[-1]] += 1
        status = response_dict["status_code"] if response_dict else type(exception).__name__
        self.by_status[str(status)] += 1

    def reset(self) -> None:
        self.by_operation.clear()
        self.by_status.clear()

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())


# -- the sandbox server (child process) ----------------------------------------------------------


def sandbox_options(quota: float | None, latency_s: float, settle_s: float) -> dict[str, Any]:
    """The sandbox options this checkout supports, with a note for each one it lacks."""
    from esm_reconcile.sandbox import sandbox

    params = inspect.signature(sandbox).parameters
    wanted: dict[str, Any] = {}
    if quota:
        wanted["quota_rps"] = quota
    if latency_s:
        wanted["latency_s"] = latency_s
    if settle_s:
        wanted["settle_s"] = settle_s
    missing = [k for k in wanted if k not in params]
    for key in missing:
        print(f"warning: sandbox() has no {key}= here; running without it", file=sys.stderr)
        del wanted[key]
    return wanted


def serve(n: int, options: dict[str, Any], conn: Connection) -> None:
    """Child: run the sandbox for a server_spec(n) account; answer seed/log/stop commands."""
    from esm_reconcile.sandbox import sandbox

    spec = server_spec(n)
    sources = [m["event_source_arn"] for ms in spec["functions"].values() for m in ms]
    params = inspect.signature(sandbox).parameters
    timed = "response_log" in params
    log: list[Any] = []
    kwargs = dict(options, **({"response_log": log} if timed else {"request_log": log}))
    with sandbox(list(spec["functions"]), sources, REGION, account_id=ACCOUNT, **kwargs) as url:
        conn.send({"url": url, "timed_log": timed})
        while True:
            command = conn.recv()
            if command == "seed":
                conn.send(seed_backend(spec))
            elif command == "log":
                conn.send(list(log))
            else:
                conn.send("stopped")
                return


def seed_backend(spec: dict[str, Any]) -> float:
    """Create the spec's mappings in moto's backend directly: no HTTP, so no quota and no log.

    This is the 'mappings already exist' state for N where applying at the quota would take
    too long; what esm later reads through the server is the same as after an apply.
    """
    from esm_reconcile.sandbox import create_mappings_in_backend

    started = time.monotonic()
    requests = (
        {
            "FunctionName": function,
            "EventSourceArn": m["event_source_arn"],
            "BatchSize": m["batch_size"],
        }
        for function, mappings in spec["functions"].items()
        for m in mappings
    )
    create_mappings_in_backend(ACCOUNT, REGION, requests)
    return time.monotonic() - started


# -- the measuring process -----------------------------------------------------------------------


class Phases:
    """Runs named phases, each with calls, wall/CPU time and memory measured around it."""

    def __init__(self, n: int) -> None:
        from esm_reconcile.aws import connect

        self.connect = connect
        self.n = n
        self.lambda_calls = CallCounter()
        self.sts_calls = CallCounter()
        self.results: list[dict[str, Any]] = []

    def context(self, max_rps: float) -> Any:
        """A fresh AwsContext per phase, as separate esm runs would have (own limiter, STS)."""
        aws = self.connect(region=REGION, max_rps=max_rps)
        self.lambda_calls.attach(aws.lambda_client, "lambda")
        self.sts_calls.attach(aws.sts_client, "sts")
        return aws

    def run(self, name: str, action: Callable[[], Any], **extra: Any) -> Any:
        self.lambda_calls.reset()
        self.sts_calls.reset()
        gc.collect()
        tracemalloc.reset_peak()
        traced_before = tracemalloc.get_traced_memory()[0]
        started, cpu_started = time.monotonic(), time.process_time()
        result = action()
        ended, cpu = time.monotonic(), time.process_time() - cpu_started
        wall = ended - started
        row = {
            "n": self.n,
            "phase": name,
            "lambda_calls": self.lambda_calls.total,
            "by_operation": dict(sorted(self.lambda_calls.by_operation.items())),
            "by_status": dict(sorted(self.lambda_calls.by_status.items())),
            "throttled": self.lambda_calls.by_status.get("429", 0),
            "sts_calls": self.sts_calls.total,
            "wall_s": wall,
            "cpu_s": cpu,
            "rps": self.lambda_calls.total / wall if wall else 0.0,
            # Peak of Python allocations during the phase, above what was live when it began.
            "traced_peak_mb": (tracemalloc.get_traced_memory()[1] - traced_before) / MB,
            "rss_high_water_mb": rss_high_water_mb(),  # inflated by tracemalloc's own tables
            "tracemalloc_overhead_mb": tracemalloc.get_tracemalloc_memory() / MB,
            "window": (started, ended),
            **extra,
        }
        self.results.append(row)
        return result


def measure_size(n: int, path: str, url: str, args: dict[str, Any], conn: Connection) -> None:
    """Child: the four measurements for one N against the server at `url`."""
    try:
        conn.send(("result", _measure_size(n, path, url, args, conn)))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _measure_size(
    n: int, path: str, url: str, args: dict[str, Any], conn: Connection
) -> dict[str, Any]:
    from esm_reconcile.app import plan_one_scope as plan_with_context
    from esm_reconcile.apply import Applier
    from esm_reconcile.sandbox import sandbox_environ  # the sandbox's own env, not a copy
    from esm_reconcile.validate import load_spec

    tracemalloc.start()  # after imports: trace esm's work, not module loading

    notes: list[str] = []
    phases = Phases(n)
    with sandbox_environ(url, REGION, ACCOUNT):
        spec = phases.run("load spec", lambda: load_spec([path]))
        max_rps = args["max_rps"]

        aws = phases.context(max_rps)
        first, _, _ = phases.run("plan, empty account", lambda: plan_with_context(spec, aws))
        creates = sum(1 for c in first.changes if c.action == "create")
        assert creates == n and len(first.changes) == n, f"expected {n} creates"

        if n <= args["skip_apply_above"]:
            aws = phases.context(max_rps)
            kwargs: dict[str, Any] = {}
            if "parallelism" in inspect.signature(Applier).parameters:
                kwargs["parallelism"] = args["parallelism"]
            else:
                notes.append("Applier has no parallelism here: apply ran sequentially")
            applier = Applier(aws.lambda_client, **kwargs)
            result = phases.run(
                "apply, N creates",
                lambda: applier.apply(first),
                parallelism=kwargs.get("parallelism", 1),
            )
            failed = result.by_status("failed")
            row = phases.results[-1]
            row["failed"] = len(failed)
            row["failed_throttling"] = sum(
                1 for o in failed if "TooManyRequests" in o.message or "Throttl" in o.message
            )
            row["failed_examples"] = [o.message for o in failed[:3]]
            # Requests/s alone flatters an apply that spends its rate on polls: also mappings/s.
            row["mappings_per_s"] = n / row["wall_s"]
        else:
            conn.send(("seed", None))
            seconds = conn.recv()
            notes.append(
                f"N={n} > --skip-apply-above {args['skip_apply_above']}: no apply; the "
                f"mappings were created in moto's backend directly ({seconds:.1f} s, no HTTP)"
            )

        aws = phases.context(max_rps)
        steady, live, _ = phases.run("plan, no changes", lambda: plan_with_context(spec, aws))
        row = phases.results[-1]
        row["target_calls"] = math.ceil(n / 100) + 2
        row["changes"] = len(steady.changes)
        if steady.changes:
            notes.append(f"steady-state plan was not empty: {len(steady.changes)} changes")

        # Terraform keeps UUIDs and ARNs in its state; here they come from the plan's List.
        sample = live[: args["baseline_max"]]
        if not sample:
            return {"n": n, "phases": phases.results, "notes": notes}
        aws = phases.context(max_rps)
        client = aws.lambda_client

        def refresh() -> None:
            for mapping in sample:
                client.get_event_source_mapping(UUID=mapping.uuid)
                client.list_tags(Resource=mapping.esm_arn)

        phases.run("baseline: Get + ListTags each", refresh, sample=len(sample))
        if len(sample) < n:
            notes.append(
                f"baseline ran on {len(sample)} of {n} mappings (--baseline-max); its calls "
                "and wall time are scaled by N/sample"
            )
    return {"n": n, "phases": phases.results, "notes": notes}


def measure_plan_rss(n: int, path: str, url: str, max_rps: float, conn: Connection) -> None:
    """Child: one steady-state plan as `esm plan` runs it, in a fresh process, untraced.

    tracemalloc's own tables inflate RSS, so the process peak for the memory target is taken
    here, with nothing else done in the process: load, connect, plan, render.
    """
    try:
        conn.send(("result", _measure_plan_rss(n, path, url, max_rps)))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _measure_plan_rss(n: int, path: str, url: str, max_rps: float) -> dict[str, Any]:
    from esm_reconcile.app import plan_one_scope as plan_with_context
    from esm_reconcile.aws import connect
    from esm_reconcile.render import render
    from esm_reconcile.sandbox import sandbox_environ
    from esm_reconcile.validate import load_spec

    with sandbox_environ(url, REGION, ACCOUNT):
        gc.collect()
        rss_after_imports = rss_high_water_mb()
        started, cpu_started = time.monotonic(), time.process_time()
        spec = load_spec([path])
        aws = connect(region=REGION, max_rps=max_rps)
        calls = CallCounter()
        calls.attach(aws.lambda_client, "lambda")
        plan, live, _ = plan_with_context(spec, aws)
        render(plan, "text")
        return {
            "n": n,
            "lambda_calls": calls.total,
            "changes": len(plan.changes),
            "live": len(live),
            "wall_s": time.monotonic() - started,
            "cpu_s": time.process_time() - cpu_started,
            "rss_after_imports_mb": rss_after_imports,
            "rss_high_water_mb": rss_high_water_mb(),
        }


# -- diff at scale, no server --------------------------------------------------------------------


SQS_DEFAULTS = {  # what AWS returns for an SQS mapping when a setting was omitted (reference A.4)
    "BatchSize": 10,
    "MaximumBatchingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
    "State": "Enabled",
    "StateTransitionReason": "USER_INITIATED",
}


def live_responses(functions: list[Any]) -> Iterator[dict[str, Any]]:
    """AWS-shaped List items for the spec: 5% drifted, 1% missing (creates), 1% extra (deletes).

    Each item is what AWS returns after esm's own create request, so the rest match exactly.
    """
    from esm_reconcile.diff import create_change

    modified = datetime(2026, 11, 1, tzinfo=UTC)
    ids = iter(range(1, 1 << 30))
    i = 0
    for function in functions:
        for desired in function.mappings:
            i += 1
            items: list[dict[str, Any]] = []
            if i % 100 != 1:
                request = create_change(function, desired).create_request or {}
                item = dict(SQS_DEFAULTS)
                item.update(
                    (k, v)
                    for k, v in request.items()
                    if k not in ("FunctionName", "Enabled", "Tags")
                )
                if i % 20 == 0:
                    item["BatchSize"] = 7  # drift: someone changed it by hand
                items.append(item)
            if i % 100 == 2:
                items.append(dict(SQS_DEFAULTS, EventSourceArn=queue_arn(i, "bench-extra")))
            for item in items:
                uid = str(uuid.UUID(int=next(ids)))
                item.update(
                    UUID=uid,
                    FunctionArn=function.arn,
                    EventSourceMappingArn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uid}",
                    LastModified=modified,
                )
                yield item


def managed_functions(spec: Any) -> list[Any]:
    """What app.plan_one_scope builds, without AWS: the ARN comes from the reference."""
    from esm_reconcile.model import ManagedFunction, parse_function_ref

    return [
        ManagedFunction(label=ref, arn=parse_function_ref(ref).arn(REGION, ACCOUNT), mappings=ms)
        for ref, ms in spec.functions.items()
    ]


def measure_diff(n: int, path: str, repeats: int, conn: Connection) -> None:
    """Child: CPU time of load_spec, building LiveMappings, diff and render; no tracemalloc."""
    try:
        conn.send(("result", _measure_diff(n, path, repeats)))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _cpu(action: Callable[[], Any]) -> tuple[Any, float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    result = action()
    return result, time.process_time() - cpu_started, time.perf_counter() - started


def _measure_diff(n: int, path: str, repeats: int) -> dict[str, Any]:
    from esm_reconcile.diff import diff
    from esm_reconcile.model import LiveMapping
    from esm_reconcile.render import render
    from esm_reconcile.validate import load_spec

    spec, load_cpu, load_wall = _cpu(lambda: load_spec([path]))
    functions = managed_functions(spec)
    live, live_cpu, _ = _cpu(
        lambda: [LiveMapping.from_response(r) for r in live_responses(functions)]
    )
    diff_cpus = []
    plan = None
    for _ in range(repeats):  # diff is pure: repeat it and keep every figure
        gc.collect()
        plan, cpu, _ = _cpu(lambda: diff(functions, live))
        diff_cpus.append(cpu)
    assert plan is not None
    summary = plan.summary()
    render_cpu = {fmt: _cpu(lambda f=fmt: render(plan, f))[1] for fmt in ("text", "json")}
    return {
        "n": n,
        "live": len(live),
        "summary": summary,
        "load_cpu_s": load_cpu,
        "load_wall_s": load_wall,
        "live_from_response_cpu_s": live_cpu,
        "diff_cpu_s": diff_cpus,
        "render_cpu_s": render_cpu,
    }


def measure_diff_memory(n: int, path: str, traced: bool, conn: Connection) -> None:
    """Child: peak memory of load + LiveMappings + diff + render, nothing else in the process.

    Traced: where the memory goes (tracemalloc). Untraced: the process peak, which tracemalloc's
    own tables would inflate.
    """
    try:
        conn.send(("result", _measure_diff_memory(n, path, traced)))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _measure_diff_memory(n: int, path: str, traced: bool) -> dict[str, Any]:
    from esm_reconcile.diff import diff
    from esm_reconcile.model import LiveMapping
    from esm_reconcile.render import render
    from esm_reconcile.validate import load_spec

    gc.collect()
    rss_after_imports = rss_high_water_mb()
    steps: dict[str, tuple[float, float]] = {}  # step → (MB held after it, MB peak during it)

    def step(name: str, action: Callable[[], Any]) -> Any:
        result = action()
        if traced:
            held, peak = tracemalloc.get_traced_memory()
            steps[name] = (held / MB, peak / MB)
            tracemalloc.reset_peak()
        return result

    if traced:
        tracemalloc.start()
    spec = step("load_spec", lambda: load_spec([path]))
    functions = managed_functions(spec)
    live = step(
        "live mappings",
        lambda: [LiveMapping.from_response(r) for r in live_responses(functions)],
    )
    plan = step("diff", lambda: diff(functions, live))
    text = step("render text", lambda: render(plan, "text"))
    tracemalloc.stop()
    return {
        "n": n,
        "traced": traced,
        "rss_after_imports_mb": rss_after_imports,
        "rss_high_water_mb": rss_high_water_mb(),
        "steps": steps,
        "plan_text_mb": len(text) / MB,
    }


# -- apply engines side by side (issue 11) -------------------------------------------------------
#
# Each scenario runs once per engine, each time on a fresh sandbox server (its own process) and
# in a fresh measuring process: seed the mappings that already exist (straight in moto's
# backend, so without quota or settle), plan, apply with the engine, then List at once to see
# what is still in transition and whether any (function, source) has two mappings, and plan
# again to see that the apply converged.

DEFAULT_SCENARIOS = (
    "creates:200@10,creates:500@10,creates:200@30,creates:500@30,mixed:100/50/50@10,replaces:50@10"
)
DEFAULT_ENGINES = "new,legacy"
ENGINES = {
    "new": "esm_reconcile.apply.Applier (what is in the tree)",
    "legacy": "benchmarks/legacy_apply.Applier (the engine before issue 11)",
}
SCENARIO_KINDS = ("creates", "mixed", "replaces")


def stream_arn(i: int) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/bench-s{i}"


class Scenario:
    """One apply to measure, written `creates:N@S`, `mixed:U/D/C@S` or `replaces:N@S` (S: the
    seconds a mapping stays Creating/Updating/Deleting on the server).

    - creates: N SQS mappings on an empty account (N/10 functions);
    - mixed: U+D SQS mappings exist (batch size 5); the spec changes U of them (batch size 7),
      drops D (their functions stay listed, so they are deleted) and adds C;
    - replaces: N Kinesis mappings exist at StartingPosition LATEST; the spec wants
      TRIM_HORIZON, which only re-creating changes (rules.REPLACEMENT_FIELDS).
    """

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        try:
            kind, rest = self.text.split(":", 1)
            counts, settle = rest.split("@", 1)
            self.kind = kind
            self.counts = tuple(int(c) for c in counts.split("/"))
            self.settle_s = float(settle)
        except ValueError:
            raise ValueError(
                f"scenario {text!r}: expected KIND:N@SETTLE or mixed:U/D/C@SETTLE"
            ) from None
        if kind not in SCENARIO_KINDS or len(self.counts) != (3 if kind == "mixed" else 1):
            raise ValueError(f"scenario {text!r}: kinds are creates:N, mixed:U/D/C, replaces:N")
        if self.settle_s < 0 or min(self.counts) < 0:
            raise ValueError(f"scenario {text!r}: counts and settle must be >= 0")

    @property
    def title(self) -> str:
        settle = f"settle {self.settle_s:g} s"
        if self.kind == "mixed":
            u, d, c = self.counts
            return f"{u} updates + {d} deletes + {c} creates, {settle}"
        return f"{self.counts[0]} {self.kind}, {settle}"

    @property
    def changes(self) -> int:
        return sum(self.counts)

    def expected_summary(self) -> dict[str, int]:
        if self.kind == "mixed":
            u, d, c = self.counts
            return {"create": c, "update": u, "replace": 0, "delete": d}
        n = self.counts[0]
        return {
            "create": n if self.kind == "creates" else 0,
            "update": 0,
            "replace": n if self.kind == "replaces" else 0,
            "delete": 0,
        }

    def ideal_s(self, rate: float) -> float:
        """The issue's ideal: every call at the limiter's rate, plus the settles that must
        follow one another (a replace's create waits for its delete to be gone)."""
        if self.kind == "replaces":
            return 2 * self.changes / rate + 2 * self.settle_s
        return self.changes / rate + self.settle_s

    @property
    def wall_factor(self) -> float:
        return 1.2 if self.kind == "creates" else 1.3

    @property
    def calls_target(self) -> float | None:
        return 1.2 * self.changes if self.kind == "creates" else None

    # What exists before the apply, and what the spec wants.

    def _sqs(self, i: int, batch_size: int) -> dict[str, Any]:
        return {"event_source_arn": queue_arn(i), "batch_size": batch_size}

    def existing(self) -> list[dict[str, Any]]:
        """CreateEventSourceMapping requests for the mappings there before the apply."""
        if self.kind == "mixed":
            u, d, _ = self.counts
            return [
                {"FunctionName": function_name(i), "EventSourceArn": queue_arn(i), "BatchSize": 5}
                for i in range(u + d)
            ]
        if self.kind == "replaces":
            return [
                {
                    "FunctionName": function_name(i),
                    "EventSourceArn": stream_arn(i),
                    "StartingPosition": "LATEST",
                    "BatchSize": 100,
                }
                for i in range(self.counts[0])
            ]
        return []

    def spec(self) -> dict[str, Any]:
        functions: dict[str, list[dict[str, Any]]] = {}
        if self.kind == "creates":
            wanted = [(i, self._sqs(i, 5)) for i in range(self.counts[0])]
        elif self.kind == "mixed":
            u, d, c = self.counts
            for i in range(u, u + d):  # deleted: the function stays managed
                functions.setdefault(function_name(i), [])
            wanted = [(i, self._sqs(i, 7)) for i in range(u)]
            wanted += [(i, self._sqs(i, 5)) for i in range(u + d, u + d + c)]
        else:
            wanted = [
                (i, {"event_source_arn": stream_arn(i), "starting_position": "TRIM_HORIZON"})
                for i in range(self.counts[0])
            ]
        for i, mapping in wanted:
            functions.setdefault(function_name(i), []).append(mapping)
        return {"version": 1, "region": REGION, "account_id": ACCOUNT, "functions": functions}

    def sources(self) -> list[str]:
        spec = self.spec()
        arns = [m["event_source_arn"] for ms in spec["functions"].values() for m in ms]
        return list(dict.fromkeys(arns + [r["EventSourceArn"] for r in self.existing()]))


def serve_scenario(text: str, options: dict[str, Any], conn: Connection) -> None:
    """Child: a fresh sandbox for one scenario; answers seed/log/stop commands."""
    from esm_reconcile.sandbox import create_mappings_in_backend, sandbox

    scenario = Scenario(text)
    log: list[Any] = []
    functions = list(scenario.spec()["functions"])
    with sandbox(
        functions, scenario.sources(), REGION, account_id=ACCOUNT, response_log=log, **options
    ) as url:
        conn.send({"url": url})
        while True:
            command = conn.recv()
            if command == "seed":
                started = time.monotonic()
                create_mappings_in_backend(ACCOUNT, REGION, scenario.existing())
                conn.send(time.monotonic() - started)
            elif command == "log":
                conn.send(list(log))
            else:
                conn.send("stopped")
                return


def legacy_connect() -> Any:
    """benchmarks/legacy_apply.connect_as_before: clients as the old engine had them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from legacy_apply import connect_as_before

    return connect_as_before


def engine_applier(engine: str, lambda_client: Any, parallelism: int) -> Any:
    """The engine's Applier on this client; both take (lambda_client, parallelism=, progress=)."""
    if engine == "legacy":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from legacy_apply import Applier
    else:
        from esm_reconcile.apply import Applier
    params = inspect.signature(Applier).parameters
    kwargs: dict[str, Any] = {}
    if "parallelism" in params:
        kwargs["parallelism"] = parallelism
    if "progress" in params:
        kwargs["progress"] = lambda _message: None
    return Applier(lambda_client, **kwargs)


def measure_engine(
    text: str, engine: str, url: str, args: dict[str, Any], workdir: str, conn: Connection
) -> None:
    """Child: seed, plan, apply with one engine, then look at what the apply left."""
    try:
        conn.send(("result", _measure_engine(text, engine, url, args, workdir, conn)))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _measure_engine(
    text: str, engine: str, url: str, args: dict[str, Any], workdir: str, conn: Connection
) -> dict[str, Any]:
    from esm_reconcile import rules
    from esm_reconcile.app import plan_one_scope
    from esm_reconcile.aws import connect
    from esm_reconcile.sandbox import sandbox_environ
    from esm_reconcile.validate import load_spec

    scenario = Scenario(text)
    path = Path(workdir) / f"{engine}-{scenario.kind}-{scenario.changes}.yaml"
    path.write_text(yaml.safe_dump(scenario.spec()))
    max_rps = args["max_rps"]
    with sandbox_environ(url, REGION, ACCOUNT):
        spec = load_spec([str(path)])
        conn.send(("seed", None))
        seed_s = conn.recv()
        plan, _, _ = plan_one_scope(spec, connect(region=REGION, max_rps=max_rps))
        if plan.summary() != scenario.expected_summary():
            raise RuntimeError(f"{scenario.title}: planned {plan.summary()}")

        # A fresh limiter, as `esm apply` has; the old engine on the clients it had.
        aws = (
            legacy_connect()(REGION, max_rps)
            if engine == "legacy"
            else connect(REGION, None, max_rps)
        )
        calls = CallCounter()
        calls.attach(aws.lambda_client, "lambda")
        applier = engine_applier(engine, aws.lambda_client, args["parallelism"])
        started = time.monotonic()
        result = applier.apply(plan)
        ended = time.monotonic()

        # At once: what is still in transition, and any (function, source) held twice.
        lister = connect(region=REGION, max_rps=max_rps).lambda_client
        items = [
            item
            for page in lister.get_paginator("list_event_source_mappings").paginate()
            for item in page.get("EventSourceMappings", [])
        ]
        unsettled = Counter(
            item.get("State") for item in items if item.get("State") in rules.TRANSITION_STATES
        )
        holders = Counter((item.get("FunctionArn"), item.get("EventSourceArn")) for item in items)
        replan, _, _ = plan_one_scope(spec, connect(region=REGION, max_rps=max_rps))

    problems = [o for o in result.outcomes if o.status != "done"]
    return {
        "scenario": text,
        "engine": engine,
        "changes": scenario.changes,
        "seed_s": seed_s,
        "window": (started, ended),
        "wall_s": ended - started,
        "lambda_calls": calls.total,
        "by_operation": dict(sorted(calls.by_operation.items())),
        "by_status": dict(sorted(calls.by_status.items())),
        "throttled": calls.by_status.get("429", 0),
        "summary": result.summary(),
        "ok": bool(result.ok),
        "failed": len(problems),
        "failed_examples": [f"{o.status}: {o.address}: {o.message}" for o in problems[:3]],
        "live_after": len(items),
        "unsettled": dict(unsettled),
        "duplicates": sum(1 for count in holders.values() if count > 1),
        "replan_changes": len(replan.changes),
    }


def run_engine_scenario(
    text: str, engine: str, args: argparse.Namespace, workdir: str
) -> dict[str, Any]:
    """One scenario with one engine, on a server of its own; server-side counts added."""
    scenario = Scenario(text)
    options = sandbox_options(args.quota, args.latency_ms / 1000, scenario.settle_s)
    ours, theirs = CTX.Pipe()
    server = CTX.Process(target=serve_scenario, args=(text, options, theirs))
    server.start()
    try:
        url = ours.recv()["url"]

        def seed() -> float:
            ours.send("seed")
            return ours.recv()

        row = run_child(measure_engine, text, engine, url, vars(args), workdir, on_seed=seed)
        ours.send("log")
        log = ours.recv()
        count_at_server([row], log)
        row["server_options"] = options
        return row
    finally:
        ours.send("stop")
        ours.recv()
        server.join()


def engine_checks(row: dict[str, Any], rate: float) -> list[tuple[bool, str]]:
    """(passed, what) for each target of issue 11 that applies to the row's scenario."""
    scenario = Scenario(row["scenario"])
    ideal = scenario.ideal_s(rate)
    limit = scenario.wall_factor * ideal
    checks = [
        (
            row["wall_s"] <= limit,
            f"wall {row['wall_s']:.1f} s ≤ {scenario.wall_factor:g} × ideal {ideal:.1f} s "
            f"= {limit:.1f} s",
        )
    ]
    if scenario.calls_target is not None:
        checks.append(
            (
                row["lambda_calls"] <= scenario.calls_target,
                f"Lambda calls {row['lambda_calls']} ≤ 1.2 N = {scenario.calls_target:g}",
            )
        )
    unsettled = sum(row["unsettled"].values())
    checks += [
        (row["failed"] == 0, f"{row['failed']} failed or skipped changes (want 0)"),
        (row["duplicates"] == 0, f"{row['duplicates']} duplicated (function, source) (want 0)"),
        (
            unsettled == 0,
            f"{unsettled} mappings in transition when apply returned (want 0)"
            + (f": {fmt_states(row['unsettled'])}" if unsettled else ""),
        ),
        (row["replan_changes"] == 0, f"plan afterwards: {row['replan_changes']} changes (want 0)"),
    ]
    return checks


def fmt_states(states: dict[str, int]) -> str:
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "none"


def print_engine_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    rate = args.max_rps
    print(
        "\n| scenario | engine | wall s | ideal s | wall / ideal | Lambda calls | calls / N "
        "| by operation | 429s (client / server) | failed | duplicates | in transition at return "
        "| plan afterwards |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        scenario = Scenario(row["scenario"])
        ideal = scenario.ideal_s(rate)
        print(
            f"| {scenario.title} | {row['engine']} | {row['wall_s']:.1f} | {ideal:.1f} "
            f"| {row['wall_s'] / ideal if ideal else math.inf:.2f}× | {row['lambda_calls']} "
            f"| {row['lambda_calls'] / max(1, scenario.changes):.2f} "
            f"| {fmt_ops(row['by_operation'])} | {row['throttled']} / {row['server_429']} "
            f"| {row['failed']} | {row['duplicates']} | {sum(row['unsettled'].values())} "
            f"| {row['replan_changes']} changes |"
        )
    print()
    for row in rows:
        scenario = Scenario(row["scenario"])
        for passed, what in engine_checks(row, rate):
            print(f"- {'PASS' if passed else 'FAIL'} {row['engine']}, {scenario.title}: {what}")
        for example in row["failed_examples"]:
            print(f"  - {example}")


def run_engines(args: argparse.Namespace) -> int:
    scenarios = [Scenario(s) for s in args.scenarios.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}: choose from {sorted(ENGINES)}")
    print(
        f"# esm apply engines side by side, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"server quota {args.quota or 'none'} req/s, latency {args.latency_ms:g} ms; esm "
        f"--max-rps {args.max_rps:g}, apply parallelism {args.parallelism}; {mp.cpu_count()} "
        f"CPUs, Python {sys.version.split()[0]}; a fresh server per scenario and engine\n"
    )
    for engine in engines:
        print(f"- {engine}: {ENGINES[engine]}")
    workdir = tempfile.mkdtemp(prefix="esm-engines-")
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        for engine in engines:
            row = run_engine_scenario(scenario.text, engine, args, workdir)
            rows.append(row)
            print(
                f"- done: {engine}, {scenario.title}: {row['wall_s']:.1f} s, "
                f"{row['lambda_calls']} Lambda calls",
                flush=True,
            )
    print_engine_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), "engines": rows}, default=str))
    failed = [row for row in rows if not all(p for p, _ in engine_checks(row, args.max_rps))]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} runs met every target.")
    return 0


# -- the parent: orchestration and tables --------------------------------------------------------


def run_child(
    target: Callable[..., None], *args: Any, on_seed: Callable[[], Any] | None = None
) -> Any:
    """Run a measuring child; serve its seed requests; return its result or raise its error."""
    ours, theirs = CTX.Pipe()
    child = CTX.Process(target=target, args=(*args, theirs))
    child.start()
    try:
        while True:
            kind, payload = ours.recv()
            if kind == "seed":
                assert on_seed is not None
                ours.send(on_seed())
            elif kind == "error":
                raise RuntimeError(f"{target.__name__} failed:\n{payload}")
            else:
                return payload
    finally:
        child.join()


def run_size(n: int, path: str, args: argparse.Namespace) -> dict[str, Any]:
    options = sandbox_options(args.quota, args.latency_ms / 1000, args.settle_ms / 1000)
    ours, theirs = CTX.Pipe()
    server = CTX.Process(target=serve, args=(n, options, theirs))
    server.start()
    try:
        hello = ours.recv()

        def seed() -> float:
            ours.send("seed")
            return ours.recv()

        url = hello["url"]
        result = run_child(measure_size, n, path, url, vars(args), on_seed=seed)
        result["plan_rss"] = run_child(measure_plan_rss, n, path, url, args.max_rps)
        ours.send("log")
        log = ours.recv()
        if hello["timed_log"]:
            count_at_server(result["phases"], log)
        result["server_options"] = options
        return result
    finally:
        ours.send("stop")
        ours.recv()
        server.join()


def count_at_server(phases: list[dict[str, Any]], log: list[tuple[float, str, str, int]]) -> None:
    """Server-side Lambda requests and 429s per phase, by time window (monotonic is system-wide)."""
    lambda_paths = ("/2015-03-31/", "/2017-03-31/tags/")
    for row in phases:
        start, end = row["window"]
        inside = [e for e in log if start <= e[0] <= end and e[2].startswith(lambda_paths)]
        row["server_lambda_requests"] = len(inside)
        row["server_429"] = sum(1 for e in inside if e[3] == 429)


def fmt_ops(ops: dict[str, int]) -> str:
    short = {
        "ListEventSourceMappings": "List",
        "CreateEventSourceMapping": "Create",
        "GetEventSourceMapping": "Get",
        "UpdateEventSourceMapping": "Update",
        "DeleteEventSourceMapping": "Delete",
    }
    return ", ".join(f"{v} {short.get(k, k)}" for k, v in ops.items()) or "none"


def print_size_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    n = result["n"]
    print(f"\n### N = {n}\n")
    print(
        "| phase | Lambda calls | by operation | 429s (client / server) | wall s | CPU s "
        "| Lambda req/s | traced peak MB | RSS high-water MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in result["phases"]:
        scale = n / row["sample"] if row.get("sample") else 1.0
        calls = f"{row['lambda_calls']}"
        wall = f"{row['wall_s']:.2f}"
        if scale != 1.0:
            calls += f" (×{scale:.3g} → {round(row['lambda_calls'] * scale)})"
            wall += f" (×{scale:.3g} → {row['wall_s'] * scale:.0f})"
        server = row.get("server_429", "–")
        sts = f" (+{row['sts_calls']} STS)" if row["sts_calls"] else ""
        print(
            f"| {row['phase']} | {calls}{sts} | {fmt_ops(row['by_operation'])} "
            f"| {row['throttled']} / {server} | {wall} | {row['cpu_s']:.2f} | {row['rps']:.1f} "
            f"| {row['traced_peak_mb']:.1f} | {row['rss_high_water_mb']:.0f} |"
        )
    print()
    for row in result["phases"]:
        if row["phase"] == "plan, no changes":
            ok = row["lambda_calls"] <= row["target_calls"]
            print(
                f"- steady-state plan: {row['lambda_calls']} Lambda calls, target "
                f"ceil(N/100) + 2 = {row['target_calls']}: {'met' if ok else 'MISSED'}"
            )
        if row["phase"] == "apply, N creates":
            share = row["rps"] / args.max_rps
            print(
                f"- apply: {row['rps']:.2f} Lambda req/s = {share:.0%} of --max-rps "
                f"{args.max_rps:g} (target ≥ 90%), {row['mappings_per_s']:.2f} mappings "
                f"created/s, {row['throttled']} throttled answers, "
                f"{row['failed']} failed changes ({row['failed_throttling']} from throttling), "
                f"parallelism {row['parallelism']}"
            )
            for message in row["failed_examples"]:
                print(f"  - failed: {message}")
    rss = result["plan_rss"]
    print(
        f"- `esm plan` alone in a fresh untraced process: {rss['lambda_calls']} Lambda calls, "
        f"{rss['changes']} changes, {rss['wall_s']:.2f} s wall, {rss['cpu_s']:.2f} s CPU, "
        f"RSS high-water {rss['rss_high_water_mb']:.0f} MB ({rss['rss_after_imports_mb']:.0f} MB "
        "after imports)"
    )
    for note in result["notes"]:
        print(f"- note: {note}")


def print_diff_tables(cpu: dict[str, Any], traced: dict[str, Any], memory: dict[str, Any]) -> None:
    n = cpu["n"]
    print(f"\n### Pure part at N = {n} (no server)\n")
    print(f"Plan: {cpu['summary']} from {cpu['live']} live mappings.\n")
    print("| step | CPU s |")
    print("|---|---|")
    print(f"| load_spec (YAML → validated spec) | {cpu['load_cpu_s']:.2f} |")
    print(f"| LiveMapping.from_response × {cpu['live']} | {cpu['live_from_response_cpu_s']:.2f} |")
    diffs = cpu["diff_cpu_s"]
    print(
        f"| **diff.diff** (best of {len(diffs)}) | **{min(diffs):.2f}** (max {max(diffs):.2f}) "
        "— target < 1 s |"
    )
    for fmt, seconds in cpu["render_cpu_s"].items():
        print(f"| render {fmt} | {seconds:.2f} |")
    print("\n| memory, fresh process: load + live + diff + render text | MB |")
    print("|---|---|")
    print(
        f"| RSS after imports (interpreter, pydantic, esm) | {memory['rss_after_imports_mb']:.0f} |"
    )
    print(
        f"| **RSS high-water**, untraced — target < 200 | **{memory['rss_high_water_mb']:.0f}** |"
    )
    print(f"| RSS high-water with tracemalloc on | {traced['rss_high_water_mb']:.0f} |")
    print(
        "\n| step (tracemalloc, Python allocations after imports) | MB held after | MB peak during |"
    )
    print("|---|---|---|")
    for name, (held, peak) in traced["steps"].items():
        print(f"| {name} | {held:.1f} | {peak:.1f} |")


def print_targets(
    sizes: list[dict[str, Any]], pure: dict[str, Any] | None, args: argparse.Namespace
) -> None:
    """One line per target of the issue, with the gap (negative: room to spare)."""
    print("\n### Targets\n")
    print("| target | N | measured | target | gap |")
    print("|---|---|---|---|---|")
    for result in sizes:
        for row in result["phases"]:
            n = result["n"]
            if row["phase"] == "plan, no changes":
                got, want = row["lambda_calls"], row["target_calls"]
                print(
                    f"| steady-state plan, Lambda calls | {n} | {got} | ≤ {want} | {got - want:+d} |"
                )
            if row["phase"] == "apply, N creates":
                want = 0.9 * args.max_rps
                print(
                    f"| apply, Lambda req/s (no call failed from throttling: "
                    f"{'yes' if not row['failed_throttling'] else 'NO'}) | {n} "
                    f"| {row['rps']:.2f} | ≥ {want:g} | {want - row['rps']:+.2f} |"
                )
    if pure:
        n = pure["cpu"]["n"]
        best = min(pure["cpu"]["diff_cpu_s"])
        print(f"| diff CPU s | {n} | {best:.2f} | < 1 | {best - 1:+.2f} |")
        rss = pure["memory"]["rss_high_water_mb"]
        print(f"| peak RSS MB, load + diff + render | {n} | {rss:.0f} | < 200 | {rss - 200:+.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="comma-separated N")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="server delay per Lambda request"
    )
    parser.add_argument("--quota", type=float, default=15.0, help="server quota, req/s (0: none)")
    parser.add_argument(
        "--settle-ms", type=float, default=0.0, help="mappings stay Creating this long"
    )
    parser.add_argument("--max-rps", type=float, default=10.0, help="esm's client-side limit")
    parser.add_argument(
        "--parallelism", type=int, default=32, help="apply workers (esm apply's default)"
    )
    parser.add_argument("--skip-apply-above", type=int, default=1000)
    parser.add_argument("--baseline-max", type=int, default=1000, help="baseline sample size")
    parser.add_argument("--diff-size", type=int, default=10000, help="0: skip the pure part")
    parser.add_argument("--diff-repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write raw results here")
    engine = parser.add_argument_group("apply engines side by side (issue 11)")
    engine.add_argument(
        "--engine",
        action="store_true",
        help="measure the apply engines on --scenarios instead of the per-N phases above",
    )
    engine.add_argument(
        "--scenarios",
        default=DEFAULT_SCENARIOS,
        help="comma-separated creates:N@SETTLE_S, mixed:U/D/C@SETTLE_S, replaces:N@SETTLE_S "
        f"(default: {DEFAULT_SCENARIOS})",
    )
    engine.add_argument(
        "--engines",
        default=DEFAULT_ENGINES,
        help=f"comma-separated, in run order, from {', '.join(ENGINES)} (default: {DEFAULT_ENGINES})",
    )
    args = parser.parse_args(argv)
    if args.engine:
        try:
            [Scenario(s) for s in args.scenarios.split(",") if s.strip()]
        except ValueError as exc:
            parser.error(str(exc))
        return run_engines(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(
        f"# esm scale benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"sizes {sizes}; server quota {args.quota or 'none'} req/s, latency "
        f"{args.latency_ms:g} ms, settle {args.settle_ms:g} ms; esm --max-rps {args.max_rps:g}, "
        f"apply parallelism {args.parallelism}; {mp.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}"
    )
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "sizes": []}
    tmp = Path(tempfile.mkdtemp(prefix="esm-scale-"))
    for n in sizes:
        path = run_child(write_spec, "server", n, str(tmp / f"server-{n}.yaml"))
        result = run_size(n, path, args)
        results["sizes"].append(result)
        print_size_table(result, args)
        sys.stdout.flush()
    if args.diff_size:
        n = args.diff_size
        path = run_child(write_spec, "diff", n, str(tmp / f"diff-{n}.yaml"))
        cpu = run_child(measure_diff, n, path, args.diff_repeats)
        traced = run_child(measure_diff_memory, n, path, True)
        untraced = run_child(measure_diff_memory, n, path, False)
        results["diff"] = {"cpu": cpu, "memory_traced": traced, "memory": untraced}
        print_diff_tables(cpu, traced, untraced)
    print_targets(results["sizes"], results.get("diff"), args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
