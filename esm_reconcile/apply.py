"""Apply a Plan: the entry point the application layer, tests and benchmarks use.

The engine itself is the `engine` package: protocol.py (the one way to call the mapping API, and
its retry classification), ordering.py (which change waits for which), watcher.py (watching
mappings settle, in bulk) and engine.py (the loop that sends calls at the limiter's rate). What
became of each change is in outcomes.py; the threads of several regions and Ctrl-C in pool.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .engine.engine import PROPAGATION_TIMEOUT as PROPAGATION_TIMEOUT
from .engine.engine import Engine
from .engine.protocol import Failure, classify, mappings_api
from .outcomes import ApplyResult as ApplyResult
from .outcomes import report_lines as report_lines  # re-exported: the CLI and tests import it here
from .plan import Plan
from .pool import apply_all as apply_all  # re-exported: the app layer imports it here
from .pool import interruptible
from .pool import run_all as run_all


def is_propagation_error(exc: Exception) -> bool:
    """AWS refusing a role it will accept once IAM has propagated (reference A.5)."""
    return classify(exc) is Failure.ROLE_NOT_READY


class Applier:
    """Applies plans through one region's Lambda client (or a fake of the mapping API).

    `parallelism`: calls in flight at once (the region's rate limiter paces them; waiting
    mappings hold no thread). `poll_start`/`poll_max`: the backoff of looks at a waiting
    mapping and of calls sent again. `timeouts`: seconds a create, update or delete may take
    to settle. `stop`: set it (the first Ctrl-C does) to send nothing more."""

    def __init__(
        self,
        lambda_client: Any,
        *,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] = lambda _msg: None,
        waiting: Callable[[str], None] | None = None,
        poll_start: float = 1.0,
        poll_max: float = 10.0,
        timeouts: dict[str, float] | None = None,
        parallelism: int = 1,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop if stop is not None else threading.Event()
        # By default a pause ends early when a stop is requested, so Ctrl-C is prompt.
        self.sleep = sleep if sleep is not None else self.stop.wait
        self.api = mappings_api(lambda_client, sleep=self.sleep)
        self.clock, self.progress, self.waiting = clock, progress, waiting
        self.poll_start, self.poll_max = poll_start, poll_max
        self.timeouts = timeouts
        self.parallelism = max(1, parallelism)
        self.engine: Engine | None = None  # the last apply's, for its counters

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        if value:
            self.stop.set()
        else:
            self.stop.clear()

    def apply(self, plan: Plan) -> ApplyResult:
        self.engine = Engine(
            self.api,
            clock=self.clock,
            sleep=self.sleep,
            stop=self.stop,
            progress=self.progress,
            waiting=self.waiting,
            poll_start=self.poll_start,
            poll_max=self.poll_max,
            timeouts=self.timeouts,
            parallelism=self.parallelism,
        )
        with interruptible(self.stop, self.progress):
            return self.engine.run(plan)
