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
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError, InvalidRegionError, ProfileNotFound
from botocore.utils import validate_region_name

from chalicelib.config.reading import ConfigError
from chalicelib.core.names import show
from chalicelib.core.timing import REPORT_SECONDS, prober_invoke_limit
from chalicelib.errors import AwsError, ChangeRejected

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
        raise ConfigError(source, f"expected {_REGION_FORM}, got {show(region, 57)}") from exc
    return region


def require_credentials() -> None:
    """A ConfigError when boto3 finds no credentials, before any call would fail for want of them.

    Lambda's role puts them in the environment; an operator's shell has them from variables, a
    profile, or an instance or task role.
    """
    try:
        credentials = boto3.session.Session().get_credentials()
    except BotoCoreError as exc:  # a key id without its secret, a broken credential process
        raise ConfigError("AWS_ACCESS_KEY_ID", str(exc)) from exc
    if credentials is None:
        raise ConfigError(
            "AWS_ACCESS_KEY_ID",
            "no AWS credentials found; expected AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "an AWS_PROFILE with credentials, or a role (Lambda, ECS, EC2)",
        )


# --- the invocation's time left -------------------------------------------------------------------
#
# Clients are shared by every run of a process, but each run has its own end (a Lambda's time left,
# the command line's minute). The run in progress sets it here; every call of every client reads it
# just before each attempt goes out.
_time_left: ContextVar[Callable[[], float] | None] = ContextVar("lbf_time_left", default=None)
# The longest botocore's standard mode sleeps before a retry (its ExponentialBackoff's cap).
_MAX_BACKOFF_SECONDS = 20.0
# Error codes botocore's standard mode retries besides 5xx answers and connection errors.
_RETRIED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "IDPCommunicationError",
    }
)


class OutOfTime(BotoCoreError):
    """The invocation's time is (nearly) spent: the call is not sent, or not retried."""

    fmt = "{detail}"


@contextmanager
def time_limit(time_left: Callable[[], float]) -> Iterator[None]:
    """AWS calls made inside take their timeouts from `time_left()` (seconds) and stop in time.

    A call is not sent when less than the report's share and one connect timeout remain; its read
    timeout is cut to what is left after that; a retry that botocore's backoff could push past the
    end is not made. Each ends as an AwsError (code OutOfTime) that the run reports, instead of the
    Lambda being stopped in the middle of it.
    """
    token = _time_left.set(time_left)
    try:
        yield
    finally:
        _time_left.reset(token)


@dataclass(frozen=True)
class _Limits:
    """One client's timeouts, cut to the invocation's time left for each attempt."""

    connect_timeout: float
    read_timeout: float

    def usable_seconds(self) -> float | None:
        """Seconds a call may still spend reading, or None without a limit.

        Only the read timeout can be set per request, so a whole connect timeout is kept aside.
        """
        time_left = _time_left.get()
        if time_left is None:
            return None
        return time_left() - REPORT_SECONDS - self.connect_timeout

    def before_send(self, request: Any, event_name: str = "", **kwargs: Any) -> None:
        usable = self.usable_seconds()
        if usable is None:
            return
        if usable <= 0:
            raise OutOfTime(
                detail=f"{_operation(event_name)} not sent: the invocation's time is spent"
            )
        # botocore (1.36+) takes a per-request read timeout from the request's context.
        request.context["read_timeout"] = min(self.read_timeout, usable)

    def needs_retry(self, **kwargs: Any) -> None:
        _limit_retry(self.usable_seconds(), **kwargs)


def _operation(event_name: str) -> str:
    return event_name.rpartition(".")[2] or "call"


def _limit_retry(
    usable: float | None,
    *,
    attempts: int,
    response: Any = None,
    caught_exception: BaseException | None = None,
    event_name: str = "",
    **kwargs: Any,
) -> None:
    if usable is None or isinstance(caught_exception, OutOfTime):
        return
    if caught_exception is not None:
        reason = type(caught_exception).__name__
    elif response is not None:
        status = response[0].status_code
        code = str(response[1].get("Error", {}).get("Code", ""))
        if status < 500 and code not in _RETRIED_CODES:
            return  # not a retry: a success, or an error botocore hands straight back
        reason = code or f"HTTP {status}"
    else:
        return
    backoff = min(2.0 ** (attempts - 1), _MAX_BACKOFF_SECONDS)
    if usable <= backoff:
        raise OutOfTime(
            detail=f"{_operation(event_name)} not retried after {reason} (attempt {attempts}): "
            "the invocation's time is nearly spent"
        )


