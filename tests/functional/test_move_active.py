"""Planned failover from the command line: `python -m chalicelib move-active`.

On the in-memory AWS (tests/kit/cloud.py), which rejects a stale compare-and-swap as Route 53 does
and counts every call: each rule of the SPEC's "Planned failover" is checked by what was written,
and a refused or dry move by `calls.writes()` being empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from bench.calls import is_write
from chalicelib.__main__ import main
from chalicelib.core.model import ProbeResult, ProbeTarget, Record
from chalicelib.errors import AwsError, ChangeRejected
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, FakeProber
from tests.kit.settings import environment

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)
EIP_ENV = ENV | {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"}


class RecordingProber(FakeProber):
    """Also remembers which addresses each round probed, in the order asked."""

    asked: list[list[str]]

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        self.asked = [
            *getattr(self, "asked", []),
            [self.ec2.instances[t.key].private_ip or "" for t in targets],
        ]
        return super().probe_round(targets)


def new_cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.prober = RecordingProber(cloud.clock, cloud.ec2)
    return cloud


def settle(cloud: FakeCloud, environ: dict[str, str] = ENV) -> None:
    for _ in range(2):
        assert (
            main(["reconcile"], environ=environ, services=cloud.services(), clock=cloud.clock) == 0
        )


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = new_cloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    settle(cloud)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    return cloud


def move(cloud: FakeCloud, *args: str, environ: dict[str, str] = ENV) -> int:
    return main(
        ["move-active", *args], environ=environ, services=cloud.services(), clock=cloud.clock
    )


def write_ops(cloud: FakeCloud) -> list[str]:
    return [op for op, _ in cloud.calls.writes()]


def probed(cloud: FakeCloud, since: int) -> list[str]:
    """The addresses probed by the rounds after the first `since`, in the order asked."""
    asked: list[list[str]] = getattr(cloud.prober, "asked", [])
    return [address for round_ in asked[since:] for address in round_]


def rounds(cloud: FakeCloud) -> int:
    return len(cloud.prober.rounds)


# --- a move ------------------------------------------------------------------------------------


def test_move_to_a_healthy_current_lb_waits_for_insync(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cloud.calls.log.clear()
    cloud.clock.sleeps.clear()
    before = rounds(cloud)
    pending = iter(["PENDING", "PENDING", "INSYNC"])
    cloud.route53.change_status = lambda change_id: next(pending)  # type: ignore[method-assign]

    assert move(cloud, "--to", "lb2") == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    # The same compare-and-swap as a scheduled failover: one batch, the exact record read
    # deleted and the new one created.
    [batch] = [b for op, b in cloud.calls.log if op == "ChangeResourceRecordSets"]
    assert [(c.action, c.record.values) for c in batch] == [  # type: ignore[attr-defined]
        ("DELETE", ("127.0.0.11",)),
        ("CREATE", ("127.0.0.12",)),
    ]
    lb1, lb2 = cloud.ec2.ids("lb")
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    assert cloud.ec2.tag(lb1, "lbf:state") == "standby"
    assert probed(cloud, before) == ["127.0.0.12"]  # the target, live, before the move
    out = capsys.readouterr().out
    assert "checked lb2 (127.0.0.12): healthy, backend list current; live probe answered" in out
    assert "INSYNC" in out
    assert cloud.clock.sleeps == [2.0, 2.0]  # polled GetChange until INSYNC


def test_no_wait_does_not_poll_route53(cloud: FakeCloud) -> None:
    cloud.calls.log.clear()

    assert move(cloud, "--to", "lb2", "--no-wait") == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert cloud.calls.count("GetChange") == 0


def test_a_later_run_keeps_the_moved_record(cloud: FakeCloud) -> None:
    assert move(cloud, "--to", "lb2", "--no-wait") == 0
    assert main(["reconcile"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)  # non-preemptive: no failback


def test_to_the_lb_that_holds_the_record_is_nothing_to_move(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.calls.log.clear()

    assert move(cloud, "--to", "lb1") == 0

    assert write_ops(cloud) == []
    assert "nothing to move: lb1 holds it already" in capsys.readouterr().out


def test_to_with_no_active_record_creates_it(cloud: FakeCloud) -> None:
    del cloud.route53.records[(ACTIVE, "A")]
    cloud.calls.log.clear()

    assert move(cloud, "--to", "lb2", "--no-wait") == 0

    [batch] = [b for op, b in cloud.calls.log if op == "ChangeResourceRecordSets"]
    assert [(c.action, c.record.values) for c in batch] == [("CREATE", ("127.0.0.12",))]  # type: ignore[attr-defined]
    assert cloud.ec2.tag(cloud.ec2.id_named("lb2"), "lbf:state") == "active"
    assert cloud.ec2.tag(cloud.ec2.id_named("lb1"), "lbf:state") == "standby"


# --- --drain -----------------------------------------------------------------------------------


def test_drain_moves_off_the_lb_then_tags_it(cloud: FakeCloud) -> None:
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb1", "--no-wait") == 0

    lb1, lb2 = cloud.ec2.id_named("lb1"), cloud.ec2.id_named("lb2")
    assert cloud.ec2.tag(lb1, "lbf:maintenance") == "drain"
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    # The drain tag is the last write to the world: after the move it belongs to went through.
    # Then the history records both.
    *world_writes, (operation, (name, _)) = cloud.calls.writes()
    assert world_writes[0][0] == "ChangeResourceRecordSets"
    assert world_writes[-1] == ("CreateTags", ((lb1,), (("lbf:maintenance", "drain"),)))
    assert (operation, name) == ("PutParameter", "/lbf/demo/history")
    assert [e["code"] for e in json.loads(cloud.ssm.parameters[name])] == ["failover", "drained"]
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    # A scheduled run afterwards keeps it so: lb1 is draining.
    assert main(["reconcile"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


def test_drain_of_an_lb_that_holds_nothing_only_tags_it(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb2", "--to", "lb2x", "--no-wait") == 1  # unknown --to: refused
    assert write_ops(cloud) == []
    capsys.readouterr()

    before = rounds(cloud)

    assert move(cloud, "--drain", "lb2", "--no-wait") == 0

    lb2 = cloud.ec2.id_named("lb2")
    tag, history = cloud.calls.writes()
    assert tag == ("CreateTags", ((lb2,), (("lbf:maintenance", "drain"),)))
    assert history[0] == "PutParameter"
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)  # the record moves only off NAME
    assert rounds(cloud) == before  # nothing to move, nobody to probe
    assert "nothing to move: lb2 does not hold the active role" in capsys.readouterr().out


def test_drain_takes_the_first_candidate_in_natural_order_that_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = new_cloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.10", name="lb10")
    cloud.ec2.add("lb", "127.0.0.3", name="lb3")
    cloud.ec2.add("lb", "127.0.0.2", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    settle(cloud)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    # lb2 is healthy by its tags, but does not answer now: only the live probe can tell.
    cloud.prober.dead.add("127.0.0.2")
    capsys.readouterr()
    before = rounds(cloud)

    assert move(cloud, "--drain", "lb1", "--no-wait") == 0

    # One live round over the candidates, in natural order: lb2, lb3, lb10 (never lb1).
    assert probed(cloud, before) == ["127.0.0.2", "127.0.0.3", "127.0.0.10"]
    assert cloud.route53.value(ACTIVE) == ("127.0.0.3",)
    out = capsys.readouterr().out
    assert "checked lb2 (127.0.0.2): healthy, backend list current; live probe FAILED" in out


def test_drain_with_no_candidate_answering_is_refused_and_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.prober.dead.add("127.0.0.12")
    cloud.calls.log.clear()
    capsys.readouterr()

    assert move(cloud, "--drain", "lb1") == 1

    assert write_ops(cloud) == []  # no move, and so no drain tag either
    assert cloud.ec2.tag(cloud.ec2.id_named("lb1"), "lbf:maintenance") is None
    out = capsys.readouterr().out
    assert "refused, nothing changed: no candidate answered the live probe: lb2 (timeout)" in out


def test_drain_with_no_other_eligible_lb_is_refused(cloud: FakeCloud) -> None:
    cloud.ec2.set_tag(cloud.ec2.id_named("lb2"), "lbf:health", "unhealthy")
    cloud.calls.log.clear()
    before = rounds(cloud)

    assert move(cloud, "--drain", "lb1") == 1

    assert write_ops(cloud) == []
    assert rounds(cloud) == before  # no candidate, nothing to probe
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_drain_by_instance_id_moves_off_an_lb_whose_name_does_not_parse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = new_cloud()
    frozen = cloud.ec2.add("lb", "127.0.0.13", tags={"lbf:name": "lb 3"})
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    # The active record on the skipped LB (set before its tag was mangled): frozen, left as is.
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, ("127.0.0.13",))
    settle(cloud)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.13",)
    cloud.calls.log.clear()

    assert move(cloud, "--drain", frozen, "--no-wait") == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert cloud.ec2.tag(frozen, "lbf:maintenance") == "drain"
    # Its tags are frozen: the operator's drain tag is the only one written on it.
    tagged = [detail for op, detail in cloud.calls.writes() if op == "CreateTags"]
    on_frozen = [tags for ids, tags in tagged if frozen in ids]  # type: ignore[misc]
    assert on_frozen == [(("lbf:maintenance", "drain"),)]


def test_drain_of_an_unknown_lb_is_refused(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "i-0000000000000abcd") == 1

    assert write_ops(cloud) == []
    assert (
        "no LB named 'i-0000000000000abcd', nor an LB with that instance id"
        in capsys.readouterr().out
    )


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("why", "said"),
    [
        ("unhealthy", "its verdict is unhealthy"),
        ("unknown verdict", "its verdict is unknown"),
        ("draining", "it is draining"),
        ("stopped", "it is stopped"),
        ("stale list", "has not confirmed the current backend list (LBF_LB_MIN_BACKENDS=1)"),
        ("unknown name", "no LB named 'lb9'"),
        ("skipped", "is skipped and never newly made active"),
        ("the drained LB", "--to lb1 is the LB being drained"),
    ],
)
def test_to_an_lb_the_scheduled_run_could_not_choose_is_refused(
    cloud: FakeCloud, why: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lb2 = cloud.ec2.id_named("lb2")
    target, extra, environ = "lb2", [], ENV
    if why == "unhealthy":
        cloud.ec2.set_tag(lb2, "lbf:health", "unhealthy")
    elif why == "unknown verdict":
        cloud.ec2.set_tag(lb2, "lbf:health", None)
    elif why == "draining":
        cloud.ec2.set_tag(lb2, "lbf:maintenance", "drain")
    elif why == "stopped":
        cloud.ec2.set_state(lb2, "stopped")
    elif why == "stale list":
        cloud.ec2.set_tag(lb2, "lbf:backends", "0" * 64)
        environ = ENV | {"LBF_LB_MIN_BACKENDS": "1"}
    elif why == "unknown name":
        target = "lb9"
    elif why == "skipped":
        cloud.ec2.add("lb", "127.0.0.13", name="lb3", tags={"lbf:maintenance": "soon"})
        target = "lb3"
    else:
        target, extra = "lb1", ["--drain", "lb1"]
    cloud.calls.log.clear()
    before = rounds(cloud)

    assert move(cloud, "--to", target, *extra, environ=environ) == 1

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert cloud.calls.writes() == []
    assert rounds(cloud) == before  # refused before probing anything
    out = capsys.readouterr().out
    assert "error: refused, nothing changed:" in out
    assert said in out


def test_to_an_lb_whose_list_is_stale_is_taken_while_min_backends_is_off(cloud: FakeCloud) -> None:
    """SPEC: the same backend-list requirement as the scheduled run, which is none by default."""
    cloud.ec2.set_tag(cloud.ec2.id_named("lb2"), "lbf:backends", "0" * 64)

    assert move(cloud, "--to", "lb2", "--no-wait") == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


def test_to_an_lb_that_fails_the_live_probe_is_refused(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.prober.dead.add("127.0.0.12")  # healthy by its tags, dead now
    cloud.calls.log.clear()
    before = rounds(cloud)

    assert move(cloud, "--to", "lb2", "--drain", "lb1") == 1

    assert probed(cloud, before) == ["127.0.0.12"]
    assert cloud.calls.writes() == []
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert "lb2 did not answer the live probe: lb2 (timeout)" in capsys.readouterr().out


def test_paused_refuses_and_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.parameters["/lbf/demo/paused"] = "true"
    cloud.calls.log.clear()
    before = rounds(cloud)

    assert move(cloud, "--drain", "lb1", "--to", "lb2") == 1

    assert cloud.calls.writes() == []
    assert rounds(cloud) == before
    assert "refused, nothing changed: paused: /lbf/demo/paused is true" in capsys.readouterr().out


def test_a_stale_view_fails_changes_nothing_and_writes_no_drain_tag(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.route53.fail_next = [
        ChangeRejected("route53", "ChangeResourceRecordSets", "InvalidChangeBatch", "changed")
    ]
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb1") == 1

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert write_ops(cloud) == ["ChangeResourceRecordSets"]  # refused by Route 53, nothing else
    assert cloud.ec2.tag(cloud.ec2.id_named("lb1"), "lbf:maintenance") is None
    assert "rejected, nothing moved" in capsys.readouterr().out


def test_someone_moving_the_record_first_makes_the_move_fail(cloud: FakeCloud) -> None:
    """The compare-and-swap at work: the batch deletes the record as read, which is gone."""

    def operator_moves_it() -> None:
        cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, ("127.0.0.99",))

    cloud.route53.before_change = operator_moves_it

    assert move(cloud, "--to", "lb2") == 1

    assert cloud.route53.value(ACTIVE) == ("127.0.0.99",)
    assert cloud.ec2.tag(cloud.ec2.id_named("lb2"), "lbf:state") == "standby"


def test_a_failed_tag_after_the_move_exits_1(cloud: FakeCloud) -> None:
    cloud.ec2.fail_tags = AwsError("ec2", "CreateTags", "UnauthorizedOperation", "denied")

    assert move(cloud, "--drain", "lb1", "--no-wait") == 1

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)  # the move itself went through


# --- dry run -----------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_writes_nothing_tags_included(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported bug: LBF_DRY_RUN moved the record and wrote three tags."""
    before = (dict(cloud.ec2.instances), dict(cloud.route53.records), dict(cloud.ssm.parameters))
    cloud.calls.log.clear()
    capsys.readouterr()

    code = move(cloud, "--drain", "lb1", "--to", "lb2", environ=ENV | {"LBF_DRY_RUN": "true"})

    assert code == 0
    assert [op for op, _ in cloud.calls.log if is_write(op)] == []
    assert cloud.calls.count("GetChange") == 0  # nothing to wait for
    assert before == (
        dict(cloud.ec2.instances),
        dict(cloud.route53.records),
        dict(cloud.ssm.parameters),
    )
    out = capsys.readouterr().out
    assert "would change: 4" in out
    assert f"DELETE {ACTIVE} A 127.0.0.11; CREATE {ACTIVE} A 127.0.0.12" in out
    assert "lbf:maintenance=drain" in out
    assert "lbf:state=active" in out


