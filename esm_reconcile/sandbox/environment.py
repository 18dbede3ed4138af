"""The process environment that points every boto3 client at a sandbox server, and back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3

# Removed inside the sandbox: each could make a client skip the endpoint or sign as someone else.
# FIPS/dual-stack flags make botocore refuse a custom endpoint outright.
_REMOVED_ENV = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)


@contextlib.contextmanager
def sandbox_environ(url: str, region: str, account: str) -> Iterator[None]:
    """Point boto3 at the sandbox at `url`; on exit put back every touched variable as it was.

    For a process that uses a sandbox another process runs (`sandbox()` sets this itself).
    """
    changes = _changes(url, region, account)
    saved = {key: os.environ.get(key) for key in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(saved)


def _changes(url: str, region: str, account: str) -> dict[str, str | None]:
    """The variables to set (None: to remove)."""
    changes: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # moto reads this on every request before anything else (access key, header), so
        # every client lands in this account whatever credentials it signs with.
        "MOTO_ACCOUNT_ID": account,
        # A user's config/credentials files could add credential_process, SSO, or
        # ignore_configured_endpoint_urls; the sandbox needs none of them.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    changes |= dict.fromkeys(_REMOVED_ENV)
    # Per-service endpoints (AWS_ENDPOINT_URL_SQS, ...) win over AWS_ENDPOINT_URL.
    changes |= dict.fromkeys(k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_"))
    # A proxy would otherwise see (and fail) requests to the sandbox's host.
    host = urlsplit(url).hostname or ""
    for key in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(key, "")
        changes[key] = f"{current},{host}" if current else host
    return changes


def _apply(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def fresh_default_session() -> Iterator[None]:
    """boto3's default session caches credentials; a fresh one inside reads the sandbox env."""
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved
