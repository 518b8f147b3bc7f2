"""The history's events (core.history): what a round did, from its outcomes; how a round's events
are stored within one standard parameter; how stored versions read back, newest first."""

from __future__ import annotations

import json

import pytest

from chalicelib.core.changes import ChangeRecords, PutBackendList, PutLbList, RemoveTags, SetTags
from chalicelib.core.failover import Failover
from chalicelib.core.history import (
    STORED_LIMIT,
    Event,
    EventCode,
    Unreadable,
    event,
    last_of,
    newest_first,
    parse,
    push_events,
    record,
    render,
    round_events,
)
from chalicelib.core.model import Push
from chalicelib.core.outcome import Outcome
from tests.kit.world import lb, web, world

T = 1_700_000_000.0
LB1 = lb("lb1", "10.0.0.11")
LB2 = lb("lb2", "10.0.0.12")
WEB = web("10.0.1.21")
WORLD = world([LB1, LB2], [WEB])
FAILOVER = Failover("lb1", "lb2", "moved off lb1 (unhealthy) to lb2", round=3, seconds=4.0)
MOVE = ChangeRecords((), "moved off lb1 (unhealthy) to lb2")


def codes(events: list[Event]) -> list[str]:
    return [e.code.value for e in events]


def test_a_round_s_events_come_from_what_it_wrote() -> None:
    outcomes = [
        Outcome(MOVE, ok=True),
        Outcome(
            SetTags(("i-lb1",), (("lbf:health", "unhealthy"), ("lbf:probe", "fail:3"))), ok=True
        ),
        Outcome(PutBackendList("/lbf/c/backends", "10.0.1.21:80"), ok=True),
        Outcome(SetTags(("i-lb2",), (("lbf:backends", "ab" * 32),)), ok=True),
        Outcome(PutLbList("/lbf/c/lbs", "10.0.0.12"), ok=True),  # not an event
        Outcome(SetTags(("i-lb2",), (("lbf:state", "active"),)), ok=False, error="Throttling"),
    ]

    events = round_events(WORLD, outcomes, [FAILOVER], now=T)

    assert [(e.code.value, e.text, e.reason) for e in events] == [
        ("failover", "active role lb1 -> lb2", "moved off lb1 (unhealthy) to lb2"),
        ("verdict", "lb1 (i-lb1) healthy -> unhealthy", "lbf:probe fail:3"),
        ("backends-published", "1 backend(s): 10.0.1.21:80", ""),
        ("push-confirmed", "lb2 (i-lb2) applied the backend list abababababab", ""),
        ("action-failed", "tag i-lb2: lbf:state=active", "Throttling"),
    ]
    assert all(e.at == T for e in events)


def test_a_verdict_s_reason_is_ec2_s_state_when_it_is_not_running() -> None:
    stopped = lb("lb1", "10.0.0.11", state="stopped")
    tags = SetTags(("i-lb1",), (("lbf:health", "unhealthy"), ("lbf:probe", "fail:3")))

    [verdict] = round_events(world([stopped]), [Outcome(tags, ok=True)], [], now=T)

    assert verdict.reason == "EC2 stopped"


def test_what_was_only_printed_or_not_attempted_did_not_happen() -> None:
    outcomes = [
        Outcome(MOVE, ok=True, printed=True),
        Outcome(SetTags(("i-lb1",), (("lbf:health", "unhealthy"),)), ok=True, printed=True),
        Outcome(SetTags(("i-lb2",), (("lbf:state", "active"),)), ok=False, skipped=True),
        Outcome(MOVE, ok=False, rejected=True, error="changed"),  # judged by a re-read
    ]

    assert round_events(WORLD, outcomes, [FAILOVER], now=T) == []


