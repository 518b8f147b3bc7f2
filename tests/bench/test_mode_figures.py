"""The failover-by-mode benchmark's pure side: what each series is held against, how its figures
and labels read, which executor lines count as a move, and the timeline built from a recorded
kill. No stand runs here: these check that what `make bench` prints is what its method says."""

from __future__ import annotations

import pytest

from bench.mode_figures import (
    Applied,
    Kill,
    Model,
    Trace,
    marks_from,
    mode_figures,
    mode_named,
    parse_applied,
    references,
    representative,
    spread,
    with_defaults_note,
)
from bench.timeline import CHANGE, CLIENTS, PROBES, VERDICT

MODEL = Model(time_factor=0.1, propagation=2.0, ttl=5, route53_interval=30, fall=3)
ACTIVE = "lb.modes.example.com"


def kill(number: int, detection: float | None, answer: float | None, served: float | None) -> Kill:
    return Kill("dns", number, "lb1", 1.0, 12.0, detection, answer, served)


def test_each_series_is_held_against_the_bound_plus_what_stands_between_it_and_clients() -> None:
    detection, answer, client = references(mode_named("dns"), bound=11.5, model=MODEL)
    assert (detection.seconds, answer.seconds, client.seconds) == (11.5, 13.5, 18.5)
    assert "the bound `status` prints, 11.5 s" in detection.name
    # The Elastic IP has no DNS between the move and the client.
    eip = references(mode_named("eip"), bound=17.5, model=MODEL)
    assert [r.seconds for r in eip] == [17.5, 17.5, 17.5]


def test_with_the_controller_stopped_routes_53s_check_time_in_the_model_is_the_reference() -> None:
    detection, answer, client = references(mode_named("route53-stopped"), bound=11.5, model=MODEL)
    # LBF_ROUTE53_INTERVAL 30 x LBF_FALL 3 = 90 s, ten times as fast in the model.
    assert detection.seconds == pytest.approx(9.0)
    assert "90 s x 0.1" in detection.name
    # No record changes without the controller: the answer follows the checks, no propagation.
    assert (answer.seconds, client.seconds) == (pytest.approx(9.0), pytest.approx(14.0))


def test_a_spread_shows_median_p95_and_worst_each_with_its_ratio() -> None:
    reference = references(mode_named("dns"), bound=10.0, model=MODEL)[0]
    shown = spread([2.0, 4.0, 6.0, 8.0, 10.0], reference)
    assert shown == ("median 6.00 s (0.60 x), p95 9.60 s (0.96 x), worst 10.00 s (1.00 x)")


def test_detection_is_held_to_the_bound_and_a_worst_over_it_is_missed() -> None:
    kills = [kill(1, 7.0, 9.5, 12.0), kill(2, 12.0, 14.0, 19.0)]
    figures = mode_figures(mode_named("dns"), kills, planned=2, bound=11.5, model=MODEL)
    by_name = {f.name.split(": ", 1)[1]: f for f in figures}
    assert by_name["kills measured"].met is True
    detection = by_name["kill -> detection"]
    assert detection.met is False
    assert detection.target == "worst <= 11.5 s"
    assert "worst 12.00 s (1.04 x)" in detection.value
    assert by_name["kill -> answer changed (stand-in's model)"].met is None


def test_every_figure_measured_through_the_stand_in_is_labelled_its_model() -> None:
    kills = [kill(1, 7.0, 9.5, 12.0)]
    dns = mode_figures(mode_named("dns"), kills, planned=1, bound=11.5, model=MODEL)
    stopped = mode_figures(mode_named("route53-stopped"), kills, planned=1, bound=11.5, model=MODEL)
    eip = mode_figures(mode_named("eip"), kills, planned=1, bound=17.5, model=MODEL)
    label = "the Route 53 stand-in's model, not AWS's: health checks every 3 s"
    # The controller's own detection is not measured through the stand-in; what clients get is.
    assert [label in f.note for f in dns[1:]] == [False, True, True]
    assert all("(stand-in's model)" in f.name and label in f.note for f in stopped[1:])
    assert all("propagation 2 s" in f.note for f in stopped[1:])
    assert not any(label in f.note or "model" in f.name for f in eip)


def test_kills_that_never_served_or_were_not_attempted_miss_the_count() -> None:
    figures = mode_figures(
        mode_named("eip"), [kill(1, 7.0, 7.1, None)], planned=3, bound=17.5, model=MODEL
    )
    assert figures[0].value == "0 of 3 served again"
    assert figures[0].met is False
    assert "2 not attempted" in figures[0].note
    # No client series without a client time.
    assert [f.name for f in figures[1:]] == [
        "Elastic IP: kill -> detection",
        "Elastic IP: kill -> answer changed",
    ]


