"""Where two rules meet (SPEC): a skipped instance in a mode that moves things, a stopped one with
a tag that does not parse, a missing address, a changed TTL, a pool that fails a little each round.

Every case runs through the public entry points an operator's traffic takes: the scheduled job
(`jobs.reconcile`), the event job (`probe=False`), the command line's `main`, and the Chalice
app's handlers (chalice's test client, with the app's AWS services swapped for the in-memory ones
of tests/kit/cloud.py). The in-memory Route 53 applies a change batch atomically and refuses a DELETE
that does not match the record, as Route 53 does and moto does not: the TTL change of the active
record must go through the compare-and-swap, and only the fake would notice if it did not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chalicelib.__main__ import main
from chalicelib.core.model import RawInstance
from tests.kit.cloud import FakeCloud, small_cluster
from tests.kit.lambda_app import DEV_STAGE_ENV, LambdaApp
from tests.kit.runs import scheduled, scheduled_event, settle
from tests.kit.settings import environment, settings

ROOT = Path(__file__).resolve().parents[2]
# The app's dev stage (.chalice/config.json): every run kind shares its cluster and domain.
CLUSTER = "web-dev"
DOMAIN = "edge-dev.example.com"
ACTIVE = f"lb.{DOMAIN}"
OWNERSHIP = f"_lbf.{DOMAIN}"
EIP = "198.51.100.7"  # the in-memory EC2's Elastic IP
LB1, LB2 = "127.0.0.11", "127.0.0.12"
NEW_LB1 = "127.0.0.13"  # lb1 after a stop and a start
WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")
MODES = {
    "dns": {},
    "eip": {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"},
    "active-active": {"LBF_ACTIVE_MODE": "all"},
}
ADDRESSING = {"private": {"LBF_LB_ADDRESS": "private"}, "public": {"LBF_LB_ADDRESS": "public"}}
RUN_KINDS = ["scheduled", "event", "cli", "app"]

Runner = Callable[[str, str | None], None]


@pytest.fixture
def cloud() -> FakeCloud:
    return small_cluster(webs=WEBS, cluster=CLUSTER)


@pytest.fixture
def runner(
    cloud: FakeCloud, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, dict[str, str]], Runner]:
    """`runner(kind, env)(handler, instance_id)` runs one invocation of that kind."""

    def make(kind: str, env: dict[str, str]) -> Runner:
        def run(handler: str, instance_id: str | None) -> None:
            concerning = instance_id or next(iter(cloud.ec2.instances))
            if kind == "scheduled":
                scheduled(cloud, settings(env))
            elif kind == "event":
                scheduled_event(cloud, settings(env), concerning)
            elif kind == "cli":
                command = "reconcile"
                assert main(
                    [command], environ=env, services=cloud.services(), clock=cloud.clock
                ) in (
                    0,
                    1,
                )
                cloud.clock.advance(60)
            else:
                # The stage's Lambda time on the fake clock: chalice's own test context reports
                # about 3 s left, in which no round may start.
                app = LambdaApp(monkeypatch, cloud, environ=env)
                if handler == "reconcile" or instance_id is None:
                    app.invoke("reconcile")
                else:
                    state = cloud.ec2.instances[instance_id].state
                    app.invoke("on_instance_change", {"instance-id": instance_id, "state": state})

        return run

    return make


def ids(cloud: FakeCloud) -> tuple[str, str]:
    lb1, lb2 = list(cloud.ec2.instances)[:2]
    return lb1, lb2


def settle_on_lb1(cloud: FakeCloud, env: dict[str, str]) -> None:
    """Two scheduled runs: verdicts, records, the list, the Elastic IP, all in place on lb1."""
    settle(cloud, settings(env))
    lb1, _ = ids(cloud)
    assert cloud.route53.value(f"lb1.{DOMAIN}") == (LB1,)
    if env.get("LBF_MODE") == "eip":
        assert cloud.ec2.eip_holder == lb1
    elif env.get("LBF_ACTIVE_MODE") == "all":
        assert cloud.route53.value(ACTIVE) == (LB1, LB2)
    else:
        assert cloud.route53.value(ACTIVE) == (LB1,)


def stop(cloud: FakeCloud, instance_id: str, *, public: bool) -> None:
    """EC2 stops it: it keeps its private IP; a public one is given up."""
    raw = cloud.ec2.instances[instance_id]
    cloud.ec2.instances[instance_id] = RawInstance(
        instance_id=raw.instance_id,
        state="stopped",
        launch_time=raw.launch_time,
        private_ip=raw.private_ip,
        public_ip=None if public else raw.public_ip,
        tags=raw.tags,
    )


def tag_writes(cloud: FakeCloud, instance_id: str, since: int) -> list[object]:
    return [
        detail
        for operation, detail in cloud.calls.log[since:]
        if operation == "CreateTags" and isinstance(detail, tuple) and instance_id in detail[0]
    ]


def assert_active_on(cloud: FakeCloud, mode: str, instance_id: str, address: str) -> None:
    if mode == "eip":
        assert cloud.ec2.eip_holder == instance_id
        assert cloud.route53.value(ACTIVE) == (EIP,)
    else:
        assert cloud.route53.value(ACTIVE) == (address,)


# --- EC2's state outranks a tag ------------------------------------------------------------------


@pytest.mark.parametrize("kind", RUN_KINDS)
@pytest.mark.parametrize("addressing", sorted(ADDRESSING))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_skipped_active_lb_that_ec2_stops_loses_its_record_and_the_active_role(
    cloud: FakeCloud,
    runner: Callable[[str, dict[str, str]], Runner],
    mode: str,
    addressing: str,
    kind: str,
) -> None:
    """The issue's repro: a typo in lbf:maintenance on the active LB, then EC2 stops it."""
    env = environment(DEV_STAGE_ENV, MODES[mode], ADDRESSING[addressing])
    settle_on_lb1(cloud, env)
    lb1, lb2 = ids(cloud)
    cloud.ec2.set_tag(lb1, "lbf:maintenance", "Drain")
    scheduled(cloud, settings(env))
    stop(cloud, lb1, public=addressing == "public")

    runner(kind, env)("on_instance_change", lb1)

    assert_active_on(cloud, mode, lb2, LB2)
    assert cloud.route53.value(f"lb1.{DOMAIN}") is None  # a stopped LB's record is removed
    assert cloud.route53.value(f"lb2.{DOMAIN}") == (LB2,)
    owned = cloud.route53.records[(OWNERSHIP, "TXT")].values
    assert '"lb1"' not in owned
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"


