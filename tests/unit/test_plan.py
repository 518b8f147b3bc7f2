"""The whole decision of one round, as a Plan of write calls (STYLE: plan, then apply).

The SPEC promises: a run with nothing to do makes no write call; controller tags are written only
when their value changes; every move of the active record is one compare-and-swap batch; the
backend list is published before it is pushed, pushed only to running LBs that lack it, and never
published or pushed empty. `after()` folds applied changes back, so the next round over the result
has nothing left to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

import pytest

from chalicelib import render
from chalicelib.config import Settings
from chalicelib.core.applied import after
from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    PushBackends,
    PutBackendList,
    PutParameter,
    SetTags,
)
from chalicelib.core.model import Instance, ProbeResult, ProbeRun, World
from chalicelib.core.observed import fold_down_states, fold_probes, is_prober_fault
from chalicelib.core.plan import Plan, decide
from tests.kit.settings import settings
from tests.kit.world import (
    PREFIX,
    a_push,
    a_record,
    backend_text,
    checksum_of,
    fqdn,
    lb,
    observed,
    ownership,
    retag,
    settled,
    skipped,
    web,
    world,
)

NOW = 10_000.0  # when this run started
EARLIER = NOW - 120.0  # a previous run
S = settings()
ALL = settings(active_mode="all")

A1, A2, A3, A10 = "203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.10"
NEW1 = "203.0.113.101"
LBS = [lb("lb1", A1), lb("lb2", A2)]
WEBS = [web("10.0.1.1"), web("10.0.1.2"), web("10.0.1.3")]
LIST = "10.0.1.1:80 10.0.1.2:80 10.0.1.3:80"
GROWN = "10.0.1.1:80 10.0.1.2:80 10.0.1.3:80 10.0.1.4:80"


def plan_for(view: World, config: Settings = S) -> Plan:
    """As the job does it: EC2's down states first, then the decision."""
    return decide(
        fold_down_states(view, config.rules.thresholds), config.rules.plan, run_started_at=NOW
    )


def applied(view: World, plan: Plan) -> World:
    """What the job folds back after every change went through (pushes are then in flight)."""
    view = after(fold_down_states(view, S.rules.thresholds), plan.changes)
    sent = tuple(
        a_push(c.instance_id, c.checksum, "Pending", requested_at=NOW)
        for c in plan.changes
        if isinstance(c, PushBackends)
    )
    return replace(view, pushes=view.pushes + sent)


T = TypeVar("T")


def of_type(plan: Plan, kind: type[T]) -> list[T]:
    return [c for c in plan.changes if isinstance(c, kind)]


def tags_by_instance(plan: Plan) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for change in of_type(plan, SetTags):
        for instance_id in change.instance_ids:
            assert instance_id not in result, f"{instance_id} tagged twice in one plan"
            result[instance_id] = dict(change.tags)
    return result


def pushed_to(plan: Plan) -> list[str]:
    return [c.lb_name for c in of_type(plan, PushBackends)]


def parameters(plan: Plan) -> dict[str, str]:
    return {c.name: c.value for c in of_type(plan, PutParameter)}


def with_web(view: World, *webs: Instance) -> World:
    return replace(view, webs=view.webs + webs)


def with_lbs(view: World, *changed: Instance) -> World:
    """`view` with LBs replaced by instance id (or added)."""
    by_id = {x.instance_id: x for x in changed}
    lbs = tuple(by_id.pop(x.instance_id, x) for x in view.lbs)
    return replace(view, lbs=lbs + tuple(by_id.values()))


def lb_of(view: World, name: str) -> Instance:
    return next(x for x in view.lbs if x.name == name)


# A web server whose verdict turned healthy this round; EC2 still holds `unknown, ok:1`.
RISEN = observed(web("10.0.1.4", "unknown", probe="ok:1"), health="healthy")
STEADY = settled(LBS, WEBS)


# --- a steady world: no write call at all ------------------------------------------------------