def test_the_defaults_note_says_what_the_ttl_and_routes_53s_real_times_add() -> None:
    note = with_defaults_note(MODEL)
    assert "keeps it up to 55 s longer" in note
    assert "Route 53's checks take 90 s" in note
    assert "scale by 10" in note


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            f"applied: records (lb1 unhealthy): DELETE {ACTIVE} A 127.0.3.201; "
            f"CREATE {ACTIVE} A 127.0.3.202",
            Applied("move", "127.0.3.202"),
        ),
        # The pair's swap: the PRIMARY's new address is the move, not the SECONDARY's.
        (
            f"applied: records (swap): DELETE {ACTIVE} A 127.0.3.201 PRIMARY check hc-1; "
            f"DELETE {ACTIVE} A 127.0.3.202 SECONDARY check hc-2; "
            f"CREATE {ACTIVE} A 127.0.3.201 SECONDARY check hc-1; "
            f"CREATE {ACTIVE} A 127.0.3.202 PRIMARY check hc-2",
            Applied("move", "127.0.3.202"),
        ),
        # A batch that only renews the SECONDARY moves nobody.
        (
            f"applied: records (next): CREATE {ACTIVE} A 127.0.3.203 SECONDARY check hc-3",
            None,
        ),
        # An LB's own record is not the active name.
        ("applied: records (new): CREATE lb1.modes.example.com A 127.0.3.201", None),
        (
            "applied: move Elastic IP eipalloc-1 to lb2 i-0abc123",
            Applied("move", "i-0abc123"),
        ),
        (
            "applied: tag i-0abc123: lbf:health=unhealthy, lbf:probe=fail:3",
            Applied("verdict", "i-0abc123", "unhealthy"),
        ),
        ("applied: tag i-0abc123: lbf:state=standby", None),
        ("planned: tag i-0abc123: lbf:health=unhealthy", None),
    ],
)
def test_the_executors_lines_that_time_a_failover(message: str, expected: Applied | None) -> None:
    assert parse_applied(message, ACTIVE) == expected


def trace(mode: str) -> Trace:
    killed = 100.0
    return Trace(
        mode=mode,
        killed_at=killed,
        lb="lb1",
        to="lb2",
        probes=((90.0, True), (98.0, True), (102.0, False), (104.0, False), (106.0, False)),
        verdict=106.1,
        change=106.3 if mode != "route53-stopped" else None,
        answer=108.4,
        requests=((96.0, True), (99.5, True), (100.5, False), (113.2, True), (113.3, True)),
    )


def test_a_recorded_kill_becomes_the_timelines_marks_in_seconds_after_the_kill() -> None:
    marks = marks_from(trace("dns"))
    by_lane = {
        lane: [m for m in marks if m.lane == lane] for lane in (PROBES, VERDICT, CHANGE, CLIENTS)
    }
    # From 3 s before the kill to 1 s after the first request served since it.
    assert [(m.at, m.ok) for m in by_lane[PROBES]] == [
        (-2.0, True),
        (pytest.approx(2.0), False),
        (pytest.approx(4.0), False),
        (pytest.approx(6.0), False),
    ]
    assert [m.label for m in by_lane[VERDICT]] == ["the controller: lb1 unhealthy"]
    assert [m.label for m in by_lane[CHANGE]] == ["record -> lb2", "answer -> lb2"]
    assert [m.at for m in by_lane[CHANGE]] == [pytest.approx(6.3), pytest.approx(8.4)]
    assert [(m.at, m.ok) for m in by_lane[CLIENTS]] == [
        (-0.5, True),
        (pytest.approx(0.5), False),
        (pytest.approx(13.2), True),
        (pytest.approx(13.3), True),
    ]


def test_with_the_controller_stopped_the_verdict_is_the_checkers_and_no_record_changes() -> None:
    marks = marks_from(trace("route53-stopped"))
    assert [m.label for m in marks if m.lane == VERDICT] == ["Route 53's checkers: lb1 unhealthy"]
    assert [m.label for m in marks if m.lane == CHANGE] == ["answer -> lb2"]
    eip = marks_from(trace("eip"))
    assert [m.label for m in eip if m.lane == CHANGE] == ["Elastic IP -> lb2", "holder -> lb2"]


def test_the_kill_drawn_is_the_one_with_the_median_client_time() -> None:
    kills = [kill(1, 7.0, 9.0, 15.0), kill(2, 7.0, 9.0, None), kill(3, 7.0, 9.0, 11.0)]
    kills.append(kill(4, 7.0, 9.0, 13.0))
    chosen = representative(kills)
    assert chosen is not None
    assert chosen.number == 4
    assert representative([kill(1, None, None, None)]) is None