@pytest.mark.parametrize("kind", RUN_KINDS)
@pytest.mark.parametrize("addressing", sorted(ADDRESSING))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_skipped_active_lb_back_from_a_stop_with_a_new_address_takes_what_it_has_along(
    cloud: FakeCloud,
    runner: Callable[[str, dict[str, str]], Runner],
    mode: str,
    addressing: str,
    kind: str,
) -> None:
    """An address is EC2's, not a tag: a skipped LB stopped and started between two runs keeps
    its own record and the active role, at its new address, and no tag of it is written."""
    env = environment(DEV_STAGE_ENV, MODES[mode], ADDRESSING[addressing])
    settle_on_lb1(cloud, env)
    lb1, _ = ids(cloud)
    cloud.ec2.set_tag(lb1, "lbf:maintenance", "Drain")
    scheduled(cloud, settings(env))
    since = len(cloud.calls.log)
    cloud.ec2.set_state(lb1, "running", address=NEW_LB1)

    runner(kind, env)("on_instance_change", lb1)

    assert cloud.route53.value(f"lb1.{DOMAIN}") == (NEW_LB1,)
    assert cloud.route53.value(f"lb2.{DOMAIN}") == (LB2,)
    if mode == "active-active":
        assert cloud.route53.value(ACTIVE) == (LB2, NEW_LB1)  # in address order
    else:
        assert_active_on(cloud, mode, lb1, NEW_LB1)
    assert tag_writes(cloud, lb1, since) == []


