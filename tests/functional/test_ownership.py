"""Ownership by cluster: a typo in LBF_CLUSTER never takes a domain (SPEC "DNS records").

The tester's two findings, as runs against the in-memory AWS: a run of `egde` (a typo of `edge`,
no instances) deleted the real cluster's records, and a run of `other` (a cluster with one LB of
its own) took the domain over. Each is now refused before anything is planned, in every mode and
through every entry point, and the whole AWS state (records, instances and their tags,
parameters, pushes, health checks, SNS messages) is compared before and after: nothing written.

The `_lbf` TXT is only ever changed by compare-and-swap (the exact TXT read deleted, the new one
created, in one batch). moto accepts a stale DELETE, so the batches are pinned on the in-memory
Route 53, which applies a batch atomically and rejects a DELETE that does not match.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.__main__ import main
from chalicelib.core.dns import RecordChange
from chalicelib.core.model import Record
from tests.kit.cli_schema import valid
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.lambda_app import CLUSTER as STAGE_CLUSTER
from tests.kit.lambda_app import LambdaApp, emf_figures
from tests.kit.runs import scheduled, settle
from tests.kit.settings import environment, settings

DOMAIN = FAKE_DOMAIN
TXT = f"_lbf.{DOMAIN}"
ACTIVE = f"lb.{DOMAIN}"
EIP = "198.51.100.7"  # the in-memory EC2's Elastic IP
MODES: Mapping[str, Mapping[str, str]] = {
    "dns": {},
    "eip": {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"},
    "active-active": {"LBF_ACTIVE_MODE": "all"},
}


def env(mode: str, cluster: str, **extra: str) -> dict[str, str]:
    return environment(FAKE_CLOUD_ENV, MODES[mode], {"LBF_CLUSTER": cluster}, extra)


def everything(cloud: FakeCloud) -> dict[str, Any]:
    """All an operator could see change, deep-copied."""
    return copy.deepcopy(
        {
            "records": dict(cloud.route53.records),
            "instances": dict(cloud.ec2.instances),
            "eip": cloud.ec2.eip_holder,
            "parameters": dict(cloud.ssm.parameters),
            "pushes": list(cloud.ssm.commands),
            "health_checks": dict(cloud.health_checks.checks),
            "sns": list(cloud.sns.messages),
        }
    )


def edge_cluster(mode: str) -> FakeCloud:
    """The real cluster `edge`, settled: lb1, lb2 and the active record, the TXT naming it."""
    cloud = small_cluster(cluster="edge")
    settle(cloud, settings(env(mode, "edge")))
    return cloud


def with_other_cluster(cloud: FakeCloud) -> FakeCloud:
    """Cluster `other`, with one LB of its own named lb1 (the tester's second case)."""
    cloud.ec2.add("lb", "127.0.0.31", name="lb1", cluster="other")
    cloud.ec2.add("web", "127.0.1.31", cluster="other")
    return cloud


def cli(cloud: FakeCloud, environ: dict[str, str], *argv: str) -> int:
    return main(list(argv), environ=environ, services=cloud.services(), clock=cloud.clock)


# --- a run of another cluster writes nothing, in every mode and through every entry point ---------

# The operator's commands that write: pause and resume obey ownership like every write; the
# others refuse a domain that is not LBF_CLUSTER's the same way.
OPERATOR_COMMANDS = {
    "cli-pause": ["pause", "--reason", "maintenance"],
    "cli-resume": ["resume"],
    "cli-drain-lb": ["drain", "lb1"],
    "cli-undrain": ["undrain", "lb1"],
    "cli-accept-drop": ["accept-drop"],
    "cli-handover": ["handover", "next"],
}
ENTRY_POINTS = [
    "scheduled",
    "event",
    "cli-reconcile",
    "cli-plan",
    "cli-move-active",
    "cli-status",
    *OPERATOR_COMMANDS,
]
WRONG = ["typo-egde-no-instances", "other-cluster-with-its-own-lb"]


def run_entry(
    entry: str, cloud: FakeCloud, environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int | None, str]:
    """Runs one entry point of the controller; (its exit code on the command line, its text)."""
    from chalicelib import jobs
    from chalicelib.config import Settings

    config = Settings.from_env(environ)
    if entry == "scheduled":
        report = jobs.reconcile(config, cloud.services(), cloud.clock)
        return None, " ".join(report.errors) if report.configuration_error else ""
    if entry == "event":
        # An event about an instance of the run's own cluster when it has one, else about edge's.
        ours = [
            i for i, r in cloud.ec2.instances.items() if ("lbf:cluster", config.cluster) in r.tags
        ]
        instance_id = (ours or list(cloud.ec2.instances))[0]
        report = jobs.on_instance_change(config, cloud.services(), cloud.clock, instance_id)
        assert not report.applied
        assert not report.planned
        return None, " ".join(report.errors)
    argv = {
        "cli-reconcile": ["reconcile"],
        "cli-plan": ["plan"],
        "cli-move-active": ["move-active", "--to", "lb1"],
        "cli-status": ["status"],
        **OPERATOR_COMMANDS,
    }[entry]
    capsys.readouterr()  # only what the command prints
    code = cli(cloud, environ, *argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("wrong", WRONG)
@pytest.mark.parametrize("mode", list(MODES))
def test_a_run_of_another_cluster_writes_nothing_and_names_the_owner(
    mode: str, wrong: str, entry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = edge_cluster(mode)
    assert cloud.route53.records[(TXT, "TXT")].values[0] == '"cluster=edge"'
    cluster = "egde"
    if wrong == "other-cluster-with-its-own-lb":
        cloud, cluster = with_other_cluster(cloud), "other"
    before = everything(cloud)
    cloud.calls.log.clear()

    code, text = run_entry(entry, cloud, env(mode, cluster), capsys)

    assert everything(cloud) == before
    assert cloud.calls.writes() == []
    if entry == "event" and wrong.startswith("typo"):
        # An event about an instance outside the run's cluster stops before the records are read.
        assert "ListResourceRecordSets" not in [op for op, _ in cloud.calls.log]
        return
    assert "owned by cluster 'edge'" in text, text
    assert f"not by LBF_CLUSTER {cluster!r}" in text
    if code is not None:
        assert code == 2
        assert "Traceback" not in text


@pytest.mark.parametrize("mode", list(MODES))
def test_the_owner_still_runs_as_before(mode: str) -> None:
    cloud = with_other_cluster(edge_cluster(mode))
    before = everything(cloud)
    report = scheduled(cloud, settings(env(mode, "edge")))
    assert report.ok, report.errors
    assert report.configuration_error is None
    assert everything(cloud)["records"] == before["records"]


# --- a TXT written before clusters owned domains ---------------------------------------------------


def legacy(cloud: FakeCloud) -> Record:
    """Rewrites the TXT the way the controller wrote it before this rule: labels only."""
    old = cloud.route53.records[(TXT, "TXT")]
    legacy = Record(TXT, "TXT", old.ttl, tuple(v for v in old.values if "cluster=" not in v))
    cloud.route53.records[(TXT, "TXT")] = legacy
    return legacy


@pytest.mark.parametrize("wrong", WRONG)
def test_an_old_txt_is_not_adopted_when_its_records_hold_another_clusters_lbs(
    wrong: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = edge_cluster("dns")
    legacy(cloud)
    cluster = "egde"
    if wrong == "other-cluster-with-its-own-lb":
        cloud, cluster = with_other_cluster(cloud), "other"
    before = everything(cloud)

    code = cli(cloud, env("dns", cluster), "reconcile")

    assert code == 2
    err = capsys.readouterr().err
    assert "names no cluster" in err
    assert "127.0.0.11 is i-" in err
    assert "of cluster 'edge'" in err
    assert everything(cloud) == before


def test_an_old_txt_is_adopted_by_its_cluster_with_a_compare_and_swap_of_its_own() -> None:
    cloud = edge_cluster("dns")
    old = legacy(cloud)
    cloud.route53.batches.clear()

    report = scheduled(cloud, settings(env("dns", "edge")))

    assert report.ok, report.errors
    new = Record(TXT, "TXT", 60, ('"cluster=edge"', '"lb"', '"lb1"', '"lb2"'))
    # Nothing else changes in a settled cluster: the adoption is a batch of its own.
    assert cloud.route53.batches == [(RecordChange("DELETE", old), RecordChange("CREATE", new))]
    assert cloud.route53.records[(TXT, "TXT")] == new
    assert scheduled(cloud, settings(env("dns", "edge"))).ok
    assert len(cloud.route53.batches) == 1  # adopted once


def test_an_old_txt_whose_records_hold_no_other_clusters_address_is_adopted() -> None:
    """A domain whose old records hold addresses of instances of no cluster (gone long ago)."""
    cloud = small_cluster(cluster="edge")
    cloud.route53.records[(TXT, "TXT")] = Record(TXT, "TXT", 60, ('"lb"', '"lb9"'))
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, ("127.0.0.99",))
    cloud.route53.records[(f"lb9.{DOMAIN}", "A")] = Record(
        f"lb9.{DOMAIN}", "A", 60, ("127.0.0.99",)
    )
    settle(cloud, settings(env("dns", "edge")))
    assert cloud.route53.records[(TXT, "TXT")].values[0] == '"cluster=edge"'
    assert cloud.route53.value(f"lb9.{DOMAIN}") is None  # a vanished LB's record, as before


def test_a_compare_and_swap_of_the_txt_fails_a_run_that_read_it_before_a_handover() -> None:
    """A run of the old name that read the TXT before the handover must not undo it."""
    cloud = edge_cluster("dns")
    handed = Record(TXT, "TXT", 60, ('"cluster=renamed"', '"lb"', '"lb1"', '"lb2"'))
    cloud.ec2.add("lb", "127.0.0.13", name="lb3", cluster="edge")  # so the run writes the TXT

    def handover_lands_first() -> None:
        cloud.route53.records[(TXT, "TXT")] = handed

    cloud.route53.before_change = handover_lands_first
    report = scheduled(cloud, settings(env("dns", "edge")))

    assert cloud.route53.records[(TXT, "TXT")] == handed
    assert report.configuration_error is not None  # its re-read meets the new owner
    assert "owned by cluster 'renamed'" in report.configuration_error


# --- a domain with no TXT -------------------------------------------------------------------------


def test_a_domain_without_a_txt_gets_one_naming_the_cluster_from_its_first_writing_run() -> None:
    cloud = small_cluster(cluster="edge")
    settle(cloud, settings(env("dns", "edge")))
    first = next(b for b in cloud.route53.batches if any(c.record.name == TXT for c in b))
    # Created (a CREATE fails if another run created one meanwhile), with the LB records.
    assert [(c.action, c.record.name, c.record.values) for c in first] == [
        ("UPSERT", f"lb1.{DOMAIN}", ("127.0.0.11",)),
        ("UPSERT", f"lb2.{DOMAIN}", ("127.0.0.12",)),
        ("CREATE", TXT, ('"cluster=edge"', '"lb1"', '"lb2"')),
    ]
    assert cloud.route53.records[(TXT, "TXT")].values == (
        '"cluster=edge"',
        '"lb"',
        '"lb1"',
        '"lb2"',
    )


def test_a_run_that_writes_no_record_claims_no_domain() -> None:
    cloud = FakeCloud()  # a typo of a cluster in an empty domain: nothing to write
    report = scheduled(cloud, settings(env("dns", "egde")))
    assert report.ok, report.errors
    assert cloud.route53.records == {}


# --- the function: its metric, no HealthyLBs, no notice --------------------------------------------


@pytest.fixture(params=list(MODES))
def owned_by_another(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LambdaApp:
    """The dev stage's cluster in a domain another cluster owns (a typo of the stage's name), in
    each mode: the stage names no mode, so the process's LBF_MODE / LBF_ACTIVE_MODE reach it."""
    mode = MODES[request.param]
    cloud = small_cluster(cluster="web-prod")
    domain = "edge-dev.example.com"  # the dev stage's LBF_DOMAIN
    prod = environment(
        FAKE_CLOUD_ENV,
        mode,
        {"LBF_CLUSTER": "web-prod", "LBF_DOMAIN": domain, "LBF_HOSTED_ZONE_ID": "Z1"},
    )
    settle(cloud, settings(prod))
    return LambdaApp(monkeypatch, cloud, environ=mode)


@pytest.mark.parametrize("function", ["reconcile", "on_instance_change"])
@pytest.mark.parametrize("has_instances", [False, True], ids=["typo", "other-cluster"])
def test_a_refused_function_publishes_only_its_configuration_error_and_sends_nothing(
    owned_by_another: LambdaApp,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    function: str,
    has_instances: bool,
) -> None:
    cloud = owned_by_another.cloud
    if has_instances:
        cloud.ec2.add("lb", "127.0.0.41", name="lb1", cluster=STAGE_CLUSTER)
    ours = [i for i, r in cloud.ec2.instances.items() if ("lbf:cluster", STAGE_CLUSTER) in r.tags]
    detail = {"instance-id": (ours or ["i-0123456789abcdef0"])[0], "state": "running"}
    before = everything(cloud)
    cloud.calls.log.clear()
    capsys.readouterr()

    for _ in range(3):  # every minute, and still no message
        owned_by_another.invoke(function, detail if function != "reconcile" else None)
        cloud.clock.advance(60)

    assert everything(cloud) == before
    assert cloud.calls.writes() == []
    figures = emf_figures(capsys.readouterr().out)
    if function == "on_instance_change" and not has_instances:
        # An event about an instance outside the cluster: nothing read, nothing measured.
        assert all("ConfigurationErrors" not in f for f in figures)
        return
    assert figures == [{"ConfigurationErrors": [1.0]}] * 3  # only its error metric
    errors = [r for r in caplog.records if r.getMessage() == "configuration error, nothing written"]
    assert len(errors) == 3
    assert "owned by cluster 'web-prod'" in str(errors[0].__dict__.get("error"))


# --- handover -------------------------------------------------------------------------------------


def test_handover_swaps_the_txt_and_the_old_name_is_then_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = edge_cluster("dns")
    old = cloud.route53.records[(TXT, "TXT")]
    cloud.route53.batches.clear()
    cloud.calls.log.clear()

    code = cli(cloud, env("dns", "edge"), "handover", "edge-v2")

    assert code == 0
    out = capsys.readouterr().out
    assert f"handed {DOMAIN} from cluster edge to cluster edge-v2 (lb, lb1, lb2)" in out
    new = Record(TXT, "TXT", 60, ('"cluster=edge-v2"', '"lb"', '"lb1"', '"lb2"'))
    assert cloud.route53.batches == [(RecordChange("DELETE", old), RecordChange("CREATE", new))]
    assert [op for op, _ in cloud.calls.writes()] == ["ChangeResourceRecordSets"]

    # The instances are renamed next; until then the old name's runs are refused.
    assert cli(cloud, env("dns", "edge"), "reconcile") == 2
    for instance_id in list(cloud.ec2.instances):
        cloud.ec2.set_tag(instance_id, "lbf:cluster", "edge-v2")
    before = everything(cloud)["records"]
    assert cli(cloud, environment(env("dns", "edge-v2")), "reconcile") == 0
    assert everything(cloud)["records"] == before  # the same records, now the new name's


def test_handover_dry_run_prints_the_swap_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = edge_cluster("dns")
    before = everything(cloud)
    cloud.calls.log.clear()

    code = cli(cloud, env("dns", "edge", LBF_DRY_RUN="true"), "handover", "edge-v2")

    assert code == 0
    out = capsys.readouterr().out
    assert "would hand" in out
    assert f'CREATE {TXT} TXT "cluster=edge-v2" "lb" "lb1" "lb2"' in out
    assert everything(cloud) == before
    assert cloud.calls.writes() == []


def test_handover_while_paused_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = edge_cluster("dns")
    cloud.ssm.parameters["/lbf/edge/paused"] = "true"
    before = everything(cloud)

    code = cli(cloud, env("dns", "edge"), "handover", "edge-v2")

    assert code == 1
    assert "refused, nothing changed: paused" in capsys.readouterr().out
    assert everything(cloud) == before


@pytest.mark.parametrize("new", ["edge v2", "", "x" * 129, "edge/v2", "édge"])
def test_handover_to_a_name_that_is_no_cluster_name_is_a_usage_error(
    new: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = edge_cluster("dns")
    before = everything(cloud)
    cloud.calls.log.clear()

    assert cli(cloud, env("dns", "edge"), "handover", new) == 2

    assert "is not a cluster name" in capsys.readouterr().err
    assert cloud.calls.log == []  # refused before any AWS call
    assert everything(cloud) == before


def test_handover_run_as_a_cluster_that_does_not_own_the_domain_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = edge_cluster("dns")
    before = everything(cloud)
    assert cli(cloud, env("dns", "egde"), "handover", "mine") == 2
    assert "owned by cluster 'edge'" in capsys.readouterr().err
    assert everything(cloud) == before


def test_handover_json_is_one_object_with_a_schema(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = edge_cluster("dns")
    assert cli(cloud, env("dns", "edge"), "handover", "edge-v2", "--json") == 0
    document = valid(capsys.readouterr().out)  # against schemas/cli-output.schema.json
    assert document["schema"] == 1
    assert document["command"] == "handover"
    assert (document["from"], document["to"]) == ("edge", "edge-v2")
    assert document["labels"] == ["lb", "lb1", "lb2"]
    assert document["changed"] is True
    assert document["errors"] == []


def test_handover_to_the_owner_itself_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = edge_cluster("dns")
    cloud.calls.log.clear()
    assert cli(cloud, env("dns", "edge"), "handover", "edge") == 0
    assert "owned by cluster edge already" in capsys.readouterr().out
    assert cloud.calls.writes() == []


def test_handover_that_loses_the_compare_and_swap_fails_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = edge_cluster("dns")
    grown = Record(TXT, "TXT", 60, ('"cluster=edge"', '"lb"', '"lb1"', '"lb2"', '"lb3"'))

    def a_run_lands_first() -> None:
        cloud.route53.records[(TXT, "TXT")] = grown

    cloud.route53.before_change = a_run_lands_first
    assert cli(cloud, env("dns", "edge"), "handover", "edge-v2") == 1
    assert "changed since it was read" in capsys.readouterr().out
    assert cloud.route53.records[(TXT, "TXT")] == grown
