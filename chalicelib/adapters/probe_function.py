"""The controller's side of the private probe path: one synchronous invoke per round.

The prober function (`probe_private` in app.py) runs in the VPC and probes the round's private
targets; this adapter sends them and reads its answer. Anything short of a well-formed answer for
exactly the targets asked (a failed, throttled, not-yet-ready or timed-out invoke, an error in
the function, a malformed or mismatched answer, or any answer that ends later than the invoke's
limit) raises ProberFault: the job then takes the private path's round as a fault on the prober's
side, and no verdict changes from it.

The limit (LBF_PROBE_TIMEOUT plus timing.PROBER_INVOKE_SECONDS) is the term the detection bound
and a round's budget count for the invoke. The client's timeouts fit inside it, but a read timeout
only bounds each wait for bytes; the limit is kept here, on the injected clock, around the whole
call, connect and answer included: a late answer is not used, whatever it says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.adapters.clients import translated
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.probe_contract import ContractError, decode_response, encode_request
from chalicelib.core.timing import PROBER_INVOKE_SECONDS, prober_invoke_limit
from chalicelib.errors import AwsError, ProberFault

# An error answer's message is shown in the notice; its stack trace is not.
_SHOWN_CHARS = 200


class ProbeFunction:
    """Probes a round's targets through the prober function; `client` is `invoke_client(...)`."""

    def __init__(
        self,
        client: Any,
        function: str,
        *,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._function = function
        self._timeout = timeout
        self._limit = prober_invoke_limit(timeout)
        self._monotonic = monotonic

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        if not targets:
            return {}  # a cluster with no private target never invokes the prober function
        payload = encode_request(targets, timeout=self._timeout)
        started = self._monotonic()
        try:
            with translated("lambda", "Invoke"):
                response = self._client.invoke(
                    FunctionName=self._function,
                    InvocationType="RequestResponse",
                    Payload=payload,
                )
                # The answer streams in after the headers: the read timeout applies here too.
                body = response["Payload"].read()
        except AwsError as exc:
            # TooManyRequestsException (throttled), ResourceNotReadyException (the function is
            # still Pending after a deploy), ReadTimeoutError, ... : one message names it.
            raise ProberFault(f"invoking the prober function failed: {exc}") from exc
        seconds = self._monotonic() - started  # the answer's body included
        if seconds > self._limit:
            raise ProberFault(
                f"the prober function answered after {seconds:.2f} s, later than "
                f"the {self._limit:g} s (LBF_PROBE_TIMEOUT + {PROBER_INVOKE_SECONDS:g} s) an "
                "invoke may take: its answer is void"
            )
        function_error = response.get("FunctionError")
        if function_error:
            raise ProberFault(
                f"the prober function failed ({function_error}): {_error_message(body)}"
            )
        try:
            return decode_response(body, targets)
        except ContractError as exc:
            raise ProberFault(f"the prober function's answer was refused: {exc}") from exc


def _error_message(body: bytes) -> str:
    """Lambda's error payload is {"errorMessage": ..., "errorType": ...}; anything else is shown."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return repr(body[:_SHOWN_CHARS])
    if isinstance(parsed, dict):
        text = f"{parsed.get('errorType', 'Error')}: {parsed.get('errorMessage', '')}"
        return text[:_SHOWN_CHARS]
    return repr(parsed)[:_SHOWN_CHARS]