def test_a_skipped_stopped_lb_is_a_failover_with_its_notice(cloud: FakeCloud) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    lb1, _ = ids(cloud)
    cloud.ec2.set_tag(lb1, "lbf:name", "LB-1")
    scheduled(cloud, settings(env))
    stop(cloud, lb1, public=False)

    report = scheduled(cloud, settings(env), rounds=1, probe=False, concerning=lb1)

    assert [(f.moved_from, f.moved_to) for f in report.failovers] == [(lb1, "lb2")]
    assert any("moved off" in m and "stopped" in m for m in cloud.sns.messages)


# --- frozen means its tags are frozen, not its health ----------------------------------------------


@pytest.mark.parametrize("kind", RUN_KINDS)
@pytest.mark.parametrize("addressing", sorted(ADDRESSING))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_running_lb_whose_name_tag_stops_parsing_keeps_its_record_and_its_role(
    cloud: FakeCloud,
    runner: Callable[[str, dict[str, str]], Runner],
    mode: str,
    addressing: str,
    kind: str,
) -> None:
    """The issue's repro: a running LB's lbf:name edited into something that does not parse."""
    env = environment(DEV_STAGE_ENV, MODES[mode], ADDRESSING[addressing])
    settle_on_lb1(cloud, env)
    lb1, lb2 = ids(cloud)
    mark = len(cloud.calls.log)
    cloud.ec2.set_tag(lb1, "lbf:name", "lb1\n")

    run = runner(kind, env)
    run("reconcile", lb1)
    run("on_instance_change", lb1)

    assert cloud.route53.value(f"lb1.{DOMAIN}") == (LB1,)  # its own record, found by address
    assert '"lb1"' in cloud.route53.records[(OWNERSHIP, "TXT")].values
    if mode == "active-active":
        assert cloud.route53.value(ACTIVE) == (LB1, LB2)  # its place in the record
    else:
        assert_active_on(cloud, mode, lb1, LB1)
    assert tag_writes(cloud, lb1, mark) == []  # its tags are never written while skipped
    assert cloud.ec2.tag(lb2, "lbf:state") == ("active" if mode == "active-active" else "standby")
    assert LB1 in cloud.ssm.parameters[f"/lbf/{CLUSTER}/lbs"].split()  # its place in the list


@pytest.mark.parametrize("kind", ["scheduled", "cli"])
@pytest.mark.parametrize("addressing", sorted(ADDRESSING))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_skipped_active_lb_whose_probes_fail_loses_the_active_role(
    cloud: FakeCloud,
    runner: Callable[[str, dict[str, str]], Runner],
    mode: str,
    addressing: str,
    kind: str,
) -> None:
    env = environment(DEV_STAGE_ENV, MODES[mode], ADDRESSING[addressing])
    settle_on_lb1(cloud, env)
    lb1, lb2 = ids(cloud)
    cloud.ec2.set_tag(lb1, "lbf:maintenance", "drain please")
    scheduled(cloud, settings(env))
    if mode != "active-active":
        assert_active_on(cloud, mode, lb1, LB1)
    cloud.prober.dead.add(LB1)

    runner(kind, env)("reconcile", None)  # LBF_FALL=3 rounds of the six

    assert_active_on(cloud, mode, lb2, LB2)
    assert cloud.route53.value(f"lb1.{DOMAIN}") == (LB1,)  # a running skipped LB keeps its record
    assert cloud.ec2.tag(lb1, "lbf:health") == "healthy"  # ... and its tags, as they were


def test_a_skipped_lb_that_answers_again_is_never_newly_chosen(cloud: FakeCloud) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    _, lb2 = ids(cloud)
    cloud.ec2.set_tag(lb2, "lbf:maintenance", "Drain")
    cloud.prober.dead.add(LB1)

    report = scheduled(cloud, settings(env))

    assert cloud.route53.value(ACTIVE) == (LB1,)  # left on lb1: lb2 is skipped, never chosen
    assert any("no load balancer is eligible" in m for m in cloud.sns.messages), report.notes


