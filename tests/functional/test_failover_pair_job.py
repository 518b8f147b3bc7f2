"""The failover pair (LBF_DNS_FAILOVER=route53) through the reconcile job, on the in-memory AWS.

The in-memory Route 53 refuses what Route 53 refuses and moto accepts: a plain record beside a
failover pair, and a DELETE that no longer matches every field (SetIdentifier, Failover and
HealthCheckId included). Its checkers' answers are the test's to decide (moto's are a fixed
"Success"), so Route 53's own view of each check can disagree with the controller's probes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from chalicelib import commands, render
from chalicelib.__main__ import main
from chalicelib.core.dns import RecordChange
from chalicelib.core.failover_pair import PRIMARY
from chalicelib.core.model import Record
from chalicelib.errors import AwsError
from tests.kit.cloud import (
    FAKE_CLOUD_ENV,
    FAKE_DOMAIN,
    FakeCloud,
    Killed,
    kill_at_write,
    record_key,
)
from tests.kit.runs import converge, event, run
from tests.kit.settings import environment, settings

ACTIVE = f"lb.{FAKE_DOMAIN}"
# Route 53's checkers reach only public addresses: these are global ones, never contacted (the
# fake prober judges by private address, the fake checkers by a set).
LB1, LB2, LB3 = "52.1.2.11", "52.1.2.12", "52.1.2.13"
PAIR = {"LBF_LB_ADDRESS": "public", "LBF_DNS_FAILOVER": "route53"}


@dataclass
class Cluster:
    cloud: FakeCloud
    lb1: str
    lb2: str
    lb3: str

    def pair(self) -> tuple[tuple[str, ...], str | None, tuple[str, ...], str | None]:
        """PRIMARY's values and check, SECONDARY's values and check."""
        records = self.cloud.route53.records
        primary = records[(ACTIVE, "A primary")]
        secondary = records[(ACTIVE, "A secondary")]
        return (
            primary.values,
            primary.health_check_id,
            secondary.values,
            secondary.health_check_id,
        )

    def check_of(self, address: str) -> str:
        return next(
            c.health_check_id
            for c in self.cloud.health_checks.checks.values()
            if c.spec.address == address
        )

    def kill(self, private: str) -> None:
        self.cloud.prober.dead.add(private)


@pytest.fixture
def cluster() -> Cluster:
    cloud = FakeCloud()
    lb1 = cloud.ec2.add("lb", "10.0.0.11", name="lb1", public=LB1)
    lb2 = cloud.ec2.add("lb", "10.0.0.12", name="lb2", public=LB2)
    lb3 = cloud.ec2.add("lb", "10.0.0.13", name="lb3", public=LB3, state="stopped")
    for host in (21, 22, 23):
        cloud.ec2.add("web", f"10.0.1.{host}")
    cloud.health_checks.seen_healthy = {LB1, LB2, LB3}
    return Cluster(cloud, lb1, lb2, lb3)


CONFIG = settings(FAKE_CLOUD_ENV, PAIR)


def settled(cluster: Cluster) -> None:
    """One run: round 1 makes the pair, then the checks (a failover never waits for a check);
    round 2 binds the pair to them."""
    converge(cluster.cloud, CONFIG)


def test_the_pair_is_made_and_bound_to_each_lbs_check(cluster: Cluster) -> None:
    settled(cluster)

    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)
    assert cluster.pair() == ((LB1,), hc1, (LB2,), hc2)
    assert (ACTIVE, "A") not in cluster.cloud.route53.records  # never a plain record beside it
    spec = cluster.cloud.health_checks.checks[hc1].spec
    assert (spec.request_interval, spec.failure_threshold) == (30, 3)
    # The `_lbf` TXT lists the active name, as it does for the plain record.
    ownership = cluster.cloud.route53.records[(f"_lbf.{FAKE_DOMAIN}", "TXT")]
    assert '"lb"' in ownership.values


def test_a_controller_that_stops_after_its_first_run_leaves_the_pair_bound(
    cluster: Cluster,
) -> None:
    """Round 1 makes the pair, then the checks (a failover never waits for a check); round 2
    binds the pair to them, in one compare-and-swap batch. Left unbound until a next run, a
    controller stopped after its first run would leave a pair Route 53 always answers with the
    PRIMARY, whatever became of it."""
    converge(cluster.cloud, settings(FAKE_CLOUD_ENV, lb_address="public"))
    before = len(cluster.cloud.route53.batches)

    converge(cluster.cloud, settings(FAKE_CLOUD_ENV, PAIR, probe_rounds=2))

    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)
    assert cluster.pair() == ((LB1,), hc1, (LB2,), hc2)
    made, bound = cluster.cloud.route53.batches[before:]
    assert [(c.action, c.record.failover, c.record.health_check_id) for c in made] == [
        ("DELETE", None, None),
        ("CREATE", "PRIMARY", None),
        ("CREATE", "SECONDARY", None),
    ]
    assert [(c.action, c.record.failover, c.record.health_check_id) for c in bound] == [
        ("DELETE", "PRIMARY", None),
        ("DELETE", "SECONDARY", None),
        ("CREATE", "PRIMARY", hc1),
        ("CREATE", "SECONDARY", hc2),
    ]


def test_a_plain_record_becomes_the_pair_in_one_batch(cluster: Cluster) -> None:
    converge(cluster.cloud, settings(FAKE_CLOUD_ENV, lb_address="public"))
    plain = cluster.cloud.route53.records[(ACTIVE, "A")]

    settled(cluster)

    switch = next(b for b in cluster.cloud.route53.batches if RecordChange("DELETE", plain) in b)
    assert [(c.action, c.record.failover) for c in switch] == [
        ("DELETE", None),
        ("CREATE", "PRIMARY"),
        ("CREATE", "SECONDARY"),
    ]


def test_a_dead_primary_is_swapped_in_one_compare_and_swap_batch(cluster: Cluster) -> None:
    settled(cluster)
    before = {record_key(r): r for r in cluster.cloud.route53.records.values()}
    cluster.kill("10.0.0.11")

    report = converge(cluster.cloud, CONFIG)

    hc2 = cluster.check_of(LB2)
    # No other LB is eligible: SECONDARY holds PRIMARY's address without a check.
    assert cluster.pair() == ((LB2,), hc2, (LB2,), None)
    [swap] = [b for b in cluster.cloud.route53.batches[-1:]]
    assert [c.action for c in swap] == ["DELETE", "DELETE", "CREATE", "CREATE"]
    assert {c.record for c in swap if c.action == "DELETE"} == {
        before[(ACTIVE, "A primary")],
        before[(ACTIVE, "A secondary")],
    }
    assert [(f.moved_from, f.moved_to) for f in report.failovers] == [("lb1", "lb2")]


def test_a_stale_pair_is_rejected_not_overwritten(cluster: Cluster) -> None:
    """Another run rebinds PRIMARY's check between our read and our write: our DELETE no longer
    matches (Route 53 matches HealthCheckId too), and the re-read plans again from its view."""
    settled(cluster)
    cluster.kill("10.0.0.11")
    route53 = cluster.cloud.route53

    def race() -> None:
        key = (ACTIVE, "A primary")
        bound = cluster.check_of(LB2)  # a real check, bound where this run did not expect it
        route53.records[key] = replace(route53.records[key], health_check_id=bound)

    route53.before_change = race
    report = run(cluster.cloud, CONFIG)

    assert any("newer-view" in note or "re-read" in note for note in report.notes)
    assert cluster.pair()[0] == (LB2,)


def test_dry_run_and_pause_write_no_record(cluster: Cluster) -> None:
    settled(cluster)
    cluster.kill("10.0.0.11")
    batches = len(cluster.cloud.route53.batches)

    run(cluster.cloud, settings(FAKE_CLOUD_ENV, PAIR, dry_run=True))
    cluster.cloud.ssm.parameters[CONFIG.paused_parameter_name] = "true"
    run(cluster.cloud, CONFIG)

    assert len(cluster.cloud.route53.batches) == batches
    assert cluster.pair()[0] == (LB1,)


def primary_moves(cloud: FakeCloud) -> list[tuple[float, tuple[str, ...], tuple[str, ...]]]:
    """Each batch that moved PRIMARY: when, from which values, to which."""
    moves = []
    for at, batch in cloud.route53.history:
        old = [
            c.record.values for c in batch if c.action == "DELETE" and c.record.failover == PRIMARY
        ]
        new = [
            c.record.values for c in batch if c.action == "CREATE" and c.record.failover == PRIMARY
        ]
        if old and new and old != new:
            moves.append((at, old[0], new[0]))
    return moves


def test_a_second_swap_within_route53s_detection_time_is_held(cluster: Cluster) -> None:
    """lb1 dies and lb2 takes over; lb1 comes back and lb2 dies at once. The pair swaps back
    only once LBF_ROUTE53_INTERVAL x LBF_FALL (90 s) has passed since the first swap."""
    settled(cluster)
    cluster.kill("10.0.0.11")
    converge(cluster.cloud, CONFIG)
    cluster.cloud.prober.dead = {"10.0.0.12"}

    for _ in range(3):
        run(cluster.cloud, CONFIG)

    [(first, *there), (second, *back)] = primary_moves(cluster.cloud)
    assert (there, back) == ([(LB1,), (LB2,)], [(LB2,), (LB1,)])
    assert second - first >= CONFIG.rules.pair.detection_seconds == 90
    assert any("failover pair held on lb2" in m for m in cluster.cloud.sns.messages)


def test_back_to_the_plain_record_in_one_batch(cluster: Cluster) -> None:
    settled(cluster)

    converge(cluster.cloud, settings(FAKE_CLOUD_ENV, lb_address="public"))

    assert cluster.cloud.route53.records[(ACTIVE, "A")].values == (LB1,)
    [back] = cluster.cloud.route53.batches[-1:]
    assert [(c.action, c.record.failover) for c in back] == [
        ("DELETE", "PRIMARY"),
        ("DELETE", "SECONDARY"),
        ("CREATE", None),
    ]


def test_the_fake_refuses_a_plain_record_beside_the_pair_as_route53_does(cluster: Cluster) -> None:
    """moto accepts it; Route 53 refuses it. The in-memory Route 53 must refuse it too, or the
    one-batch switch above would prove nothing."""
    settled(cluster)
    with pytest.raises(Exception, match="non multivalue"):
        cluster.cloud.route53.change(
            [RecordChange("CREATE", Record(ACTIVE, "A", 60, (LB1,)))], "by hand"
        )


# --- move-active and drain, through the command line ---------------------------------------------


def command(cluster: Cluster, *args: str) -> int:
    environ = environment(FAKE_CLOUD_ENV, PAIR, sns_topic_arn=None)
    return main(
        list(args), environ=environ, services=cluster.cloud.services(), clock=cluster.cloud.clock
    )


def test_move_active_moves_the_pair_in_one_batch(cluster: Cluster) -> None:
    settled(cluster)
    batches = len(cluster.cloud.route53.batches)

    assert command(cluster, "move-active", "--to", "lb2", "--no-wait") == 0

    assert len(cluster.cloud.route53.batches) == batches + 1
    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)
    # The LB it left is eligible still: it is the one chosen next.
    assert cluster.pair() == ((LB2,), hc2, (LB1,), hc1)


def test_draining_the_primary_moves_the_pair_and_never_makes_the_drained_lb_secondary(
    cluster: Cluster,
) -> None:
    settled(cluster)

    assert command(cluster, "drain", "lb1") == 0

    assert cluster.pair() == ((LB2,), cluster.check_of(LB2), (LB2,), None)
    assert cluster.cloud.ec2.tag(cluster.lb1, "lbf:maintenance") == "drain"
    # A scheduled run afterwards keeps it so.
    converge(cluster.cloud, CONFIG)
    assert cluster.pair() == ((LB2,), cluster.check_of(LB2), (LB2,), None)


def test_status_shows_both_records_and_route53s_view_of_each_check(cluster: Cluster) -> None:
    settled(cluster)
    cluster.cloud.health_checks.seen_healthy = {LB2}
    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)

    # `status` reads Route 53's view of the pair's checks; a run's observe does not.
    view = commands.status(CONFIG, cluster.cloud.services(), cluster.cloud.clock, probe=False).world
    text = render.status_text(view, CONFIG)

    assert f"failover pair PRIMARY: lb1 {LB1}, check {hc1}: Route 53 sees it unhealthy" in text
    assert f"failover pair SECONDARY: lb2 {LB2}, check {hc2}: Route 53 sees it healthy" in text
    # What clients get from Route 53 while no controller runs.
    assert "Route 53 answers SECONDARY (lb2) by its checks" in text
    codes = [f["code"] for f in render.status_json(view, CONFIG)["features"]]
    assert codes == ["pair-primary", "pair-secondary", "pair-answer"]


def test_a_new_check_interval_makes_new_checks_moves_the_pair_then_deletes_the_old(
    cluster: Cluster,
) -> None:
    """Route 53 cannot change a check's interval: create the new check, move the pair to it,
    then delete the old one, never leaving the pair naming a check that is gone."""
    settled(cluster)
    old = cluster.pair()[1]
    fast = settings(FAKE_CLOUD_ENV, PAIR, route53_interval=10)
    checks = cluster.cloud.health_checks

    # Round 1 makes the 10 s checks, the pair still naming the old; round 2 moves it to them.
    converge(cluster.cloud, fast)
    assert cluster.pair()[1] != old
    assert old in checks.checks
    converge(cluster.cloud, fast)  # the next run's round 1 deletes the old ones

    primary_check = cluster.pair()[1]
    assert primary_check is not None
    assert checks.checks[primary_check].spec.request_interval == 10
    assert {c.spec.request_interval for c in checks.checks.values()} == {10}
    assert not any(op == "UpdateHealthCheck" for op, _ in checks.calls)


def test_status_judges_the_lb_route53_answers(cluster: Cluster) -> None:
    """Route 53 fails lb1's check and answers SECONDARY lb2: clients are given lb2, whatever
    PRIMARY holds, and `status` judges lb2."""
    settled(cluster)
    cluster.cloud.health_checks.seen_healthy = {LB2}

    verdict = commands.status(
        CONFIG, cluster.cloud.services(), cluster.cloud.clock, probe=False
    ).serving
    assert (verdict.ok, verdict.text) == (True, "serving: clients are given lb2, healthy")


def test_a_new_ttl_reaches_the_pair_while_no_lb_is_eligible(cluster: Cluster) -> None:
    """Both LBs fail, so the pair is left where it is; an operator changing LBF_TTL meanwhile
    still sees it on both records, as on a plain record left on its LB (found by the model-based
    test: the pair kept its old TTL until an LB recovered)."""
    settled(cluster)
    cluster.kill("10.0.0.11")
    cluster.kill("10.0.0.12")
    converge(cluster.cloud, CONFIG)
    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)

    converge(cluster.cloud, settings(FAKE_CLOUD_ENV, PAIR, ttl=300))

    records = cluster.cloud.route53.records
    assert cluster.pair() == ((LB1,), hc1, (LB2,), hc2)  # left where it is
    assert [records[(ACTIVE, f"A {role}")].ttl for role in ("primary", "secondary")] == [300, 300]


def test_a_new_ttl_reaches_a_plain_record_not_yet_made_a_pair(cluster: Cluster) -> None:
    """A plain record on an LB the controller judges ineligible is never made a pair; a new
    LBF_TTL still reaches it, as it does with LBF_DNS_FAILOVER=controller."""
    plain = settings(FAKE_CLOUD_ENV, lb_address="public")
    converge(cluster.cloud, plain)
    cluster.kill("10.0.0.11")
    cluster.kill("10.0.0.12")
    converge(cluster.cloud, plain)  # both judged unhealthy: the record is left on lb1

    converge(cluster.cloud, settings(FAKE_CLOUD_ENV, PAIR, ttl=300))

    assert cluster.cloud.route53.records[(ACTIVE, "A")] == Record(ACTIVE, "A", 300, (LB1,))


def test_route53s_view_is_read_once_per_check_interval_in_a_runs_rounds(cluster: Cluster) -> None:
    """Six rounds 10 s apart (a minute's run): the pair's two checks are read in round 1 and
    again once LBF_ROUTE53_INTERVAL (30 s) has passed, mid-run, never every round: the account's
    health-check API allows five requests a second, for every tool that uses it."""
    settled(cluster)
    checks = cluster.cloud.health_checks
    before = checks.count("GetHealthCheckStatus")
    config = settings(FAKE_CLOUD_ENV, PAIR, probe_interval=10, probe_rounds=6)

    converge(cluster.cloud, config)

    assert checks.count("GetHealthCheckStatus") - before == 2 * 2


# --- where two rules meet, for the pair -----------------------------------------------------------


def test_a_run_that_cannot_read_the_checks_keeps_the_pair_bound_to_them(cluster: Cluster) -> None:
    """ListHealthChecks refused (a missing permission, throttling): the run fails and says so,
    but the pair keeps its checks, through a swap too. Rewritten without them, it would be a pair
    Route 53 answers with the PRIMARY whatever its checkers see, for as long as the read fails."""
    settled(cluster)
    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)
    cluster.cloud.health_checks.fail_read = AwsError(
        "route53", "ListHealthChecks", "AccessDenied", "not authorized"
    )
    batches = len(cluster.cloud.route53.batches)

    report = run(cluster.cloud, CONFIG)

    assert not report.ok
    assert "health checks not read" in " ".join(report.errors)
    assert cluster.pair() == ((LB1,), hc1, (LB2,), hc2)
    assert len(cluster.cloud.route53.batches) == batches  # a steady pair: nothing to write

    cluster.kill("10.0.0.11")
    run(cluster.cloud, CONFIG)

    assert cluster.pair() == ((LB2,), hc2, (LB2,), None)  # lb2 moved with its check


def test_a_frozen_primary_that_stops_loses_the_pair_and_then_its_check(cluster: Cluster) -> None:
    """EC2's state outranks a tag: lb1's lbf:name stops parsing (frozen, it keeps the pair),
    then lb1 stops. The event run moves the pair off it, and its check goes after the batch
    that stopped naming it; kept, it would be billed for good at an address lb1 let go."""
    settled(cluster)
    cluster.cloud.ec2.set_tag(cluster.lb1, "lbf:name", "lb 1")
    converge(cluster.cloud, CONFIG)
    hc1, hc2 = cluster.check_of(LB1), cluster.check_of(LB2)
    assert cluster.pair() == ((LB1,), hc1, (LB2,), hc2)

    cluster.cloud.ec2.instances[cluster.lb1] = replace(
        cluster.cloud.ec2.instances[cluster.lb1], state="stopped", public_ip=None
    )
    before = len(cluster.cloud.calls.writes())
    event(cluster.cloud, CONFIG, cluster.lb1)

    assert cluster.pair() == ((LB2,), hc2, (LB2,), None)
    assert set(cluster.cloud.health_checks.checks) == {hc2}
    writes = [op for op, _ in cluster.cloud.calls.writes()[before:]]
    assert writes.index("ChangeResourceRecordSets") < writes.index("DeleteHealthCheck")


@pytest.mark.parametrize(
    ("seen_healthy", "notice"),
    [
        (
            {LB2},
            "vantages disagree on PRIMARY lb1: Route 53's checkers see it unhealthy, the "
            "controller healthy; the pair stays as it is",
        ),
        # Route 53 alone could no longer fail over: the operator hears that too.
        (
            {LB1},
            "vantages disagree on SECONDARY lb2: Route 53's checkers see it unhealthy, the "
            "controller healthy; Route 53 would not fail over to it, and the pair stays as it is",
        ),
    ],
    ids=["primary", "secondary"],
)
def test_route53_failing_a_pair_lb_the_controller_sees_healthy_is_one_notice(
    cluster: Cluster, seen_healthy: set[str], notice: str
) -> None:
    settled(cluster)
    cluster.cloud.health_checks.seen_healthy = seen_healthy
    batches = len(cluster.cloud.route53.batches)

    run(cluster.cloud, CONFIG)
    run(cluster.cloud, CONFIG)

    assert len(cluster.cloud.route53.batches) == batches  # the pair stays
    assert [m for m in cluster.cloud.sns.messages if "vantages disagree" in m] == [notice]


def test_draining_the_secondary_takes_it_out_of_the_pair_before_its_tag(
    cluster: Cluster,
) -> None:
    """A drained LB is never made active; left SECONDARY until the next scheduled run, Route 53
    would still fail clients over to it (with no controller running, for as long as none runs).
    The batch that takes it out goes first, and is no failover."""
    settled(cluster)
    hc1 = cluster.check_of(LB1)
    writes = len(cluster.cloud.calls.writes())

    assert command(cluster, "drain", "lb2") == 0

    assert cluster.pair() == ((LB1,), hc1, (LB1,), None)
    assert cluster.cloud.ec2.tag(cluster.lb2, "lbf:maintenance") == "drain"
    done = [op for op, _ in cluster.cloud.calls.writes()[writes:]]
    assert done.index("ChangeResourceRecordSets") < done.index("CreateTags")
    history = cluster.cloud.ssm.parameters.get(CONFIG.history_parameter_name, "")
    assert "failover" not in history


def addresses_checked(cluster: Cluster) -> list[tuple[str, int]]:
    """Each health check's address and interval: one per running LB, never a leftover."""
    return sorted(
        (c.spec.address, c.spec.request_interval)
        for c in cluster.cloud.health_checks.checks.values()
    )


def stop(cluster: Cluster, instance_id: str) -> None:
    """EC2 stops it: its public address is released."""
    raw = cluster.cloud.ec2.instances[instance_id]
    cluster.cloud.ec2.instances[instance_id] = replace(raw, state="stopped", public_ip=None)


def test_an_event_run_moves_the_pair_off_a_primary_that_stopped(cluster: Cluster) -> None:
    """The event run acts on EC2's state at once (no probes, no swap limit), as for the plain
    record: PRIMARY goes to lb2 with its check, and lb1's check goes after that batch."""
    settled(cluster)
    hc2 = cluster.check_of(LB2)
    stop(cluster, cluster.lb1)

    event(cluster.cloud, CONFIG, cluster.lb1)

    assert cluster.pair() == ((LB2,), hc2, (LB2,), None)
    assert addresses_checked(cluster) == [(LB2, 30)]


def test_with_three_lbs_the_next_one_becomes_secondary_with_its_check(cluster: Cluster) -> None:
    raw = cluster.cloud.ec2.instances[cluster.lb3]
    cluster.cloud.ec2.instances[cluster.lb3] = replace(raw, state="running")
    settled(cluster)
    converge(cluster.cloud, CONFIG)
    hc1, hc2, hc3 = (cluster.check_of(a) for a in (LB1, LB2, LB3))
    assert cluster.pair() == ((LB1,), hc1, (LB2,), hc2)  # only two in the pair

    cluster.kill("10.0.0.11")
    converge(cluster.cloud, CONFIG)

    assert cluster.pair() == ((LB2,), hc2, (LB3,), hc3)


def test_a_primary_without_a_public_address_is_moved_off(cluster: Cluster) -> None:
    """Running, but with no public IPv4 (LBF_LB_ADDRESS=public): skipped with that reason, and
    the address its PRIMARY record holds is no longer its."""
    settled(cluster)
    raw = cluster.cloud.ec2.instances[cluster.lb1]
    cluster.cloud.ec2.instances[cluster.lb1] = replace(raw, public_ip=None)

    converge(cluster.cloud, CONFIG)

    assert cluster.pair() == ((LB2,), cluster.check_of(LB2), (LB2,), None)


def test_a_steady_pair_writes_nothing_and_another_cluster_writes_nothing(
    cluster: Cluster,
) -> None:
    settled(cluster)
    converge(cluster.cloud, CONFIG)
    writes = len(cluster.cloud.calls.writes())

    converge(cluster.cloud, CONFIG)
    run(cluster.cloud, settings(FAKE_CLOUD_ENV, PAIR, cluster="other"))  # refused: not its domain

    assert cluster.cloud.calls.writes()[writes:] == []


@pytest.mark.parametrize(
    "second_opinion", [False, True], ids=["checks-only-for-the-pair", "second-opinion-on"]
)
def test_the_pair_off_and_on_again_keeps_one_check_per_lb(
    cluster: Cluster, second_opinion: bool
) -> None:
    settled(cluster)
    plain = settings(FAKE_CLOUD_ENV, lb_address="public", route53_health_checks=second_opinion)

    converge(cluster.cloud, plain)
    assert cluster.cloud.route53.records[(ACTIVE, "A")].values == (LB1,)
    settled(cluster)

    assert cluster.pair() == ((LB1,), cluster.check_of(LB1), (LB2,), cluster.check_of(LB2))
    assert addresses_checked(cluster) == [(LB1, 30), (LB2, 30)]


FAST = settings(FAKE_CLOUD_ENV, PAIR, route53_interval=10, ttl=120)


@pytest.mark.parametrize(
    ("change", "kill_at"),
    [
        # The pair's batch, its two checks, the bind.
        *(("plain-to-pair", k) for k in range(4)),
        # A new TTL, two 10 s checks, the bind, the swap, their tags, history and notices.
        *(("new-interval-and-swap", k) for k in range(12)),
    ],
)
def test_a_run_killed_at_any_write_is_mended_by_the_next(
    cluster: Cluster, change: str, kill_at: int
) -> None:
    """The Lambda runtime ends a run before any one of its writes: the next run leaves one
    bound pair and one check per running LB, at the interval asked for."""
    if change == "plain-to-pair":
        converge(cluster.cloud, settings(FAKE_CLOUD_ENV, lb_address="public"))
        config, primary, secondary, interval = CONFIG, LB1, LB2, 30
    else:
        settled(cluster)
        cluster.kill("10.0.0.11")
        config, primary, secondary, interval = FAST, LB2, LB2, 10
    cluster.cloud.calls.before = kill_at_write(kill_at)
    with pytest.raises(Killed):
        run(cluster.cloud, config)
    cluster.cloud.calls.before = None

    cluster.cloud.clock.advance(60)
    converge(cluster.cloud, config)
    converge(cluster.cloud, config)

    bound = cluster.check_of(secondary) if secondary != primary else None
    assert cluster.pair() == ((primary,), cluster.check_of(primary), (secondary,), bound)
    assert addresses_checked(cluster) == [(LB1, interval), (LB2, interval)]
    assert {r.ttl for r in cluster.cloud.route53.records.values()} == {config.ttl}


def test_with_lbf_lb_min_backends_the_secondary_has_confirmed_the_list(cluster: Cluster) -> None:
    """Route 53 fails clients over to SECONDARY without asking the controller: it is only an LB
    the controller could make active itself, one that confirmed the current list."""
    config = settings(FAKE_CLOUD_ENV, PAIR, lb_min_backends=1)
    cluster.cloud.ssm.outcome = lambda push: (
        "Failed" if push.instance_id == cluster.lb2 else "Success"
    )

    converge(cluster.cloud, config)
    converge(cluster.cloud, config)

    assert cluster.pair() == ((LB1,), cluster.check_of(LB1), (LB1,), None)


def test_a_first_run_beside_a_stopped_spare_pages_no_one(cluster: Cluster) -> None:
    """lb3 is stopped, lb1 and lb2 are still to be judged in round 1: the pair is made in
    round 2 and no notice goes out (unknown is never a reason to notify)."""
    settled(cluster)

    assert cluster.pair()[0] == (LB1,)
    assert cluster.cloud.sns.messages == []


def test_status_that_cannot_read_route53s_view_says_so_and_cannot_tell(cluster: Cluster) -> None:
    """GetHealthCheckStatus throttled (the account's five requests a second are shared): status
    says the view was not read, not that Route 53 has no report, claims no answer, and judges
    every record Route 53 could answer: lb2, SECONDARY, fails the live probe, so it cannot tell
    that clients are served."""
    settled(cluster)
    cluster.cloud.health_checks.fail_status = AwsError(
        "route53", "GetHealthCheckStatus", "Throttling", "Rate exceeded"
    )
    cluster.kill("10.0.0.12")

    found = commands.status(CONFIG, cluster.cloud.services(), cluster.cloud.clock, probe=True)
    text = " ".join(render.status_text(found.world, CONFIG).split())  # unwrapped

    assert "Route 53's view not read" in text
    assert "Throttling" in text
    assert "no recent report" not in text
    assert "Route 53 answers" not in text
    assert (found.serving.ok, found.serving.code) == (False, "lb-probe-failed")


def test_status_with_the_pair_switched_off_claims_no_answer_from_route53(cluster: Cluster) -> None:
    """LBF_DNS_FAILOVER back to controller, before the run that makes the pair a plain record:
    Route 53's view is not read with the setting off, so status says so rather than claiming
    which record Route 53 answers."""
    settled(cluster)
    plain = settings(FAKE_CLOUD_ENV, lb_address="public")

    found = commands.status(plain, cluster.cloud.services(), cluster.cloud.clock, probe=False)
    text = " ".join(render.status_text(found.world, plain).split())  # unwrapped

    assert "Route 53's view not read (LBF_DNS_FAILOVER is controller" in text
    assert "Route 53 answers" not in text
    assert found.serving.ok  # lb1 and lb2 are both healthy