STEADY_WORLDS = [
    pytest.param(STEADY, S, id="two-lbs-three-webs"),
    pytest.param(settled(LBS, WEBS, active="lb2"), S, id="active-on-lb2-no-failback"),
    pytest.param(
        settled(LBS, [*WEBS, web("10.0.1.8", draining=True), web("10.0.1.9", "unhealthy")]),
        S,
        id="draining-and-unhealthy-webs-left-out",
    ),
    pytest.param(
        settled([*LBS, lb("lb3", None, "unhealthy", state="stopped")], WEBS),
        S,
        id="stopped-standby",
    ),
    pytest.param(
        settled([*LBS, lb("lb3", A3, draining=True)], WEBS),
        S,
        id="draining-standby",
    ),
    pytest.param(
        settled([lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unhealthy")], WEBS, active="lb1"),
        S,
        id="no-healthy-lb-record-left-as-is",
    ),
    pytest.param(
        settled(LBS, WEBS, skipped=[skipped("i-frozen", name="lb3", address=A3)]),
        S,
        id="with-a-frozen-lb",
    ),
    pytest.param(
        settled([lb("lb2", A2), lb("lb10", A10)], WEBS),
        S,
        id="lb2-and-lb10",
    ),
    pytest.param(settled(LBS, WEBS, active=["lb1", "lb2"]), ALL, id="active-active"),
    pytest.param(
        settled(LBS, [web("2001:db8::1"), web("10.0.1.1", port=8080)]),
        S,
        id="ipv6-and-ports",
    ),
    pytest.param(
        settled(LBS, WEBS, extra_records=[a_record("www", "198.51.100.7")]),
        S,
        id="records-of-others-in-the-zone",
    ),
]


@pytest.mark.parametrize(("view", "config"), STEADY_WORLDS)
def test_a_steady_world_makes_no_write_call(view: World, config: Settings) -> None:
    plan = plan_for(view, config)
    assert plan.changes == ()


def test_a_steady_world_serves_the_published_list_without_conditions() -> None:
    plan = plan_for(STEADY)
    assert plan.backends is not None
    assert plan.backends.text == LIST
    assert plan.conditions == {}


# --- tags -----------------------------------------------------------------------------------


def test_equal_tag_changes_are_one_call_for_all_their_instances() -> None:
    rising = [
        observed(web(f"10.0.1.{n}", "unknown", probe="ok:1"), health="healthy") for n in (4, 5, 6)
    ]
    flapping = observed(lb_of(STEADY, "lb2"), probe="fail:1")
    plan = plan_for(with_lbs(with_web(STEADY, *rising), flapping))
    calls = of_type(plan, SetTags)
    tag_sets = [c.tags for c in calls]
    assert len(tag_sets) == len(set(tag_sets)), "one call per distinct tag set"
    by_tags = {c.tags: c.instance_ids for c in calls}
    assert by_tags[(("lbf:health", "healthy"), ("lbf:probe", "ok:2"))] == tuple(
        sorted(w.instance_id for w in rising)
    )
    assert by_tags[(("lbf:probe", "fail:1"),)] == ("i-lb2",)


def test_only_the_tags_that_changed_are_written() -> None:
    flipped = observed(lb_of(STEADY, "lb2"), health="unhealthy")  # was healthy, ok:2
    plan = plan_for(with_lbs(STEADY, flipped))
    assert tags_by_instance(plan) == {"i-lb2": {"lbf:health": "unhealthy", "lbf:probe": "fail:3"}}


def test_a_verdict_of_unknown_writes_no_health_tag() -> None:
    fresh = observed(web("10.0.1.4", "unknown", probe=None), probe="ok:1")
    plan = plan_for(with_web(STEADY, fresh))
    assert tags_by_instance(plan) == {fresh.instance_id: {"lbf:probe": "ok:1"}}


def test_an_assigned_name_is_written_to_the_lb() -> None:
    new = lb("lb3", A3, "unknown", instance_id="i-new", name_assigned=True)
    plan = plan_for(with_lbs(STEADY, new))
    assert tags_by_instance(plan)["i-new"] == {"lbf:name": "lb3", "lbf:state": "standby"}
    records = of_type(plan, ChangeRecords)
    assert records
    assert ("UPSERT", fqdn("lb3"), (A3,)) in [
        (c.action, c.record.name, c.record.values) for c in records[0].changes
    ]


def test_lbf_state_is_written_only_to_the_lbs_whose_state_changes() -> None:
    view = settled([*LBS, lb("lb3", A3)], WEBS)
    plan = plan_for(with_lbs(view, observed(lb_of(view, "lb1"), health="unhealthy")))
    states = {i: t["lbf:state"] for i, t in tags_by_instance(plan).items() if "lbf:state" in t}
    assert states == {"i-lb1": "standby", "i-lb2": "active"}


def test_no_lbf_state_while_no_lb_holds_the_record_and_none_is_tagged() -> None:
    view = world([lb("lb1", A1, "unknown"), lb("lb2", A2, "unknown")], WEBS)
    plan = plan_for(view)
    assert all("lbf:state" not in tags for tags in tags_by_instance(plan).values())


# --- failover -------------------------------------------------------------------------------


def test_a_failover_is_one_compare_and_swap_batch_and_state_tags_wait_for_it() -> None:
    failed = observed(lb_of(STEADY, "lb1"), health="unhealthy")
    plan = plan_for(with_web(with_lbs(STEADY, failed), RISEN))

    (batch,) = of_type(plan, ChangeRecords)
    assert [(c.action, c.record.name, c.record.values) for c in batch.changes] == [
        ("DELETE", fqdn("lb"), (A1,)),
        ("CREATE", fqdn("lb"), (A2,)),
    ]
    assert (plan.active.moved_from, plan.active.moved_to) == ("lb1", "lb2")
    for call in of_type(plan, SetTags):
        # lbf:state says where the record points: written only if the batch went through.
        assert call.after_records == any(key == "lbf:state" for key, _ in call.tags)
    tags = tags_by_instance(plan)
    assert tags["i-lb1"]["lbf:state"] == "standby"
    assert tags["i-lb2"]["lbf:state"] == "active"
    assert not any(
        c.after_records for c in of_type(plan, SetTags) if RISEN.instance_id in c.instance_ids
    )


@pytest.mark.parametrize(
    ("state", "address"),
    [
        pytest.param("stopping", A1, id="stopping"),
        pytest.param("stopped", None, id="stopped-public-ip-gone"),
        pytest.param("shutting-down", A1, id="shutting-down"),
        pytest.param("terminated", None, id="terminated"),
    ],
)
def test_a_stopped_active_lb_is_replaced_in_the_same_round(state: str, address: str | None) -> None:
    """SPEC: unhealthy at once, no rounds needed; the active LB is replaced in the same run."""
    gone = observed(lb_of(STEADY, "lb1"), state=state, address=address)
    view = fold_down_states(with_lbs(STEADY, gone), S.rules.thresholds)
    assert lb_of(view, "lb1").verdict.value == "unhealthy"

    plan = decide(view, S.rules.plan, run_started_at=NOW)
    (batch,) = of_type(plan, ChangeRecords)
    active = [(c.action, c.record.values) for c in batch.changes if c.record.name == fqdn("lb")]
    assert active == [("DELETE", (A1,)), ("CREATE", (A2,))]
    assert (plan.active.moved_from, plan.active.moved_to) == ("lb1", "lb2")
    assert "lb1" not in pushed_to(plan)


def test_fold_down_states_leaves_running_instances_alone() -> None:
    view = with_web(STEADY, web("10.0.1.9", state="stopped"))
    folded = fold_down_states(view, S.rules.thresholds)
    assert folded.lbs == view.lbs
    assert [w.verdict.value for w in folded.webs] == ["healthy"] * 3 + ["unhealthy"]


def test_no_eligible_lb_raises_a_condition_but_not_before_any_verdict() -> None:
    down = settled([lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unhealthy")], WEBS, active="lb1")
    assert "no-eligible-lb" in plan_for(down).conditions
    fresh = world([lb("lb1", A1, "unknown"), lb("lb2", A2, "unknown")], WEBS)
    assert "no-eligible-lb" not in plan_for(fresh).conditions
    # A stopped spare beside LBs not judged yet, on a first run: still no verdict to act on.
    spare = lb("lb3", A3, "unhealthy", "stopped")
    assert "no-eligible-lb" not in plan_for(replace(fresh, lbs=(*fresh.lbs, spare))).conditions
    # The active LB failed and the only other one is not judged yet: that is news.
    failed = settled([lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unknown")], WEBS, active="lb1")
    assert "no-eligible-lb" in plan_for(failed).conditions


def test_a_skipped_instance_is_a_condition_and_a_note() -> None:
    view = settled(
        LBS, WEBS, skipped=[skipped("i-frozen", reason="lbf:role 'x' is not 'lb' or 'web'")]
    )
    plan = plan_for(view)
    assert "skipped:i-frozen" in plan.conditions
    assert any("i-frozen" in note for note in plan.notes)


# --- backend lists --------------------------------------------------------------------------


def test_a_new_list_is_published_then_pushed_to_running_lbs_that_lack_it() -> None:
    view = settled([*LBS, lb("lb3", None, "unhealthy", state="stopped")], WEBS)
    plan = plan_for(with_web(view, RISEN))
    assert parameters(plan) == {f"{PREFIX}/backends": GROWN}
    assert pushed_to(plan) == ["lb1", "lb2"]
    for push in of_type(plan, PushBackends):
        assert (push.backends, push.checksum) == (GROWN, checksum_of(GROWN))
    kinds = [type(c) for c in plan.changes]
    assert kinds.index(PutBackendList) < kinds.index(PushBackends), "published before pushed"


def test_an_lb_that_already_applied_the_list_is_not_pushed() -> None:
    view = with_web(STEADY, RISEN)
    view = with_lbs(view, retag(lb_of(view, "lb2"), backends_checksum=checksum_of(GROWN)))
    assert pushed_to(plan_for(view)) == ["lb1"]


def test_an_lb_that_lacks_the_current_list_gets_it_though_nothing_else_changed() -> None:
    """A booting LB with no lbf:backends tag, say: the list is not republished, only pushed."""
    view = with_lbs(STEADY, retag(lb_of(STEADY, "lb2"), backends_checksum=None))
    plan = plan_for(view)
    assert pushed_to(plan) == ["lb2"]
    assert parameters(plan) == {}


@pytest.mark.parametrize(
    "status",
    [pytest.param("Pending"), pytest.param("InProgress"), pytest.param("Delayed")],
)
def test_a_push_in_flight_for_the_same_list_is_not_repeated(status: str) -> None:
    view = with_web(STEADY, RISEN)
    view = replace(
        view, pushes=(a_push("i-lb1", checksum_of(GROWN), status, requested_at=NOW + 5),)
    )
    assert pushed_to(plan_for(view)) == ["lb2"]


def test_a_push_in_flight_for_an_older_list_does_not_stop_the_new_one() -> None:
    view = with_web(STEADY, RISEN)
    view = replace(view, pushes=(a_push("i-lb1", checksum_of(LIST), "InProgress"),))
    assert pushed_to(plan_for(view)) == ["lb1", "lb2"]


def test_a_successful_push_sets_lbf_backends_and_is_not_repeated() -> None:
    view = with_web(STEADY, RISEN)
    view = replace(
        view, pushes=(a_push("i-lb1", checksum_of(GROWN), "Success", requested_at=NOW + 5),)
    )
    plan = plan_for(view)
    assert pushed_to(plan) == ["lb2"]
    assert tags_by_instance(plan)["i-lb1"] == {"lbf:backends": checksum_of(GROWN)}


def test_a_push_printed_earlier_in_the_run_is_not_printed_again() -> None:
    """Dry run, paused: a printed push was never sent, so SSM knows no command for it; the run
    still plans as if it were in flight, or every round would print it again."""
    view = with_web(STEADY, RISEN)
    view = replace(view, pushes_printed=(("i-lb1", checksum_of(GROWN)),))
    assert pushed_to(plan_for(view)) == ["lb2"]


def test_a_push_printed_for_an_older_list_does_not_stop_the_new_one() -> None:
    view = with_web(STEADY, RISEN)
    # The printed push is the latest to lb1: the earlier one in flight for GROWN no longer counts.
    sent = a_push("i-lb1", checksum_of(GROWN), "InProgress", requested_at=NOW - 5)
    view = replace(view, pushes=(sent,), pushes_printed=(("i-lb1", checksum_of(LIST)),))
    assert pushed_to(plan_for(view)) == ["lb1", "lb2"]


def test_a_push_printed_since_a_successful_one_holds_back_its_lbf_backends() -> None:
    view = with_web(STEADY, RISEN)
    done = a_push("i-lb1", checksum_of(LIST), "Success", requested_at=NOW - 5)
    view = replace(view, pushes=(done,), pushes_printed=(("i-lb1", checksum_of(GROWN)),))
    view = with_lbs(view, retag(lb_of(view, "lb1"), backends_checksum=None))
    assert "lbf:backends" not in tags_by_instance(plan_for(view)).get("i-lb1", {})


@pytest.mark.parametrize(
    "status",
    [
        pytest.param("Failed"),
        pytest.param("TimedOut"),
        pytest.param("Cancelled"),
        pytest.param("Undeliverable"),
    ],
)
def test_a_push_that_failed_in_this_run_waits_for_the_next_run(status: str) -> None:
    view = with_web(STEADY, RISEN)
    view = replace(
        view, pushes=(a_push("i-lb1", checksum_of(GROWN), status, requested_at=NOW + 5),)
    )
    plan = plan_for(view)
    assert pushed_to(plan) == ["lb2"]
    assert "push-failed:i-lb1" in plan.conditions
    assert status in plan.conditions["push-failed:i-lb1"]
    assert "lbf:backends" not in tags_by_instance(plan).get("i-lb1", {})


def test_the_notice_of_a_failed_push_points_at_its_output_in_cloudwatch() -> None:
    # The operator reads why it failed without logging in to the LB: the group the stack
    # creates and the streams SSM Agent writes for this command on this instance.
    view = with_web(STEADY, RISEN)
    failed = a_push("i-lb1", checksum_of(GROWN), "Failed", requested_at=NOW + 5, command_id="c-1")
    plan = plan_for(replace(view, pushes=(failed,)))
    notice = plan.conditions["push-failed:i-lb1"]
    assert f"CloudWatch Logs /lbf/{S.cluster}/pushes" in notice
    assert "streams c-1/i-lb1/" in notice


def test_status_points_at_the_output_of_a_push_that_ended_badly() -> None:
    view = replace(STEADY, backends_parameter=GROWN)
    failed = a_push("i-lb1", checksum_of(GROWN), "Failed", command_id="c-1")
    pending = a_push("i-lb2", checksum_of(GROWN), "InProgress", command_id="c-2")
    rows = {
        row["name"]: [text for _, text in row["notes"]]
        for row in render.status_rows(replace(view, pushes=(failed, pending)), S)
    }
    assert (
        f"backends stale (push Failed, output in CloudWatch Logs /lbf/{S.cluster}/pushes, "
        "streams c-1/i-lb1/)" in rows["lb1"]
    )
    # Still running: nothing to read yet.
    assert "backends stale (push InProgress)" in rows["lb2"]


def test_a_push_that_failed_in_an_earlier_run_is_retried() -> None:
    view = with_web(STEADY, RISEN)
    view = replace(
        view, pushes=(a_push("i-lb1", checksum_of(GROWN), "Failed", requested_at=EARLIER),)
    )
    plan = plan_for(view)
    assert pushed_to(plan) == ["lb1", "lb2"]
    assert "push-failed:i-lb1" not in plan.conditions


def test_the_latest_push_to_an_lb_is_the_one_that_counts() -> None:
    view = with_web(STEADY, RISEN)
    commands = (
        a_push("i-lb1", checksum_of(GROWN), "Failed", requested_at=NOW + 1),
        a_push("i-lb1", checksum_of(GROWN), "Success", requested_at=NOW + 9),
    )
    plan = plan_for(replace(view, pushes=commands))
    assert pushed_to(plan) == ["lb2"]
    assert "push-failed:i-lb1" not in plan.conditions


@pytest.mark.parametrize(
    "webs",
    [
        pytest.param([web(w.address, "unhealthy") for w in WEBS], id="every-probe-failed"),
        pytest.param([web(w.address, draining=True) for w in WEBS], id="everything-draining"),
        pytest.param([web(w.address, state="stopped") for w in WEBS], id="everything-stopped"),
        pytest.param([], id="no-web-server-left"),
    ],
)
def test_an_empty_list_is_never_published_or_pushed_the_last_one_stays(
    webs: list[Instance],
) -> None:
    view = replace(STEADY, webs=tuple(webs))
    plan = plan_for(view)
    assert parameters(plan) == {}
    assert pushed_to(plan) == []
    assert "backends-held:empty" in plan.conditions
    assert plan.backends is not None
    assert plan.backends.text == LIST


def test_with_nothing_published_yet_an_empty_list_is_still_not_published() -> None:
    view = world(LBS, [web("10.0.1.1", "unhealthy")], lbs_parameter=f"{A1} {A2}")
    plan = plan_for(view)
    assert f"{PREFIX}/backends" not in parameters(plan)
    assert pushed_to(plan) == []
    assert "backends-held:empty" in plan.conditions


def test_a_pool_with_no_verdict_yet_is_held_without_a_notice() -> None:
    """Right after start: `unknown` is never a reason to notify."""
    view = world(LBS, [web("10.0.1.1", "unknown"), web("10.0.1.2", "unknown")])
    plan = plan_for(view)
    assert f"{PREFIX}/backends" not in parameters(plan)
    assert pushed_to(plan) == []
    assert not any(key.startswith("backends-held") for key in plan.conditions)


def test_many_servers_failing_at_once_keep_the_last_list() -> None:
    webs = [*WEBS, web("10.0.1.4")]
    view = settled(LBS, webs)
    failing = [observed(w, health="unhealthy") for w in webs[:3]]
    plan = plan_for(replace(view, webs=(*failing, webs[3])))
    assert "backends-held:pool-drop" in plan.conditions
    assert f"{PREFIX}/backends" not in parameters(plan)
    assert pushed_to(plan) == []


def test_a_failing_minority_is_removed_from_the_list() -> None:
    webs = [*WEBS, web("10.0.1.4")]
    view = settled(LBS, webs)
    plan = plan_for(replace(view, webs=(observed(webs[0], health="unhealthy"), *webs[1:])))
    assert parameters(plan) == {f"{PREFIX}/backends": "10.0.1.2:80 10.0.1.3:80 10.0.1.4:80"}
    assert pushed_to(plan) == ["lb1", "lb2"]


def test_a_garbage_stored_list_is_replaced() -> None:
    plan = plan_for(replace(STEADY, backends_parameter="10.0.1.1:80;reboot"))
    assert parameters(plan) == {f"{PREFIX}/backends": LIST}


# --- <prefix>/lbs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        pytest.param(STEADY, None, id="steady-not-rewritten"),
        pytest.param(
            with_lbs(STEADY, observed(lb_of(STEADY, "lb2"), address=NEW1)),
            f"{A1} {NEW1}",
            id="ip-change",
        ),
        pytest.param(
            with_lbs(STEADY, lb("lb3", A3, "unknown")),
            f"{A1} {A2} {A3}",
            id="lb-added",
        ),
        pytest.param(
            with_lbs(STEADY, observed(lb_of(STEADY, "lb2"), state="stopped", address=None)),
            A1,
            id="stopped-lb-left-out",
        ),
        pytest.param(
            world([lb("lb10", A10), lb("lb2", A2)], WEBS),
            f"{A2} {A10}",
            id="natural-order-lb2-before-lb10",
        ),
    ],
)
def test_the_lbs_parameter_holds_the_current_lb_addresses(
    view: World, expected: str | None
) -> None:
    assert parameters(plan_for(view)).get(f"{PREFIX}/lbs") == expected


# --- probes ---------------------------------------------------------------------------------


def results(*oks: bool) -> dict[str, ProbeResult]:
    return {
        f"i-{n}": ProbeResult(ok=ok, detail="200" if ok else "timeout", seconds=0.1)
        for n, ok in enumerate(oks)
    }


@pytest.mark.parametrize(
    ("round_results", "fault_percent", "fault"),
    [
        pytest.param(results(False, False, False), 100, True, id="all-failed"),
        pytest.param(results(False, False, True), 100, False, id="two-of-three-failed"),
        pytest.param(results(False, False, True), 60, True, id="two-of-three-at-60-percent"),
        pytest.param(results(False, False, True), 66, True, id="two-of-three-at-66-percent"),
        pytest.param(results(False, False, True), 67, False, id="two-of-three-at-67-percent"),
        pytest.param(results(False, False, True), 70, False, id="two-of-three-at-70-percent"),
        pytest.param(results(False, True), 50, True, id="half-at-50-percent"),
        pytest.param(results(False), 100, False, id="one-target-is-never-the-prober"),
        pytest.param(results(), 100, False, id="no-targets"),
        pytest.param(results(True, True, True), 1, False, id="none-failed"),
    ],
)
def test_is_prober_fault(
    round_results: dict[str, ProbeResult], fault_percent: int, fault: bool
) -> None:
    assert is_prober_fault(round_results, fault_percent) is fault


def test_fold_probes_advances_only_the_instances_probed() -> None:
    view = world(
        [lb("lb1", A1), lb("lb2", None, "unhealthy", state="stopped")],
        [web("10.0.1.1", "unknown", probe=None)],
    )
    probed = {
        "i-lb1": ProbeResult(ok=False, detail="timeout", seconds=2.0),
        "i-lb2": ProbeResult(ok=True, detail="200", seconds=0.1),  # stale: it is stopped
    }
    folded = fold_probes(view, probed, S.rules.thresholds)
    assert [(x.verdict.value, x.damping.run) for x in folded.lbs] == [
        ("healthy", ProbeRun(ok=False, count=1, reason="timeout")),
        ("unhealthy", view.lbs[1].damping.run),
    ]
    assert folded.webs == view.webs


# --- idempotence: after() leaves nothing to do ----------------------------------------------


def fresh_lb(name: str, address: str) -> Instance:
    """An LB that was just named by the inventory and has never been written to."""
    return lb(name, address, instance_id=f"i-new-{name}", name_assigned=True, written={})


def fresh_web(address: str) -> Instance:
    return web(address, written={})


IDEMPOTENCE = [
    pytest.param(
        world(
            [fresh_lb("lb1", A1), fresh_lb("lb2", A2)],
            [fresh_web("10.0.1.1"), fresh_web("10.0.1.2")],
        ),
        S,
        id="fresh-cluster",
    ),
    pytest.param(
        world([lb("lb1", A1, "unknown"), lb("lb2", A2, "unknown")], WEBS),
        S,
        id="no-verdict-yet",
    ),
    pytest.param(
        with_lbs(STEADY, observed(lb_of(STEADY, "lb1"), health="unhealthy")),
        S,
        id="failover",
    ),
    pytest.param(
        with_lbs(STEADY, observed(lb_of(STEADY, "lb1"), address=NEW1)),
        S,
        id="active-ip-changed",
    ),
    pytest.param(
        with_lbs(STEADY, observed(lb_of(STEADY, "lb1"), state="stopped", address=None)),
        S,
        id="active-stopped",
    ),
    pytest.param(
        with_lbs(STEADY, fresh_lb("lb3", A3)),
        S,
        id="new-lb-named",
    ),
    pytest.param(
        replace(
            STEADY,
            records=(
                *(r for r in STEADY.records if r.type != "TXT"),
                a_record("lb3", A3),
                ownership("lb", "lb1", "lb2", "lb3"),
            ),
        ),
        S,
        id="vanished-lb",
    ),
    pytest.param(with_web(STEADY, RISEN), S, id="web-added"),
    pytest.param(
        replace(STEADY, webs=tuple(observed(w, health="unhealthy") for w in WEBS)),
        S,
        id="all-webs-failed",
    ),
    pytest.param(
        with_lbs(
            settled(LBS, WEBS, active=["lb1", "lb2"]),
            observed(lb_of(STEADY, "lb2"), health="unhealthy", lb_state="active"),
        ),
        ALL,
        id="active-active-lb-failed",
    ),
    pytest.param(
        replace(STEADY, records=(), backends_parameter=None, lbs_parameter=None),
        S,
        id="zone-and-parameters-wiped",
    ),
]


@pytest.mark.parametrize(("view", "config"), IDEMPOTENCE)
def test_after_applying_a_plan_there_is_nothing_left_to_do(view: World, config: Settings) -> None:
    first = plan_for(view, config)
    assert first.changes, "the case should need some change"
    second = decide(applied(view, first), config.rules.plan, run_started_at=NOW)
    assert [c.describe() for c in second.changes] == []


def test_a_push_lifecycle_ends_in_a_steady_world() -> None:
    view = with_web(STEADY, RISEN)
    first = plan_for(view)
    assert pushed_to(first) == ["lb1", "lb2"]
    view = applied(view, first)
    # SSM reports the pushes done: lbf:backends is written, nothing is pushed again.
    done = tuple(replace(c, status="Success") for c in view.pushes)
    second = plan_for(replace(view, pushes=done))
    assert pushed_to(second) == []
    assert tags_by_instance(second) == {
        "i-lb1": {"lbf:backends": checksum_of(GROWN)},
        "i-lb2": {"lbf:backends": checksum_of(GROWN)},
    }
    assert [type(c) for c in second.changes] == [SetTags]
    third = plan_for(after(replace(view, pushes=done), second.changes))
    assert third.changes == ()


def describe_all(changes: Sequence[Change]) -> list[str]:
    return [c.describe() for c in changes]


def test_every_change_describes_itself_on_one_line() -> None:
    view = with_web(with_lbs(STEADY, observed(lb_of(STEADY, "lb1"), health="unhealthy")), RISEN)
    lines = describe_all(plan_for(view).changes)
    assert lines
    assert all(line and "\n" not in line for line in lines)


def test_the_backend_text_builder_agrees_with_the_spec_example() -> None:
    # Guards the builders: the hand-written list is what the SPEC describes.
    assert backend_text([web("127.0.1.10"), web("127.0.1.9"), web("::1")]) == (
        "127.0.1.9:80 127.0.1.10:80 [::1]:80"
    )


@pytest.mark.parametrize("state", ["shutting-down", "terminated"])
def test_no_tag_is_written_to_an_instance_that_is_going_away(state: str) -> None:
    """EC2 may refuse tags on a terminated instance; one refusal would fail the shared call."""
    view = settled([lb("lb1", "127.0.0.11"), lb("lb2", "127.0.0.12")], [web("127.0.1.21")])
    going = retag(view.lbs[1], state=state)
    plan = decide(
        fold_down_states(replace(view, lbs=(view.lbs[0], going)), settings().rules.thresholds),
        settings().rules.plan,
        run_started_at=0.0,
    )
    tagged = {i for c in plan.changes if isinstance(c, SetTags) for i in c.instance_ids}
    assert going.instance_id not in tagged
