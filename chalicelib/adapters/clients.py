"""boto3 clients, made in one place: explicit timeouts, botocore's standard retries.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), so the same code runs against a
local moto server. Clients are made lazily, once per process, and shared: creating one costs
150-450 ms, and a client made before moto starts would not be mocked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.detection import PROBER_INVOKE_MARGIN
from chalicelib.errors import AwsError, StaleView

CONFIG = botocore.config.Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 5},
)

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    with _lock:
        made = _clients.get(service)
        if made is None:
            made = boto3.session.Session().client(service, config=CONFIG)  # type: ignore[call-overload]
            _clients[service] = made
        return made


# For a read that must answer quickly or not at all: the second opinion's status read happens in a
# round where the controller's own network may be failing, and must not eat the round.
QUICK_CONFIG = botocore.config.Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 2},
)


def quick_client(service: str) -> Any:
    with _lock:
        key = f"{service} quick"
        made = _clients.get(key)
        if made is None:
            made = boto3.session.Session().client(service, config=QUICK_CONFIG)  # type: ignore[call-overload]
            _clients[key] = made
        return made


def invoke_client(probe_timeout: float) -> Any:
    """The Lambda client that invokes the prober function once per round.

    Its read timeout is the probe timeout plus a second (the prober function's probes take at most
    the timeout; the second is for the invoke itself, a term of the detection bound: see
    chalicelib/core/detection.py), and it makes exactly one attempt:
    `total_max_attempts` counts the first attempt too (`max_attempts` would count retries only).
    A retried invoke would probe again and could run the round past its slot; a failed one is a
    fault on the prober's side for that round, and the next round tries afresh.
    """
    config = botocore.config.Config(
        connect_timeout=2,
        read_timeout=probe_timeout + PROBER_INVOKE_MARGIN,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    with _lock:
        key = f"lambda invoke {probe_timeout:g}"
        made = _clients.get(key)
        if made is None:
            made = boto3.session.Session().client("lambda", config=config)
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
