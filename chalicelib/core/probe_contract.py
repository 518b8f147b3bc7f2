"""The contract between the controller and the prober function (`probe_private` in app.py).

The controller sends one round's private targets; the prober function probes them from inside
the VPC and answers with one result per target. Both sides use this module, so a change to the
shape is one change here, and the version field makes a controller and a prober function from
different deploys refuse each other loudly (a fault on the prober's side) instead of misreading.

Request:  {"version": 1, "timeout": 2.0, "targets": [{"key": "i-...", "url": "http://..."}]}
          (a target's endpoint travels as a URL, `Endpoint.url`, parsed back with `parse_url`)
Response: {"version": 1, "results": [{"key": "i-...", "ok": true, "detail": "200", "seconds": 0.01}]}
          or {"version": 1, "error": "why the request was refused"}

Pure: JSON in and out, no AWS, no network. Every field is checked on both sides: the prober
function trusts nothing it is sent, and the controller trusts nothing it gets back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.endpoints import BadUrl, parse_url
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.names import is_instance_id, show

VERSION = 1

# A round's private targets are the cluster's web pool plus its LBs. The prober's own pool caps
# probes in flight well below Lambda's 1,024 descriptors; this caps one request's size (a
# synchronous invoke carries at most 6 MB each way) and how long a round can take.
MAX_TARGETS = 5000
# A check template is at most 2,048 characters; an IPv6 address and a port fit in the rest.
MAX_URL_CHARS = 2200
MAX_DETAIL_CHARS = 200
MAX_TIMEOUT_SECONDS = 60.0
_PRINTABLE = re.compile(r"[ -~]*")


class ContractError(ValueError):
    """A request or response that does not follow the contract; the message says which part."""


@dataclass(frozen=True)
class ProbeRequest:
    timeout: float
    targets: tuple[ProbeTarget, ...]  # to probe, each URL parsed into its endpoint
    unprobed: Mapping[str, ProbeResult] = field(default_factory=dict)  # answered: bad url


def target_of(key: str, url: str) -> ProbeTarget | ProbeResult:
    """A target as the prober function receives it, its URL parsed once. One that does not parse
    is answered "bad url" and never probed; the round's other targets still are."""
    try:
        return ProbeTarget(key, parse_url(url))
    except BadUrl as exc:
        return ProbeResult(ok=False, detail=f"bad url: {exc}", seconds=0.0)


def encode_request(targets: Sequence[ProbeTarget], *, timeout: float) -> bytes:
    request = {
        "version": VERSION,
        "timeout": timeout,
        "targets": [{"key": t.key, "url": t.endpoint.url} for t in targets],
    }
    decode_request(request)  # the controller never sends what the prober function would refuse
    return json.dumps(request, separators=(",", ":")).encode()


def decode_request(event: object) -> ProbeRequest:
    """The request as the prober function receives it (Lambda has parsed the JSON already)."""
    body = _object(event, "request", {"version", "timeout", "targets"})
    _version(body, "request")
    timeout = body["timeout"]
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        raise ContractError(f"request.timeout: a number of seconds in (0, {MAX_TIMEOUT_SECONDS:g}]")
    raw_targets = body["targets"]
    if not isinstance(raw_targets, list) or len(raw_targets) > MAX_TARGETS:
        raise ContractError(f"request.targets: a list of at most {MAX_TARGETS} targets")
    keys = []
    targets = []
    unprobed = {}
    for number, raw in enumerate(raw_targets):
        where = f"request.targets[{number}]"
        target = _object(raw, where, {"key", "url"})
        url = target["url"]
        if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_CHARS:
            raise ContractError(f"{where}.url: a string of 1-{MAX_URL_CHARS} characters")
        if not _PRINTABLE.fullmatch(url):
            raise ContractError(f"{where}.url: printable ASCII only")
        key = _key(target["key"], where)
        keys.append(key)
        found = target_of(key, url)
        if isinstance(found, ProbeResult):
            unprobed[key] = found
        else:
            targets.append(found)
    _unique(keys, "request.targets")
    return ProbeRequest(timeout=float(timeout), targets=tuple(targets), unprobed=unprobed)


def encode_response(results: Mapping[str, ProbeResult]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "results": [
            {
                "key": key,
                "ok": result.ok,
                "detail": _printable(result.detail)[:MAX_DETAIL_CHARS],
                "seconds": result.seconds,
            }
            for key, result in results.items()
        ],
    }


def error_response(reason: str) -> dict[str, Any]:
    return {"version": VERSION, "error": reason[:MAX_DETAIL_CHARS]}


def decode_response(payload: bytes, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
    """The prober function's answer, checked against what was asked: one result per target."""
    try:
        parsed = json.loads(payload)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise ContractError("response: not JSON") from exc
    if isinstance(parsed, dict) and set(parsed) == {"version", "error"}:
        _version(parsed, "response")
        error = parsed["error"]
        shown = show(error, MAX_DETAIL_CHARS) if isinstance(error, str) else "'(no reason)'"
        raise ContractError(f"the prober function refused the request: {shown}")
    body = _object(parsed, "response", {"version", "results"})
    _version(body, "response")
    raw_results = body["results"]
    if not isinstance(raw_results, list):
        raise ContractError("response.results: a list")
    results: dict[str, ProbeResult] = {}
    for number, raw in enumerate(raw_results):
        where = f"response.results[{number}]"
        item = _object(raw, where, {"key", "ok", "detail", "seconds"})
        key = _key(item["key"], where)
        if key in results:
            raise ContractError(f"response.results: {key} answered twice")
        ok, detail, seconds = item["ok"], item["detail"], item["seconds"]
        if not isinstance(ok, bool):
            raise ContractError(f"{where}.ok: true or false")
        if (
            not isinstance(detail, str)
            or len(detail) > MAX_DETAIL_CHARS
            or not _PRINTABLE.fullmatch(detail)
        ):
            raise ContractError(f"{where}.detail: printable text of at most {MAX_DETAIL_CHARS}")
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ContractError(f"{where}.seconds: a number of seconds, 0 or more")
        results[key] = ProbeResult(ok=ok, detail=detail, seconds=float(seconds))
    asked = {t.key for t in targets}
    missing, extra = sorted(asked - set(results)), sorted(set(results) - asked)
    if missing or extra:
        raise ContractError(
            f"response.results: {len(missing)} target(s) missing {missing[:3]}, "
            f"{len(extra)} not asked for {extra[:3]}"
        )
    return results


def _printable(text: str) -> str:
    """An OS error's text can be anything; the contract carries printable ASCII only."""
    return "".join(char if " " <= char <= "~" else "?" for char in text)


def _object(value: object, where: str, fields: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(f"{where}: an object with {sorted(fields)}")
    if set(value) != fields:
        raise ContractError(
            f"{where}: exactly the fields {sorted(fields)}, got {sorted(value)[:8]}"
        )
    return value


def _version(body: Mapping[str, Any], where: str) -> None:
    version = body["version"]
    if type(version) is not int or version != VERSION:
        raise ContractError(f"{where}.version: {VERSION} expected, got {show(str(version), 20)}")


def _key(value: object, where: str) -> str:
    if not isinstance(value, str) or not is_instance_id(value):
        raise ContractError(f"{where}.key: an EC2 instance id")
    return value


def _unique(keys: list[str], where: str) -> None:
    if len(set(keys)) != len(keys):
        raise ContractError(f"{where}: a target appears twice")
