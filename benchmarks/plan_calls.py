"""How many API calls do plan and apply make for N mappings? Counted at the sandbox server.

The sandbox is moto behind a middleware that pages ListEventSourceMappings like AWS (at most
100 per page), so the List count is what AWS would see.

    python benchmarks/plan_calls.py [N ...]        (default: 300)
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from esm_reconcile.apply import Applier
from esm_reconcile.aws import connect
from esm_reconcile.reconcile import make_plan
from esm_reconcile.sandbox import sandbox
from esm_reconcile.validate import load_spec

REGION, ACCOUNT = "us-east-1", "123456789012"
PER_FUNCTION = 10


def spec_for(n: int) -> dict:
    functions: dict[str, list] = {}
    for i in range(n):
        queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:bench-q{i}"
        functions.setdefault(f"bench-fn{i // PER_FUNCTION}", []).append(
            {"event_source_arn": queue, "batch_size": 5}
        )
    return {"version": 1, "region": REGION, "functions": functions}


def kind_of_request(method: str, path: str) -> str:
    if path.startswith("/2015-03-31/event-source-mappings"):
        if path.rstrip("/").endswith("event-source-mappings"):
            return {"GET": "ListEventSourceMappings", "POST": "CreateEventSourceMapping"}[method]
        return {
            "GET": "GetEventSourceMapping",
            "PUT": "UpdateEventSourceMapping",
            "DELETE": "DeleteEventSourceMapping",
        }[method]
    if path.startswith("/2015-03-31/functions/"):
        return "GetFunction"
    if path.startswith("/2017-03-31/tags/"):
        return "ListTags/TagResource"
    return "sts/other"


def measure(n: int) -> None:
    spec_dict = spec_for(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(spec_dict))
        spec = load_spec([path])
        log: list[tuple[str, str]] = []
        sources = [m["event_source_arn"] for ms in spec_dict["functions"].values() for m in ms]
        with sandbox(list(spec_dict["functions"]), sources, REGION, request_log=log):
            aws = connect(region=REGION, max_rps=1000)

            def phase(name: str, action) -> object:
                log.clear()
                started = time.perf_counter()
                result = action()
                elapsed = time.perf_counter() - started
                counts = Counter(kind_of_request(m, p) for m, p in log)
                lam = sum(v for k, v in counts.items() if k != "sts/other")
                detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                print(f"N={n:5d} {name:22s} lambda calls {lam:5d}  ({detail})  {elapsed:6.2f} s")
                return result

            first = phase("plan (empty account)", lambda: make_plan(spec, aws))
            applier = Applier(aws.lambda_client, sleep=lambda _s: None)
            phase("apply (all creates)", lambda: applier.apply(first))
            aws = connect(region=REGION, max_rps=1000)  # new context: identity looked up again
            second = phase("plan (no changes)", lambda: make_plan(spec, aws))
            assert not second.has_changes, "second plan should be empty"
            budget = -(-n // 100) + 2
            print(f"N={n:5d} target for a plan: <= ceil(N/100) + 2 = {budget} Lambda calls")


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["300"]:
        measure(int(arg))