def _made(service: str, region: str, config: botocore.config.Config) -> Any:
    made = boto3.session.Session().client(service, region_name=region, config=config)  # type: ignore[call-overload]
    limits = _Limits(
        connect_timeout=float(made.meta.config.connect_timeout),
        read_timeout=float(made.meta.config.read_timeout),
    )
    made.meta.events.register("before-send", limits.before_send)
    made.meta.events.register("needs-retry", limits.needs_retry)
    return made


def _shared(key: str, service: str, region: str, config: botocore.config.Config) -> Any:
    """One client per key for the whole process: creating one costs 150-450 ms."""
    with _lock:
        made = _clients.get(key)
        if made is None:
            made = _made(service, region, config)
            _clients[key] = made
        return made


def client(service: str, region: str | None = None) -> Any:
    region = region or aws_region()
    return _shared(f"{service} {region}", service, region, CONFIG)


# For a read that must answer quickly or not at all: the second opinion's status read happens in a
# round where the controller's own network may be failing, and must not eat the round.
QUICK_CONFIG = botocore.config.Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 2},
)


def quick_client(service: str, region: str | None = None) -> Any:
    region = region or aws_region()
    return _shared(f"{service} {region} quick", service, region, QUICK_CONFIG)


# The invoke's connect (TCP and TLS, to Lambda's regional endpoint) within this; usually no
# connect at all, as the client keeps its connection. Small, because it comes out of the second
# the bound allows the invoke beyond its probes.
INVOKE_CONNECT_SECONDS = 0.5


def invoke_client(probe_timeout: float, region: str | None = None) -> Any:
    """The Lambda client that invokes the prober function once per round.

    The whole invoke must end within `prober_invoke_limit(probe_timeout)` (the probe timeout plus
    a second: chalicelib/core/timing.py), so its connect timeout and its read timeout together
    are exactly that: a connect that hangs, or an answer that never starts, ends the invoke inside
    the limit. (A read timeout bounds each wait for bytes, not the whole answer: ProbeFunction
    voids an answer that ends later.) Both are cut like every client's to the invocation's time
    left, and it makes exactly one attempt: `total_max_attempts` counts the first attempt too
    (`max_attempts` would count retries only). A retried invoke would probe again and could run
    the round past its slot; a failed one is a fault on the prober's side for that round, and the
    next round tries afresh.
    """
    region = region or aws_region()
    config = botocore.config.Config(
        connect_timeout=INVOKE_CONNECT_SECONDS,
        read_timeout=prober_invoke_limit(probe_timeout) - INVOKE_CONNECT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return _shared(f"lambda {region} invoke {probe_timeout:g}", "lambda", region, config)


def forget_clients() -> None:
    """Tests start a fresh moto server per module; clients bound to an old one must go."""
    with _lock:
        _clients.clear()


T = TypeVar("T")

# A change batch Route 53 refuses: AWS says InvalidChangeBatch, moto says InvalidInput for some of
# the same refusals (a DELETE that matches nothing). Rejected, and nothing more, until the job's
# re-read judges it stale, permanent, or this run's own change whose answer was lost; the code and
# the wording of the message never decide it.
REJECTED_CHANGES = {
    ("route53", "ChangeResourceRecordSets"): frozenset({"InvalidChangeBatch", "InvalidInput"})
}


@contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", exc))
        rejected = code in REJECTED_CHANGES.get((service, operation), frozenset())
        kind = ChangeRejected if rejected else AwsError
        raise kind(service, operation, code, message) from exc
    except BotoCoreError as exc:
        raise AwsError(service, operation, type(exc).__name__, str(exc)) from exc


def call(service: str, operation: str, function: Callable[..., T], **kwargs: Any) -> T:
    with translated(service, operation):
        return function(**kwargs)
