"""The one way esm calls the Lambda mapping API: a small protocol over the boto3 client, and one
classification of failures that every caller retries by.

botocore's own retries are off for Lambda (aws.connect), so what is retried, and how long it
waits, is decided here and nowhere else:

- throttled (429, TooManyRequestsException...): after the `Retry-After` the answer names, else
  a jittered exponential backoff (the region's limiter, which sees every answer through
  botocore's needs-retry event, halves its rate meanwhile: RateLimiter.observe);
- unavailable (5xx, connection errors, timeouts): jittered exponential backoff;
- both within `attempts` tries, inside the call (they pass in seconds);
- in use (ResourceInUseException: the mapping is mid-transition) and a role not yet usable
  (IAM propagation, reference A.5): these pass in seconds to minutes, so they are raised, and
  whoever runs the calls decides when to try again (the apply engine reschedules the call
  without holding a thread);
- anything else is AWS saying no: raised at once.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..aws import THROTTLING_CODES, error_code
from ..errors import EsmError

T = TypeVar("T")

PAGE_SIZE = 100  # ListEventSourceMappings never answers more than 100 a page
# 1,000,000 mappings at 100 a page: past any real region. An endpoint that hands out a new
# marker on every page would otherwise be listed forever.
MAX_PAGES = 10_000
ATTEMPTS = 9  # a first try and 8 retries of a throttled or unavailable call
BACKOFF_BASE = 0.5  # seconds; doubles per retry, full jitter
BACKOFF_MAX = 20.0
RETRY_AFTER_MAX = 60.0  # a Retry-After beyond this is not believed

IAM_PROPAGATION_MESSAGES = (
    "cannot be assumed by lambda",
    "execution role does not have permissions",
    "ensure the role can perform",
)
UNAVAILABLE_CODES = frozenset(
    {"ServiceException", "ServiceUnavailableException", "InternalFailure", "RequestTimeout"}
)


class Failure(enum.Enum):
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    IN_USE = "in use"
    ROLE_NOT_READY = "role not ready"
    NOT_FOUND = "not found"
    CONFLICT = "conflict"
    REFUSED = "refused"


def classify(exc: BaseException) -> Failure:
    """What a failed Lambda call means for whoever would try it again."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in THROTTLING_CODES or status == 429:
            return Failure.THROTTLED
        if code in UNAVAILABLE_CODES or status >= 500:
            return Failure.UNAVAILABLE
        if code == "ResourceInUseException":
            return Failure.IN_USE
        if code == "ResourceNotFoundException":
            return Failure.NOT_FOUND
        if code == "ResourceConflictException":
            return Failure.CONFLICT
        if code == "InvalidParameterValueException":
            message = exc.response.get("Error", {}).get("Message", "").lower()
            if any(text in message for text in IAM_PROPAGATION_MESSAGES):
                return Failure.ROLE_NOT_READY
        return Failure.REFUSED
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return Failure.UNAVAILABLE
    return Failure.REFUSED


def is_transient(exc: BaseException) -> bool:
    """ "Not now" rather than "no": asking again later may well succeed."""
    return classify(exc) in (Failure.THROTTLED, Failure.UNAVAILABLE)


