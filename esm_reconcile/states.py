"""Mapping states for apply's waits, read in bulk when many mappings wait at once.

A mapping settles in seconds to minutes, and every poll is a request against the account's
~15/s Lambda quota. One waiting mapping costs a Get per poll; N waiting mappings would cost N.
A List page answers for 100 mappings, so once enough mappings wait, one sweep of the region's
List pages (shared by all waiters) answers "still in transition" for all of them. A sweep only
ever defers: what it says is settled, gone or missing is confirmed by a Get, so a List that lags
behind (eventual consistency) can delay a wait but never end one early.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from . import rules
from .aws import THROTTLING_CODES, error_code
from .live import mapping_pages

SWEEP_MIN_WAITERS = 4  # below this, Gets are as cheap and fresher
# A sweep of P pages is reused by everyone for P * this many seconds, so sweeping stays under
# about 1/this requests per second however many pages the region holds.
SECONDS_PER_SWEPT_PAGE = 0.5

# Even while sweeps say "in transition", every this-many-th look at a mapping is a Get: a List
# that lags far behind (LocalStack's can keep a deleted mapping Deleting for good) costs a few
# polls, never a timeout.
VERIFY_EVERY = 4

# Answers that say "not now" rather than "no": a poll that meets one simply polls again.
TRANSIENT_CODES = THROTTLING_CODES | {
    "ServiceException",
    "ServiceUnavailableException",
    "InternalFailure",
    "RequestTimeout",
}


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


class StateReader:
    """Reads one mapping for a waiter: by Get, or from a recent shared List sweep."""

    def __init__(self, lambda_client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.clock = lambda_client, clock
        self.lock = threading.Lock()
        self.sweep_lock = threading.Lock()
        self.waiters = 0
        self.pages = 1  # pages the last sweep took: the price of the next one
        self.snapshot: dict[str, dict[str, Any]] = {}
        self.snapshot_at = -math.inf
        self.deferred: dict[str, int] = {}  # sweep answers per mapping since its last Get
        self.gets = 0
        self.sweeps = 0

    @contextmanager
    def waiting(self) -> Iterator[None]:
        with self.lock:
            self.waiters += 1
        try:
            yield
        finally:
            with self.lock:
                self.waiters -= 1

    def read(self, uuid: str, since: float) -> dict[str, Any] | None:
        """The mapping as AWS describes it; None when AWS said "not now" (throttled, 5xx:
        poll again later). A mapping that does not exist raises ResourceNotFoundException, as
        Get does. A transition state may come from a sweep made after `since` (the waiter's
        previous look), or from one made in the last moment (see SECONDS_PER_SWEPT_PAGE)."""
        try:
            sweeping = self.waiters >= SWEEP_MIN_WAITERS and self.waiters > 2 * self.pages
            if sweeping and self.deferred.get(uuid, 0) < VERIFY_EVERY - 1:
                found = self._from_sweep(uuid, since)
                if found is not None and found.get("State") in rules.TRANSITION_STATES:
                    with self.lock:
                        self.deferred[uuid] = self.deferred.get(uuid, 0) + 1
                    return found
            with self.lock:
                self.deferred.pop(uuid, None)
                self.gets += 1
            return self.client.get_event_source_mapping(UUID=uuid)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                return None
            raise

    def _from_sweep(self, uuid: str, since: float) -> dict[str, Any] | None:
        with self.sweep_lock:  # one thread sweeps; the others wait and reuse its result
            recent = self.clock() - self.snapshot_at < self.pages * SECONDS_PER_SWEPT_PAGE
            if self.snapshot_at <= since and not recent:
                started = self.clock()
                snapshot: dict[str, dict[str, Any]] = {}
                pages = 0
                for page in mapping_pages(self.client):
                    pages += 1
                    for item in page.get("EventSourceMappings", []):
                        snapshot[item["UUID"]] = item
                self.snapshot, self.snapshot_at, self.pages = snapshot, started, max(1, pages)
                self.sweeps += 1
            return self.snapshot.get(uuid)