# --- active-active -----------------------------------------------------------------------------


@pytest.fixture
def active_active() -> FakeCloud:
    cloud = new_cloud()
    for host in (11, 12, 13):
        cloud.ec2.add("lb", f"127.0.0.{host}", name=f"lb{host - 10}")
    cloud.ec2.add("web", "127.0.1.21")
    settle(cloud, ENV | {"LBF_ACTIVE_MODE": "all"})
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.12", "127.0.0.13")
    return cloud


def test_active_active_drain_takes_one_out_and_keeps_the_rest(active_active: FakeCloud) -> None:
    cloud = active_active
    environ = ENV | {"LBF_ACTIVE_MODE": "all"}
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb2", "--no-wait", environ=environ) == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")
    [batch] = [b for op, b in cloud.calls.log if op == "ChangeResourceRecordSets"]
    assert [c.action for c in batch] == ["DELETE", "CREATE"]  # type: ignore[attr-defined]
    lb2 = cloud.ec2.id_named("lb2")
    assert cloud.ec2.tag(lb2, "lbf:maintenance") == "drain"
    assert cloud.ec2.tag(lb2, "lbf:state") == "standby"
    assert main(["reconcile"], environ=environ, services=cloud.services(), clock=cloud.clock) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")


@pytest.mark.parametrize(
    ("typo", "by_id"),
    [({"lbf:maintenance": "Drain"}, False), ({"lbf:name": "lb 2"}, True)],
    ids=["maintenance-typo-drained-by-name", "name-typo-drained-by-id"],
)
def test_active_active_drain_of_a_skipped_lb_takes_its_place_out_and_keeps_the_rest(
    active_active: FakeCloud, typo: dict[str, str], by_id: bool
) -> None:
    """A skipped LB keeps its place in the record (frozen) until the operator drains it."""
    cloud = active_active
    environ = ENV | {"LBF_ACTIVE_MODE": "all"}
    lb2 = cloud.ec2.id_named("lb2")
    for key, value in typo.items():
        cloud.ec2.set_tag(lb2, key, value)
    settle(cloud, environ)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.12", "127.0.0.13")
    cloud.calls.log.clear()

    assert move(cloud, "--drain", lb2 if by_id else "lb2", "--no-wait", environ=environ) == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")
    assert cloud.ec2.tag(lb2, "lbf:maintenance") == "drain"
    # Its other tags are frozen: the drain tag is the only one written on it.
    tagged = [detail for op, detail in cloud.calls.writes() if op == "CreateTags"]
    assert [tags for ids, tags in tagged if lb2 in ids] == [  # type: ignore[misc]
        (("lbf:maintenance", "drain"),)
    ]
    assert main(["reconcile"], environ=environ, services=cloud.services(), clock=cloud.clock) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")