@pytest.mark.parametrize("kind", ["scheduled", "cli", "app"])
def test_a_skipped_web_server_keeps_its_entry_while_it_answers(
    cloud: FakeCloud, runner: Callable[[str, dict[str, str]], Runner], kind: str
) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    web = list(cloud.ec2.instances)[2]
    backends = f"/lbf/{CLUSTER}/backends"
    whole = " ".join(f"{w}:80" for w in WEBS)
    assert cloud.ssm.parameters[backends] == whole
    cloud.ec2.set_tag(web, "lbf:port", "80a")

    runner(kind, env)("reconcile", None)
    assert cloud.ssm.parameters[backends] == whole

    cloud.prober.dead.add(WEBS[0])
    scheduled(cloud, settings(env))
    assert cloud.ssm.parameters[backends] == " ".join(f"{w}:80" for w in WEBS[1:])


def test_status_says_why_each_instance_is_skipped(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    lb1, _ = ids(cloud)
    web = list(cloud.ec2.instances)[2]
    cloud.ec2.set_tag(lb1, "lbf:name", "LB1")
    cloud.ec2.set_tag(web, "lbf:port", "0")
    capsys.readouterr()

    assert (
        main(["status", "--json"], environ=env, services=cloud.services(), clock=cloud.clock) == 0
    )

    rows = {row["instance"]: row for row in json.loads(capsys.readouterr().out)["instances"]}
    notes = {key: [note["text"] for note in row["notes"]] for key, row in rows.items()}
    assert "skipped: lbf:name 'LB1' is not a DNS label" in notes[lb1]
    assert f"holds lb.{DOMAIN}" in notes[lb1]
    assert "skipped: lbf:port '0' is not a port 1-65535" in notes[web]
    assert "in backend list" in notes[web]


# --- a running instance without the address the settings select ------------------------------------


@pytest.mark.parametrize("kind", RUN_KINDS)
def test_a_running_lb_without_a_public_ipv4_is_skipped_loudly_once(
    cloud: FakeCloud, runner: Callable[[str, dict[str, str]], Runner], kind: str
) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["public"])
    settle_on_lb1(cloud, env)
    lb3 = cloud.ec2.add("lb", "127.0.0.13", cluster=CLUSTER)
    raw = cloud.ec2.instances[lb3]
    cloud.ec2.instances[lb3] = RawInstance(
        lb3, "running", raw.launch_time, raw.private_ip, None, raw.tags
    )
    mark = len(cloud.calls.log)

    run = runner(kind, env)
    run("on_instance_change", lb3)
    run("on_instance_change", lb3)

    about = [m for m in cloud.sns.messages if lb3 in m]
    assert len(about) == 1, cloud.sns.messages
    assert "running without a public IPv4 address (LBF_LB_ADDRESS=public)" in about[0]
    assert tag_writes(cloud, lb3, mark) == []  # not silently given a name it cannot serve
    assert cloud.route53.value(f"lb3.{DOMAIN}") is None


def test_an_ipv6_only_web_server_under_private_addressing_is_skipped_loudly_once(
    cloud: FakeCloud,
) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    web = cloud.ec2.add("web", "127.0.1.24", cluster=CLUSTER)
    raw = cloud.ec2.instances[web]
    cloud.ec2.instances[web] = RawInstance(
        web, "running", raw.launch_time, None, "2001:db8::24", raw.tags
    )

    scheduled(cloud, settings(env))
    scheduled(cloud, settings(env))

    about = [m for m in cloud.sns.messages if web in m]
    assert about == [
        f"instance {web} skipped: running without a private IPv4 address (LBF_POOL_ADDRESS=private)"
    ]