def retry_after(exc: BaseException) -> float | None:
    """The seconds a throttled answer asks to wait (Retry-After header, or Lambda's
    retryAfterSeconds), when it names a believable number."""
    if not isinstance(exc, ClientError):
        return None
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
    named = headers.get("retry-after") or exc.response.get("retryAfterSeconds")
    try:
        seconds = float(named) if named is not None else None
    except (TypeError, ValueError):
        return None
    if seconds is None or not 0 <= seconds <= RETRY_AFTER_MAX:
        return None
    return seconds


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1, 2, ...)."""
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1)))


class MappingApi(Protocol):
    """What esm asks of Lambda about mappings. Each call returns AWS's answer or raises what
    botocore raises; throttled and unavailable answers have been retried already."""

    def create(self, request: dict[str, Any]) -> dict[str, Any]: ...
    def update(self, request: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, uuid: str) -> dict[str, Any]: ...
    def get(self, uuid: str) -> dict[str, Any]: ...
    def list_page(self, marker: str | None, **filters: str) -> dict[str, Any]: ...
    def list_tags(self, arn: str) -> dict[str, str]: ...
    def tag(self, arn: str, tags: dict[str, str]) -> None: ...
    def untag(self, arn: str, keys: list[str]) -> None: ...
    def pages(self, **filters: str) -> Iterator[dict[str, Any]]: ...
    def call(self, operation: str, **params: Any) -> dict[str, Any]: ...


class LambdaMappings:
    """MappingApi over a boto3 Lambda client (or anything with its methods)."""

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.client = client
        self.sleep, self.attempts = sleep, attempts
        self.calls: Counter[str] = Counter()  # by operation, attempts included
        self._lock = threading.Lock()

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One client method, by its boto3 name, with the retries above."""
        method = getattr(self.client, operation)
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.calls[operation] += 1
            try:
                return method(**params)
            except (ClientError, BotoCoreError) as exc:
                failure = classify(exc)
                if failure not in (Failure.THROTTLED, Failure.UNAVAILABLE):
                    raise
                if attempt >= self.attempts:
                    raise
                wait = retry_after(exc) if failure is Failure.THROTTLED else None
                self.sleep(wait if wait is not None else backoff(attempt))

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("create_event_source_mapping", **request)

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("update_event_source_mapping", **request)

    def delete(self, uuid: str) -> dict[str, Any]:
        return self.call("delete_event_source_mapping", UUID=uuid)

    def get(self, uuid: str) -> dict[str, Any]:
        return self.call("get_event_source_mapping", UUID=uuid)

    def list_page(self, marker: str | None, **filters: str) -> dict[str, Any]:
        return self.call(
            "list_event_source_mappings", MaxItems=PAGE_SIZE, **filters, **_marker(marker)
        )

    def pages(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Every page of one ListEventSourceMappings (unfiltered unless `filters` say)."""
        yield from self.paged("list_event_source_mappings", PAGE_SIZE, **filters)

    def paged(self, operation: str, page_size: int, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a Marker/NextMarker listing (ListEventSourceMappings, ListFunctions),
        `page_size` a page, at most MAX_PAGES, and never the same marker twice: an endpoint
        that hands out markers forever is refused, not listed forever."""
        name = "".join(part.title() for part in operation.split("_"))
        marker: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.call(operation, MaxItems=page_size, **params, **_marker(marker))
            yield page
            marker = page.get("NextMarker")
            if not marker:
                return
            if marker in seen:
                raise EsmError(f"{self._endpoint()} repeats a {name} marker")
            seen.add(marker)
        raise EsmError(
            f"{self._endpoint()} is still paging {name} after {MAX_PAGES} pages; refusing to go on"
        )

    def list_tags(self, arn: str) -> dict[str, str]:
        return self.call("list_tags", Resource=arn).get("Tags", {})

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        self.call("tag_resource", Resource=arn, Tags=tags)

    def untag(self, arn: str, keys: list[str]) -> None:
        self.call("untag_resource", Resource=arn, TagKeys=keys)

    def _endpoint(self) -> str:
        meta = getattr(self.client, "meta", None)
        return f"the Lambda endpoint {getattr(meta, 'endpoint_url', '?')}"


def _marker(marker: str | None) -> dict[str, str]:
    return {"Marker": marker} if marker else {}


def mappings_api(client: Any, **kwargs: Any) -> MappingApi:
    """The MappingApi of a client: the client itself when it already is one (a test's fake)."""
    if isinstance(client, LambdaMappings) or hasattr(client, "list_page"):
        return client  # type: ignore[no-any-return]
    return LambdaMappings(client, **kwargs)