def test_active_active_refuses_to(
    active_active: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = active_active
    cloud.calls.log.clear()

    assert move(cloud, "--to", "lb2", environ=ENV | {"LBF_ACTIVE_MODE": "all"}) == 1

    assert cloud.calls.writes() == []
    assert "LBF_ACTIVE_MODE=all" in capsys.readouterr().out


def test_active_active_never_empties_the_record(active_active: FakeCloud) -> None:
    cloud = active_active
    environ = ENV | {"LBF_ACTIVE_MODE": "all"}
    for name in ("lb2", "lb3"):
        cloud.ec2.set_tag(cloud.ec2.id_named(name), "lbf:health", "unhealthy")
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, ("127.0.0.11",))
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb1", environ=environ) == 1

    assert cloud.calls.writes() == []
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


# --- Elastic IP mode ---------------------------------------------------------------------------


@pytest.fixture
def eip() -> FakeCloud:
    cloud = new_cloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    settle(cloud, EIP_ENV)
    assert cloud.ec2.eip_holder == cloud.ec2.id_named("lb1")
    return cloud


def test_eip_drain_moves_the_address_after_checking_where_it_is(eip: FakeCloud) -> None:
    cloud = eip
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb1", environ=EIP_ENV) == 0

    lb1, lb2 = cloud.ec2.id_named("lb1"), cloud.ec2.id_named("lb2")
    assert cloud.ec2.eip_holder == lb2
    ops = [op for op, _ in cloud.calls.log]
    # Check-then-move: DescribeAddresses right before AssociateAddress, as a scheduled run does.
    at = ops.index("AssociateAddress")
    assert ops[at - 1] == "DescribeAddresses"
    assert cloud.calls.count("ChangeResourceRecordSets") == 0  # the record holds the EIP
    assert cloud.calls.count("GetChange") == 0  # nothing in Route 53 to wait for
    assert cloud.ec2.tag(lb1, "lbf:maintenance") == "drain"
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"