def test_status_says_an_eip_mode_lb_needs_its_own_public_ipv4(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(DEV_STAGE_ENV, MODES["eip"], ADDRESSING["public"])
    settle_on_lb1(cloud, env)
    _, lb2 = ids(cloud)
    raw = cloud.ec2.instances[lb2]
    cloud.ec2.instances[lb2] = RawInstance(
        lb2, "running", raw.launch_time, raw.private_ip, None, raw.tags
    )
    capsys.readouterr()

    assert (
        main(["status", "--wide"], environ=env, services=cloud.services(), clock=cloud.clock) == 0
    )

    line = next(line for line in capsys.readouterr().out.splitlines() if lb2 in line)
    assert "needs LBs with their own public IPv4" in line


# --- LBF_TTL is the TTL of every record written --------------------------------------------------


@pytest.mark.parametrize("kind", RUN_KINDS)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_changed_ttl_reaches_every_record_on_the_next_run(
    cloud: FakeCloud, runner: Callable[[str, dict[str, str]], Runner], mode: str, kind: str
) -> None:
    """The issue's repro: LBF_TTL lowered from 300 to 10."""
    env = environment(DEV_STAGE_ENV, MODES[mode], ADDRESSING["private"])
    settle_on_lb1(cloud, env | {"LBF_TTL": "300"})
    active_before = cloud.route53.records[(ACTIVE, "A")]
    assert active_before.ttl == 300
    batches = len(cloud.route53.batches)

    runner(kind, env | {"LBF_TTL": "10"})("on_instance_change", ids(cloud)[0])

    assert {r.name: r.ttl for r in cloud.route53.records.values()} == {
        f"lb1.{DOMAIN}": 10,
        f"lb2.{DOMAIN}": 10,
        ACTIVE: 10,
        OWNERSHIP: 10,
    }
    # The active record through the compare-and-swap: the exact record read, then the new one,
    # in the same batch as the rest.
    [batch] = cloud.route53.batches[batches:]
    active_changes = [(c.action, c.record) for c in batch if c.record.name == ACTIVE]
    assert active_changes == [
        ("DELETE", active_before),
        ("CREATE", active_before.__class__(ACTIVE, "A", 10, active_before.values)),
    ]


# --- LBF_MAX_POOL_DROP is per run ------------------------------------------------------------------

EIGHT = tuple(f"127.0.1.{n}" for n in range(31, 39))


def pool_of_eight() -> FakeCloud:
    cloud = FakeCloud()
    cloud.ec2.add("lb", LB1, name="lb1", cluster=CLUSTER)
    for address in EIGHT:
        cloud.ec2.add("web", address, cluster=CLUSTER)
    return cloud


@pytest.mark.parametrize("kind", ["scheduled", "cli"])
def test_a_pool_failing_a_little_each_round_loses_at_most_max_pool_drop_in_one_run(
    kind: str,
) -> None:
    """The issue's repro: of eight web servers 4 fail in round 1, 2 more in round 3, 1 more in
    round 5 (LBF_FALL=1, so each failure is a verdict in its round)."""
    cloud = pool_of_eight()
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"], fall="1", max_pool_drop="50")
    settle_runs = 2
    for _ in range(settle_runs):
        scheduled(cloud, settings(env))
    backends = f"/lbf/{CLUSTER}/backends"
    assert len(cloud.ssm.parameters[backends].split()) == 8
    start = cloud.clock.now()

    def dead(address: str, now: float) -> bool:
        rank = EIGHT.index(address) if address in EIGHT else -1
        into = now - start
        return (0 <= rank < 4) or (4 <= rank < 6 and into >= 20) or (rank == 6 and into >= 40)

    cloud.prober.dead_when = dead
    lists: list[str] = []
    cloud.calls.before = lambda operation, detail: (
        lists.append(detail[1])  # type: ignore[index]
        if operation == "PutParameter" and detail[0] == backends  # type: ignore[index]
        else None
    )
    if kind == "cli":
        main(["reconcile"], environ=env, services=cloud.services(), clock=cloud.clock)
    else:
        scheduled(cloud, settings(env))

    assert cloud.prober.rounds[-1] - start >= 50  # the run reached round 6
    assert min(len(text.split()) for text in lists) == 4  # 50% of the 8 it started with
    assert cloud.ssm.parameters[backends] == " ".join(f"{a}:80" for a in EIGHT[4:])
    assert any("LBF_MAX_POOL_DROP=50%" in m for m in cloud.sns.messages)


def test_a_first_run_with_nothing_published_has_no_bound() -> None:
    cloud = pool_of_eight()
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"], max_pool_drop="10")
    cloud.prober.dead |= set(EIGHT[:6])

    scheduled(cloud, settings(env))

    assert cloud.ssm.parameters[f"/lbf/{CLUSTER}/backends"] == " ".join(
        f"{a}:80" for a in EIGHT[6:]
    )


def test_stopped_web_servers_are_not_bounded_by_max_pool_drop() -> None:
    cloud = pool_of_eight()
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"], max_pool_drop="25")
    scheduled(cloud, settings(env))
    scheduled(cloud, settings(env))
    webs = list(cloud.ec2.instances)[1:]
    for web in webs[:5]:
        cloud.ec2.set_state(web, "stopped")

    scheduled(cloud, settings(env), rounds=1, probe=False, concerning=webs[0])

    assert cloud.ssm.parameters[f"/lbf/{CLUSTER}/backends"] == " ".join(
        f"{a}:80" for a in EIGHT[5:]
    )


@pytest.mark.parametrize("kind", RUN_KINDS)
def test_a_new_lb_is_never_given_the_name_of_a_skipped_lbs_own_record(
    cloud: FakeCloud, runner: Callable[[str, dict[str, str]], Runner], kind: str
) -> None:
    """A skipped LB whose lbf:name does not parse has no name in the inventory; the lowest free
    `lbN` for a newcomer must not be the one its own record has."""
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    lb1, _ = ids(cloud)
    cloud.ec2.set_tag(lb1, "lbf:name", "lb1 ")
    newcomer = cloud.ec2.add("lb", "127.0.0.13", cluster=CLUSTER)

    runner(kind, env)("on_instance_change", newcomer)

    assert cloud.route53.value(f"lb1.{DOMAIN}") == (LB1,)
    assert cloud.ec2.tag(newcomer, "lbf:name") == "lb3"
    assert cloud.route53.value(f"lb3.{DOMAIN}") == ("127.0.0.13",)


# --- dry run and pause: the same decisions, nothing written ----------------------------------------


@pytest.mark.parametrize("how", ["plan", "dry-run", "paused"])
def test_a_skipped_stopped_lb_is_planned_off_and_nothing_is_written(
    cloud: FakeCloud, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"], ttl="30")
    settle_on_lb1(cloud, environment(DEV_STAGE_ENV, ADDRESSING["private"]))
    lb1, _ = ids(cloud)
    cloud.ec2.set_tag(lb1, "lbf:name", "lb1!")
    stop(cloud, lb1, public=False)
    if how == "paused":
        cloud.ssm.parameters[f"/lbf/{CLUSTER}/paused"] = "true"
    mark = len(cloud.calls.writes())
    capsys.readouterr()

    if how == "plan":
        code = main(["plan"], environ=env, services=cloud.services(), clock=cloud.clock)
        planned = capsys.readouterr().out
    else:
        extra = {"LBF_DRY_RUN": "true"} if how == "dry-run" else {}
        report = scheduled(cloud, settings(env | extra))
        code, planned = (0 if report.ok else 1), "\n".join(report.planned)

    assert code == 0
    assert f"moved off {lb1} (stopped) to lb2" in planned
    assert f"DELETE lb1.{DOMAIN} A {LB1}" in planned
    assert f"CREATE lb.{DOMAIN} A {LB2}" in planned
    # While paused the notices still go out and are remembered (SPEC "Pausing"); nothing else.
    notices = f"/lbf/{CLUSTER}/notices"
    writes = [
        w
        for w in cloud.calls.writes()[mark:]
        if w[0] != "Publish"
        and not (how == "paused" and w[0] == "PutParameter" and w[1][0] == notices)
    ]
    assert writes == []
    assert cloud.route53.value(ACTIVE) == (LB1,)


def test_a_listed_web_server_whose_verdict_is_lost_keeps_its_entry(cloud: FakeCloud) -> None:
    """Unknown is never a reason to move: a server whose lbf:health tag is gone (a run killed
    between the list and the tags) is not taken out of the list outside LBF_MAX_POOL_DROP."""
    env = environment(DEV_STAGE_ENV, ADDRESSING["private"])
    settle_on_lb1(cloud, env)
    web = list(cloud.ec2.instances)[2]
    cloud.ec2.set_tag(web, "lbf:health", None)
    cloud.ec2.set_tag(web, "lbf:probe", None)
    whole = " ".join(f"{w}:80" for w in WEBS)

    scheduled(cloud, settings(env), rounds=1, probe=False, concerning=web)

    assert cloud.ssm.parameters[f"/lbf/{CLUSTER}/backends"] == whole
