"""Spec loading with and without the garbage collector paused, side by side in one run.

    python benchmarks/load_gc.py [--sizes 2000,16000]

Writes a spec of N SQS mappings (10 per function, each with batch_size and tags) and reports the
CPU time of `load_spec` per mapping, with `loader.gc_paused` as shipped ("paused") and with it
made a no-op ("collector on", the old way). Ideal: flat per mapping as N grows.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from esm_reconcile import loader, validate

PER_FUNCTION = 10


def write_spec(path: Path, mappings: int) -> None:
    lines = ["version: 1", "region: us-east-1", "functions:"]
    for function in range(mappings // PER_FUNCTION):
        lines.append(f"  fn-{function}:")
        for index in range(function * PER_FUNCTION, (function + 1) * PER_FUNCTION):
            lines.append(f"    - event_source_arn: arn:aws:sqs:us-east-1:123456789012:q-{index}")
            lines.append(f"      batch_size: {1 + index % 10}")
            lines.append(f"      tags: {{team: t{index % 7}}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cpu_per_mapping(path: Path, mappings: int) -> float:
    started = time.process_time()
    validate.load_spec([path])
    return (time.process_time() - started) * 1e6 / mappings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,16000")
    sizes = [int(n) for n in parser.parse_args().sizes.split(",")]
    paused = loader.gc_paused
    print(f"{'mappings':>9}  {'paused us/mapping':>18}  {'collector on':>13}  {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            path = Path(folder) / f"spec-{size}.yaml"
            write_spec(path, size)
            new = cpu_per_mapping(path, size)
            loader.gc_paused = validate.gc_paused = contextlib.nullcontext  # the old way
            try:
                old = cpu_per_mapping(path, size)
            finally:
                loader.gc_paused = validate.gc_paused = paused
            print(f"{size:>9}  {new:>18.0f}  {old:>13.0f}  {old / new:>5.2f}x")


if __name__ == "__main__":
    main()