@pytest.mark.parametrize("how", ["live", "dry-run"])
def test_eip_drain_of_a_skipped_holder_by_its_valid_name(eip: FakeCloud, how: str) -> None:
    """A typo in the holder's lbf:maintenance: --drain by its name moves the Elastic IP off it,
    and the drain tag is the only tag written on it; a dry run writes nothing at all."""
    cloud = eip
    lb1, lb2 = cloud.ec2.id_named("lb1"), cloud.ec2.id_named("lb2")
    cloud.ec2.set_tag(lb1, "lbf:maintenance", "Drain")
    settle(cloud, EIP_ENV)
    assert cloud.ec2.eip_holder == lb1  # frozen, it keeps what it holds
    cloud.calls.log.clear()
    environ = EIP_ENV | ({"LBF_DRY_RUN": "true"} if how == "dry-run" else {})

    assert move(cloud, "--drain", "lb1", environ=environ) == 0

    if how == "dry-run":
        assert cloud.calls.writes() == []
        assert cloud.ec2.eip_holder == lb1
        return
    assert cloud.ec2.eip_holder == lb2
    tagged = [detail for op, detail in cloud.calls.writes() if op == "CreateTags"]
    assert [tags for ids, tags in tagged if lb1 in ids] == [  # type: ignore[misc]
        (("lbf:maintenance", "drain"),)
    ]