def test_drain_undrain_and_a_drop_taken() -> None:
    outcomes = [
        Outcome(SetTags(("i-web-10.0.1.21-80",), (("lbf:maintenance", "drain"),)), ok=True),
        Outcome(RemoveTags(("i-lb1",), ("lbf:maintenance",)), ok=True),
        Outcome(PutBackendList("/lbf/c/backends", "10.0.1.21:80"), ok=True),
    ]

    events = round_events(
        WORLD,
        outcomes,
        [],
        now=T,
        drop_taken=("10.0.1.22:80",),
        by="an operator",
    )

    assert [(e.code.value, e.text, e.reason) for e in events] == [
        ("drained", "10.0.1.21:80 (i-web-10.0.1.21-80): lbf:maintenance=drain", "an operator"),
        ("undrained", "lb1 (i-lb1): lbf:maintenance removed", "an operator"),
        ("backends-published", "1 backend(s): 10.0.1.21:80", ""),
        (
            "drop-taken",
            "1 failing backend(s) taken out: 10.0.1.22:80",
            "an operator",
        ),
    ]


def test_a_push_that_ended_without_success_once() -> None:
    sent = Push("cmd-1", "i-lb2", "ab", "InProgress", T)
    failed = Push("cmd-1", "i-lb2", "ab", "Failed", T)
    done = Push("cmd-2", "i-lb1", "ab", "Success", T)

    [only] = push_events(WORLD, [sent, done], [failed, done], now=T)

    assert (only.code, only.text) == (
        EventCode.PUSH_FAILED,
        "push cmd-1 to lb2 (i-lb2) ended Failed",
    )
    assert push_events(WORLD, [failed], [failed], now=T) == []  # already known


def test_a_steady_round_stores_nothing() -> None:
    assert record("/lbf/c/history", []) is None
    assert render([]) is None


def test_a_flood_of_events_is_kept_within_one_standard_parameter_with_a_summary() -> None:
    events = [
        event(T, EventCode.VERDICT, f"web{n} {'x' * 200} healthy -> unhealthy") for n in range(60)
    ]

    value = render(events)

    assert value is not None
    assert len(value) <= STORED_LIMIT
    stored = json.loads(value)
    summary = stored[-1]
    assert summary["code"] == "summary"
    kept = len(stored) - 1
    assert summary["text"] == f"{60 - kept} more events not kept: {60 - kept} verdict"
    assert [e["text"][:5] for e in stored[:3]] == ["web0 ", "web1 ", "web2 "]


def test_hostile_text_is_one_line_and_cut() -> None:
    made = event(T, EventCode.PAUSED, "a\nb" + "c" * 1000, "why\r\nnot" * 100)

    assert "\n" not in made.text
    assert len(made.text) == 300
    assert made.text.endswith("...")
    assert len(made.reason) == 200


@pytest.mark.parametrize(
    "value",
    ["not json", '{"code":"paused"}', '[{"code":"no-such-code","text":"x"}]', "[1]"],
)
def test_a_version_that_is_not_a_list_of_events_is_shown_not_parsed(value: str) -> None:
    parsed = parse(value, written_at=T)

    assert isinstance(parsed, Unreadable)
    assert parsed.at == T


def test_versions_read_newest_first() -> None:
    older = render([event(T, EventCode.PAUSED, "paused", "window")])
    newer = render(
        [event(T + 60, EventCode.VERDICT, "lb1 up"), event(T + 60, EventCode.FAILOVER, "moved")]
    )
    assert older is not None
    assert newer is not None
    # A time missing from an event (written by hand) is the version's LastModifiedDate.
    hand = '[{"code":"resumed","text":"by hand"}]'

    events = newest_first([(T, older), (T + 61, newer), (T + 120, hand)])

    assert [(e.at, getattr(e, "text", "")) for e in events] == [
        (T + 120, "by hand"),
        (T + 60, "moved"),
        (T + 60, "lb1 up"),
        (T, "paused"),
    ]
    failover = last_of(events, [EventCode.FAILOVER])
    assert failover is not None
    assert failover.text == "moved"
    assert last_of(events, [EventCode.DRAINED]) is None
