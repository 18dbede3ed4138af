"""boto3 clients for one account and region, sharing one client-side rate limit.

Lambda allows about 15 control-plane requests per second per account and region across all its
APIs, so every HTTP attempt (retries included) first takes a token from one bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from .answers import guard_answers
from .errors import AwsError, EsmError

DEFAULT_MAX_RPS = 10.0
# botocore's retries after a first attempt (its `max_attempts` key counts retries), for STS;
# Lambda calls are retried by engine.protocol alone. Socket timeouts for every client of a run.
MAX_RETRIES = 8
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)


class RateLimiter:
    """Token bucket shared by all threads of a run, that backs off when AWS throttles.

    The quota is shared with every other caller in the account and region, so a configured rate
    that was safe can stop being so. A throttled answer halves the rate (at most once a second:
    one burst of 429s is one signal); it then climbs back to the configured rate over about
    RECOVERY_SECONDS (additive increase, multiplicative decrease).
    """

    RECOVERY_SECONDS = 20.0
    MIN_RATE = 0.5

    def __init__(
        self,
        rate: float = DEFAULT_MAX_RPS,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_rate = rate
        self.rate = rate
        self.lowest_rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self.last_cut = -float("inf")
        self.lock = threading.Lock()
        self.acquired = 0
        self.throttled = 0

    def acquire(self, **_: Any) -> None:
        """Take a token, sleeping until there is one (botocore's before-send event)."""
        while (wait := self.try_acquire()) > 0:
            self.sleep(wait)

    def try_acquire(self) -> float:
        """Take a token if there is one: 0. Else take none: the seconds until there is."""
        with self.lock:
            now = self.clock()
            elapsed = now - self.updated
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.rate = min(
                self.max_rate, self.rate + elapsed * self.max_rate / self.RECOVERY_SECONDS
            )
            self.updated = now
            if self.tokens >= 1 - 1e-9:  # float refill can land a hair below 1
                self.tokens = max(0.0, self.tokens - 1)
                self.acquired += 1
                return 0.0
            return (1 - self.tokens) / self.rate

    def observe(self, response: Any = None, **_: Any) -> None:
        """botocore's needs-retry event: note a throttled answer. Returns None, so boto3's own
        retry handler still decides whether to retry."""
        if not response:
            return
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code", "")
        if getattr(http, "status_code", 0) == 429 or code in THROTTLING_CODES:
            self.on_throttle()

    def on_throttle(self) -> None:
        with self.lock:
            self.throttled += 1
            now = self.clock()
            if now - self.last_cut >= 1.0:
                self.last_cut = now
                self.rate = max(min(self.MIN_RATE, self.max_rate / 2), self.rate / 2)
                self.lowest_rate = min(self.lowest_rate, self.rate)
                self.tokens = min(self.tokens, 0.0)  # no burst straight after a throttle


@dataclass
class AwsContext:
    """The clients of one run, plus the account facts looked up once."""

    lambda_client: Any
    sts_client: Any
    limiter: RateLimiter
    region: str
    _identity: dict[str, str] | None = field(default=None, repr=False)

    def identity(self) -> dict[str, str]:
        if self._identity is None:
            try:
                found = self.sts_client.get_caller_identity()
            except (ClientError, BotoCoreError) as exc:
                raise describe_error("the AWS account (sts:GetCallerIdentity)", exc) from None
            self._identity = {"account": found["Account"], "partition": found["Arn"].split(":")[1]}
        return self._identity


def default_region(profile: str | None = None) -> str | None:
    """The region boto3 would use for this profile (environment, then config); no API call."""
    try:
        return boto3.Session(profile_name=profile).region_name
    except BotoCoreError as exc:
        raise EsmError(f"AWS configuration: {exc}") from None


def new_session(profile: str | None = None) -> boto3.Session:
    """A boto3 Session for this profile (the default chain for None). Building one loads the
    service models afresh; one per profile per run serves all of its regions."""
    try:
        return boto3.Session(profile_name=profile)
    except BotoCoreError as exc:
        raise EsmError(f"AWS configuration: {exc}") from None


def connect(
    region: str | None = None,
    profile: str | None = None,
    max_rps: float = DEFAULT_MAX_RPS,
    session: boto3.Session | None = None,
) -> AwsContext:
    """Clients from boto3's ordinary chain (profile, region, AWS_ENDPOINT_URL...), made from
    `session` when given (it must be for `profile`; boto3 sessions are not thread-safe, so
    clients are made from one thread at a time)."""
    session = session or new_session(profile)
    region = region or session.region_name
    if not region:
        raise EsmError("no AWS region: set region in the spec, pass --region, or set AWS_REGION")
    timeouts = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
    sts_config = timeouts.merge(Config(retries={"mode": "standard", "max_attempts": MAX_RETRIES}))
    # One try per call: engine.protocol classifies and retries every Lambda failure.
    lambda_config = timeouts.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))
    limiter = RateLimiter(max_rps)
    try:
        lambda_client = session.client("lambda", region_name=region, config=lambda_config)
        sts_client = session.client("sts", region_name=region, config=sts_config)
    except (BotoCoreError, NoRegionError) as exc:
        raise EsmError(f"AWS configuration: {exc}") from None
    lambda_client.meta.events.register("before-send.lambda", limiter.acquire)
    lambda_client.meta.events.register("needs-retry.lambda", limiter.observe)
    guard_answers(lambda_client)
    guard_answers(sts_client)
    return AwsContext(lambda_client, sts_client, limiter, region)


# -- answers that are not from AWS ------------------------------------------------------------


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return type(exc).__name__


def describe_error(concerning: str, exc: Exception) -> AwsError:
    """An AWS failure in words, naming what it concerns."""
    if isinstance(exc, NoCredentialsError):
        return AwsError(
            concerning,
            "NoCredentials",
            "no AWS credentials found (set AWS_PROFILE or use --profile)",
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return AwsError(concerning, err.get("Code", "Error"), err.get("Message", str(exc)))
    return AwsError(concerning, type(exc).__name__, str(exc))
