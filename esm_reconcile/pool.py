"""Threads and signals for apply: run calls on a bounded pool of threads, apply the plans of
several scopes at once, and stop cleanly on Ctrl-C (first: finish what is in flight, start
nothing new; second: leave at once)."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .outcomes import ApplyResult
from .plan import Plan

if TYPE_CHECKING:
    from .apply import Applier

T = TypeVar("T")


def run_all(workers: int, prefix: str, calls: list[Callable[[], T]]) -> list[T]:
    """Run calls on a pool of threads (the scopes of one apply); results in order. Waits in a loop with a short timeout
    so the main thread stays free to take a Ctrl-C. A second Ctrl-C (KeyboardInterrupt from
    the signal handler) leaves at once: no new call starts, and calls in flight are abandoned
    rather than waited for (the CLI then exits without joining them)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix)
    futures = [pool.submit(call) for call in calls]
    try:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [f.result() for f in futures]


def apply_all(runs: list[tuple[Applier, Plan]], stop: threading.Event) -> ApplyResult:
    """Apply the plans of several regions or accounts at once, one thread each (each Applier
    has its own clients and rate limit); one Ctrl-C stops them all through `stop`."""
    if len(runs) == 1:
        applier, plan = runs[0]
        return applier.apply(plan)
    with interruptible(stop, runs[0][0].progress):
        calls = [functools.partial(applier.apply, plan) for applier, plan in runs]
        results = run_all(len(runs), "esm-scope", calls)
    return ApplyResult(
        [o for r in results for o in r.outcomes], any(r.interrupted for r in results)
    )


@contextmanager
def interruptible(stop: threading.Event, progress: Callable[[str], None]) -> Iterator[None]:
    """First Ctrl-C/SIGTERM: set `stop` (calls in flight finish, none start). Second: abort.

    Signal handlers belong to the main thread; elsewhere this does nothing and whoever runs
    the main thread owns `stop`.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt()
        stop.set()
        progress("interrupt received: finishing the calls in flight, starting no new ones")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