def test_eip_moved_by_someone_else_fails_and_writes_no_tag(eip: FakeCloud) -> None:
    cloud = eip
    lb2 = cloud.ec2.id_named("lb2")
    reads = 0

    def someone_moves_it(operation: str, detail: object) -> None:
        nonlocal reads
        if operation == "DescribeAddresses":
            reads += 1
            if reads == 2:  # after move-active read the world, before it moves
                cloud.ec2.eip_holder = lb2

    cloud.calls.before = someone_moves_it
    cloud.calls.log.clear()

    assert move(cloud, "--drain", "lb1", environ=EIP_ENV) == 1

    assert cloud.calls.count("AssociateAddress") == 0
    assert cloud.calls.count("CreateTags") == 0
    assert cloud.ec2.tag(cloud.ec2.id_named("lb1"), "lbf:maintenance") is None


def test_eip_dry_run_writes_nothing(eip: FakeCloud) -> None:
    cloud = eip
    cloud.calls.log.clear()

    assert move(cloud, "--to", "lb2", environ=EIP_ENV | {"LBF_DRY_RUN": "true"}) == 0

    assert write_ops(cloud) == []
    assert cloud.ec2.eip_holder == cloud.ec2.id_named("lb1")


# --- configuration -----------------------------------------------------------------------------


def test_move_active_needs_a_target(cloud: FakeCloud) -> None:
    assert move(cloud) == 2


def test_bad_configuration_exits_2_before_any_aws_call(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.calls.log.clear()

    assert move(cloud, "--to", "lb2", environ=ENV | {"LBF_TTL": "sixty"}) == 2

    assert cloud.calls.log == []
    assert "LBF_TTL" in capsys.readouterr().err


def test_status_shows_the_optional_features(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = new_cloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("web", "127.0.1.21")
    env = EIP_ENV | {"LBF_LB_MIN_BACKENDS": "1"}
    settle(cloud, env)
    capsys.readouterr()

    assert main(["status"], environ=env, services=cloud.services(), clock=cloud.clock) == 0

    out = capsys.readouterr().out
    assert "Elastic IP eipalloc-0123456789abcdef0 (198.51.100.7) is on lb1" in out
    assert "LBF_LB_MIN_BACKENDS=1: may take over: lb1" in out
