"""boto3 clients, made in one place: explicit timeouts, botocore's standard retries.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), so the same code runs against a
local moto server. Clients are made lazily, once per process, and shared: creating one costs
150-450 ms, and a client made before moto starts would not be mocked.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError, InvalidRegionError, ProfileNotFound
from botocore.utils import validate_region_name

from chalicelib.config import ConfigError
from chalicelib.errors import AwsError, StaleView

CONFIG = botocore.config.Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 5},
)

_lock = threading.Lock()
_clients: dict[str, Any] = {}


_REGION_FORM = (
    "a region such as eu-west-1 in AWS_DEFAULT_REGION or AWS_REGION, or in the profile of the AWS "
    "config file"
)


def aws_region() -> str:
    """The region every client uses; a ConfigError, never botocore's traceback, when there is none.

    boto3 reads AWS_DEFAULT_REGION and the config file; AWS_REGION (which Lambda sets too, and
    which other SDKs read) is taken when those name none. Read on every run, before any client is
    made or any call is sent, so a missing region stops the run as bad configuration does.
    """
    try:
        region = boto3.session.Session().region_name
    except ProfileNotFound as exc:
        raise ConfigError(
            "AWS_PROFILE", f"{exc}; expected a profile of the AWS config file"
        ) from exc
    source = "AWS_DEFAULT_REGION"
    if not region:
        region, source = os.environ.get("AWS_REGION", "").strip(), "AWS_REGION"
    if not region:
        raise ConfigError(
            "AWS_DEFAULT_REGION", f"no AWS region is configured; expected {_REGION_FORM}"
        )
    try:
        validate_region_name(region)
    except InvalidRegionError as exc:
        shown = repr(region if len(region) <= 60 else region[:57] + "...")
        raise ConfigError(source, f"expected {_REGION_FORM}, got {shown}") from exc
    return region


def client(service: str, region: str | None = None) -> Any:
    region = region or aws_region()
    with _lock:
        key = f"{service} {region}"
        made = _clients.get(key)
        if made is None:
            made = boto3.session.Session().client(service, region_name=region, config=CONFIG)  # type: ignore[call-overload]
            _clients[key] = made
        return made


# For a read that must answer quickly or not at all: the second opinion's status read happens in a
# round where the controller's own network may be failing, and must not eat the round.
QUICK_CONFIG = botocore.config.Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 2},
)


def quick_client(service: str, region: str | None = None) -> Any:
    region = region or aws_region()
    with _lock:
        key = f"{service} {region} quick"
        made = _clients.get(key)
        if made is None:
            made = boto3.session.Session().client(  # type: ignore[call-overload]
                service, region_name=region, config=QUICK_CONFIG
            )
            _clients[key] = made
        return made


def forget_clients() -> None:
    """Tests start a fresh moto server per module; clients bound to an old one must go."""
    with _lock:
        _clients.clear()


T = TypeVar("T")

# Route 53 names a rejected batch InvalidChangeBatch: for a compare-and-swap, a stale view.
STALE_CODES = frozenset({"InvalidChangeBatch"})


@contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", exc))
        kind = StaleView if code in STALE_CODES else AwsError
        raise kind(service, operation, code, message) from exc
    except BotoCoreError as exc:
        raise AwsError(service, operation, type(exc).__name__, str(exc)) from exc


def call(service: str, operation: str, function: Callable[..., T], **kwargs: Any) -> T:
    with translated(service, operation):
        return function(**kwargs)
