"""The contract between the controller and the prober function, on its own: what each side
accepts. Both sides through their real entry points are in tests/functional/test_probe_function.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.core.endpoints import parse_url
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.probe_contract import (
    MAX_TARGETS,
    VERSION,
    ContractError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_response,
)

WEB = ProbeTarget("i-0000000000000000a", parse_url("http://10.0.1.21:80/health"))
LB = ProbeTarget("i-0000000000000000b", parse_url("tcp://10.0.0.11:443"))


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": VERSION,
        "timeout": 2.0,
        "targets": [
            {"key": WEB.key, "url": WEB.endpoint.url},
            {"key": LB.key, "url": LB.endpoint.url},
        ],
    }
    body.update(changes)
    return body


def answer(results: list[dict[str, Any]], **changes: Any) -> bytes:
    return json.dumps({"version": VERSION, "results": results, **changes}).encode()


def result(key: str, **changes: Any) -> dict[str, Any]:
    return {"key": key, "ok": True, "detail": "200", "seconds": 0.01, **changes}


def test_a_request_survives_the_trip_to_the_prober_function() -> None:
    sent = json.loads(encode_request([WEB, LB], timeout=1.5))
    received = decode_request(sent)
    assert received.targets == (WEB, LB)
    assert received.timeout == 1.5


def test_a_target_whose_url_does_not_parse_is_answered_bad_url_and_the_others_probed() -> None:
    """As the prober used to answer it: one bad target does not refuse the round's others."""
    received = decode_request(
        request(
            targets=[
                {"key": WEB.key, "url": WEB.endpoint.url},
                {"key": LB.key, "url": "http://lb1.example.com/health"},
            ]
        )
    )
    assert received.targets == (WEB,)
    assert received.unprobed == {
        LB.key: ProbeResult(ok=False, detail="bad url: host must be an IP address", seconds=0.0)
    }


def test_an_answer_survives_the_trip_back() -> None:
    results = {
        WEB.key: ProbeResult(ok=True, detail="200", seconds=0.02),
        LB.key: ProbeResult(ok=False, detail="connection refused", seconds=0.0),
    }
    payload = json.dumps(encode_response(results)).encode()
    assert decode_response(payload, [WEB, LB]) == results


def test_an_os_error_text_that_is_not_ascii_still_makes_a_valid_answer() -> None:
    results = {WEB.key: ProbeResult(ok=False, detail="réseau\ninjoignable", seconds=0.0)}
    payload = json.dumps(encode_response(results)).encode()
    assert decode_response(payload, [WEB])[WEB.key].detail == "r?seau?injoignable"


@pytest.mark.parametrize(
    ("event", "part"),
    [
        (None, "request"),
        ([], "request"),
        ("probe", "request"),
        (request(version=2), "request.version"),
        (request(version="1"), "request.version"),
        (request(version=True), "request.version"),
        (request(version=1.0), "request.version"),
        ({**request(), "extra": 1}, "request: exactly"),
        ({"version": VERSION, "targets": []}, "request: exactly"),
        (request(timeout=0), "request.timeout"),
        (request(timeout=-1), "request.timeout"),
        (request(timeout=61), "request.timeout"),
        (request(timeout="2"), "request.timeout"),
        (request(timeout=True), "request.timeout"),
        (request(timeout=float("nan")), "request.timeout"),
        (request(targets={}), "request.targets"),
        (request(targets=[{"key": WEB.key, "url": WEB.endpoint.url}] * 2), "appears twice"),
        (request(targets=[{"key": WEB.key}]), "request.targets[0]"),
        (request(targets=[{"key": "web1", "url": WEB.endpoint.url}]), "request.targets[0].key"),
        (request(targets=[{"key": WEB.key, "url": ""}]), "request.targets[0].url"),
        (request(targets=[{"key": WEB.key, "url": 7}]), "request.targets[0].url"),
        (request(targets=[{"key": WEB.key, "url": "http://a/\r\nX: y"}]), "printable"),
        (request(targets=[{"key": WEB.key, "url": "http://" + "a" * 3000}]), "characters"),
        (
            request(
                targets=[
                    {"key": f"i-{n:017x}", "url": WEB.endpoint.url} for n in range(MAX_TARGETS + 1)
                ]
            ),
            "at most",
        ),
    ],
)
def test_the_prober_function_refuses_a_request_off_contract(event: object, part: str) -> None:
    with pytest.raises(ContractError, match=part.replace("[", r"\[").replace("]", r"\]")):
        decode_request(event)


def test_the_controller_never_sends_a_request_the_prober_function_would_refuse() -> None:
    with pytest.raises(ContractError):
        encode_request([WEB, WEB], timeout=2.0)


@pytest.mark.parametrize(
    ("payload", "part"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"null", "response"),
        (b'"ok"', "response"),
        (answer([result(WEB.key)], version=2), "response.version"),
        (answer([result(WEB.key)], extra=1), "exactly the fields"),
        (json.dumps({"version": VERSION}).encode(), "exactly the fields"),
        (answer([]), "1 target\\(s\\) missing"),
        (answer([result(WEB.key), result(LB.key)]), "1 not asked for"),
        (answer([result(WEB.key), result(WEB.key)]), "answered twice"),
        (answer([result(WEB.key, ok="true")]), r"\.ok"),
        (answer([result(WEB.key, detail=None)]), r"\.detail"),
        (answer([result(WEB.key, detail="x" * 201)]), r"\.detail"),
        (answer([result(WEB.key, seconds=-1)]), r"\.seconds"),
        (answer([result(WEB.key, seconds="1")]), r"\.seconds"),
        (answer([result("web1")]), r"\.key"),
        (answer([{"key": WEB.key, "ok": True}]), "exactly the fields"),
        (json.dumps(error_response("bad timeout")).encode(), "refused the request: 'bad timeout'"),
    ],
)
def test_the_controller_refuses_an_answer_off_contract(payload: bytes, part: str) -> None:
    with pytest.raises(ContractError, match=part):
        decode_response(payload, [WEB])
