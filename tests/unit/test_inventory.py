"""Tags in, trusted instances out (SPEC: "Tags on EC2 instances").

Tag values are free text. One that does not parse never reaches DNS, a config file or a command:
the instance is skipped, and the reason (logged, shown by `status`) must be one printable line.
Names: missing ones get the lowest free `lbN`; two LBs with one name, the older keeps it.
"""

from __future__ import annotations

import pytest

from chalicelib.core.inventory import (
    build_inventory,
    natural_key,
    parse_instance,
)
from chalicelib.core.model import Health, Instance, LbState, ProbeRun, RawInstance, Role, Skipped
from tests.kit.settings import settings
from tests.kit.world import parse_rules, raw

RULES = parse_rules()  # active name "lb", LB public address, pool private address, port 80
CHECKSUM = "0123456789abcdef" * 4


def skipped_reason(parsed: Instance | Skipped) -> str:
    assert isinstance(parsed, Skipped), f"expected the instance to be skipped, got {parsed}"
    # One log line, one table cell: the hostile value is shown escaped.
    assert parsed.reason.isprintable(), parsed.reason
    return parsed.reason


def parsed_instance(parsed: Instance | Skipped) -> Instance:
    assert isinstance(parsed, Instance), f"expected the instance to parse, got {parsed}"
    return parsed


# --- hostile operator tags: the instance is skipped ------------------------------------------


@pytest.mark.parametrize(
    ("role", "fragment"),
    [
        pytest.param(None, "lbf:role missing", id="role-missing"),
        pytest.param("database", "'database'", id="role-unknown"),
        pytest.param("LB", "'LB'", id="role-upper-case"),
        pytest.param("lb ", "'lb '", id="role-trailing-space"),
        pytest.param("lb\n", "'lb\\n'", id="role-newline"),
        pytest.param("", "''", id="role-empty"),
        pytest.param("web;reboot", "'web;reboot'", id="role-shell"),
    ],
)
def test_an_unknown_role_skips_the_instance(role: str | None, fragment: str) -> None:
    reason = skipped_reason(parse_instance(raw(role=role), RULES))
    assert fragment in reason
    assert "lbf:role" in reason


LONG_LABEL = "a" * 63


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("LB1", id="upper-case"),
        pytest.param("lb_1", id="underscore"),
        pytest.param("a" * 64, id="64-chars"),
        pytest.param("lb1;rm", id="semicolon"),
        pytest.param("$(id)", id="command-substitution"),
        pytest.param("`id`", id="backticks"),
        pytest.param("lb1\n", id="trailing-newline"),
        pytest.param("lb1\nlb2", id="embedded-newline"),
        pytest.param("lb1\r", id="carriage-return"),
        pytest.param("lb1.evil", id="dot-makes-two-labels"),
        pytest.param("-lb1", id="leading-hyphen"),
        pytest.param("lb1-", id="trailing-hyphen"),
        pytest.param(" lb1", id="leading-space"),
        pytest.param("", id="empty"),
        pytest.param("\u0435dge-a", id="cyrillic-e-look-alike"),
        pytest.param("lb\uff11", id="full-width-digit"),
        pytest.param("lb1\u200b", id="zero-width-space"),
        pytest.param("*", id="wildcard"),
    ],
)
def test_an_lb_name_that_is_not_a_dns_label_skips_the_lb(name: str) -> None:
    parsed = parse_instance(raw(name=name), RULES)
    reason = skipped_reason(parsed)
    assert "lbf:name" in reason
    assert "is not a DNS label" in reason
    assert isinstance(parsed, Skipped)
    assert parsed.name is None  # an invalid name protects no record
    assert parsed.address == "203.0.113.10"  # so an active record on it is still recognised


@pytest.mark.parametrize(
    ("active_name", "name"),
    [
        pytest.param("lb", "lb", id="default-active-name"),
        pytest.param("www", "www", id="configured-active-name"),
    ],
)
def test_an_lb_named_like_the_active_record_is_skipped(active_name: str, name: str) -> None:
    rules = parse_rules(settings(active_name=active_name))
    reason = skipped_reason(parse_instance(raw(name=name), rules))
    assert "active record's name" in reason


@pytest.mark.parametrize(
    "port",
    [
        pytest.param("0", id="zero"),
        pytest.param("70000", id="above-65535"),
        pytest.param("65536", id="just-above-65535"),
        pytest.param("-1", id="negative"),
        pytest.param("80 ", id="trailing-space"),
        pytest.param(" 80", id="leading-space"),
        pytest.param("80\n", id="trailing-newline"),
        pytest.param("\uff18\uff10", id="full-width-digits"),
        pytest.param("\u0668\u0660", id="arabic-indic-digits"),
        pytest.param("http", id="a-word"),
        pytest.param("8080;id", id="shell-characters"),
        pytest.param("", id="empty"),
        pytest.param("000080", id="six-digits"),
        pytest.param("0x50", id="hex"),
    ],
)
def test_a_bad_web_port_skips_the_web_server(port: str) -> None:
    reason = skipped_reason(parse_instance(raw(role="web", port=port), RULES))
    assert "lbf:port" in reason
    assert "is not a port 1-65535" in reason


@pytest.mark.parametrize(
    "role",
    [pytest.param("lb", id="lb"), pytest.param("web", id="web")],
)
@pytest.mark.parametrize(
    "maintenance",
    [
        pytest.param("Drain", id="capitalised"),
        pytest.param("drain\n", id="trailing-newline"),
        pytest.param("yes", id="yes"),
        pytest.param("true", id="true"),
        pytest.param("", id="empty"),
        pytest.param("drain;reboot", id="shell"),
    ],
)
def test_a_maintenance_value_other_than_drain_skips_the_instance(
    role: str, maintenance: str
) -> None:
    reason = skipped_reason(parse_instance(raw(role=role, maintenance=maintenance), RULES))
    assert "lbf:maintenance" in reason
    assert "is not 'drain'" in reason


def test_a_long_hostile_value_is_shortened_in_the_reason() -> None:
    reason = skipped_reason(parse_instance(raw(role="x" * 5000), RULES))
    assert len(reason) < 200


def test_a_skipped_lb_with_a_valid_name_keeps_protecting_its_record() -> None:
    parsed = parse_instance(raw(name="lb1", maintenance="Drain"), RULES)
    assert isinstance(parsed, Skipped)
    assert (parsed.name, parsed.address, parsed.role) == ("lb1", "203.0.113.10", "lb")


# --- tags that parse ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("lb1", id="lbN"),
        pytest.param("edge-a", id="with-hyphen"),
        pytest.param("a", id="one-letter"),
        pytest.param("9", id="one-digit"),
        pytest.param(LONG_LABEL, id="63-chars"),
        pytest.param("lb-x", id="lb-prefix"),
    ],
)
def test_a_valid_dns_label_is_the_lb_name(name: str) -> None:
    lb = parsed_instance(parse_instance(raw(name=name), RULES))
    assert (lb.role, lb.name, lb.name_assigned) == (Role.LB, name, False)


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param(None, 80, id="absent-takes-LBF_POOL_PORT"),
        pytest.param("1", 1, id="lowest"),
        pytest.param("65535", 65535, id="highest"),
        pytest.param("8080", 8080, id="8080"),
    ],
)
def test_the_web_port_is_the_backend_port(port: str | None, expected: int) -> None:
    web = parsed_instance(parse_instance(raw(role="web", port=port), RULES))
    assert web.port == expected


def test_an_absent_port_takes_the_configured_pool_port() -> None:
    rules = parse_rules(settings(pool_port=8081))
    assert parsed_instance(parse_instance(raw(role="web"), rules)).port == 8081


@pytest.mark.parametrize(
    "role",
    [pytest.param("lb", id="lb"), pytest.param("web", id="web")],
)
def test_drain_marks_the_instance_draining(role: str) -> None:
    assert parsed_instance(parse_instance(raw(role=role, maintenance="drain"), RULES)).draining


@pytest.mark.parametrize(
    ("role", "lb_address", "pool_address", "public_ip", "private_ip", "expected"),
    [
        pytest.param("lb", "public", "private", "203.0.113.10", "10.0.0.10", "203.0.113.10", id="lb-public-by-default"),
        pytest.param("lb", "private", "private", "203.0.113.10", "10.0.0.10", "10.0.0.10", id="lb-private"),
        pytest.param("web", "public", "private", "203.0.113.10", "10.0.0.10", "10.0.0.10", id="web-private-by-default"),
        pytest.param("web", "public", "public", "203.0.113.10", "10.0.0.10", "203.0.113.10", id="web-public"),
        pytest.param("lb", "public", "private", "2001:0db8:0000:0000:0000:0000:0000:0001", None, "2001:db8::1", id="ipv6-compressed"),
        pytest.param("lb", "public", "private", "2001:DB8::A", None, "2001:db8::a", id="ipv6-lower-case"),
    ],
)  # fmt: skip
def test_the_address_is_the_configured_one_in_compressed_form(
    role: str,
    lb_address: str,
    pool_address: str,
    public_ip: str | None,
    private_ip: str | None,
    expected: str | None,
) -> None:
    rules = parse_rules(settings(lb_address=lb_address, pool_address=pool_address))
    instance = raw(role=role, public_ip=public_ip, private_ip=private_ip)
    assert parsed_instance(parse_instance(instance, rules)).address == expected


def test_an_address_ec2_would_never_report_skips_the_instance() -> None:
    reason = skipped_reason(parse_instance(raw(public_ip="203.0.113.10\n"), RULES))
    assert "is not an IP address" in reason


# --- controller tags: garbage reads as absent (the controller rewrites them) -------------------


@pytest.mark.parametrize(
    ("tags", "field", "expected"),
    [
        pytest.param({"lbf:health": "healthy"}, "health", Health.HEALTHY, id="health"),
        pytest.param({"lbf:health": "healthy\n"}, "health", Health.UNKNOWN, id="health-newline"),
        pytest.param({"lbf:probe": "ok:2"}, "run", ProbeRun(ok=True, count=2), id="probe"),
        pytest.param({"lbf:probe": "ok:-1"}, "run", None, id="probe-negative"),
        pytest.param({"lbf:probe": "fail:99999"}, "run", None, id="probe-absurd"),
        pytest.param({"lbf:state": "active"}, "lb_state", LbState.ACTIVE, id="state"),
        pytest.param({"lbf:state": "Active"}, "lb_state", None, id="state-capitalised"),
        pytest.param({"lbf:state": "primary"}, "lb_state", None, id="state-unknown"),
        pytest.param({"lbf:backends": CHECKSUM}, "backends_checksum", CHECKSUM, id="backends"),
        pytest.param({"lbf:backends": CHECKSUM.upper()}, "backends_checksum", None, id="backends-upper-hex"),
        pytest.param({"lbf:backends": CHECKSUM[:-1]}, "backends_checksum", None, id="backends-63-chars"),
        pytest.param({"lbf:backends": CHECKSUM + "0"}, "backends_checksum", None, id="backends-65-chars"),
        pytest.param({"lbf:backends": CHECKSUM + "\n"}, "backends_checksum", None, id="backends-newline"),
        pytest.param({"lbf:backends": "$(id)"}, "backends_checksum", None, id="backends-shell"),
    ],
)  # fmt: skip
def test_controller_tags_that_do_not_parse_read_as_absent(
    tags: dict[str, str], field: str, expected: object
) -> None:
    lb = parsed_instance(parse_instance(raw(name="lb1", tags=tags), RULES))
    actual = {
        "health": lb.health,
        "run": lb.damping.run,
        "lb_state": lb.lb_state,
        "backends_checksum": lb.backends_checksum,
    }[field]
    assert actual == expected
    # The raw values are remembered as written, so a garbage value gets rewritten, not kept.
    assert set(tags.items()) <= set(lb.written)


# --- names: duplicates and assignment --------------------------------------------------------


def lb_names(raws: list[RawInstance]) -> dict[str, str | None]:
    inventory = build_inventory(raws, RULES)
    return {lb.instance_id: lb.name for lb in inventory.lbs}


@pytest.mark.parametrize(
    "reverse",
    [pytest.param(False, id="listed-oldest-first"), pytest.param(True, id="listed-newest-first")],
)
def test_two_lbs_with_one_name_the_older_keeps_it(reverse: bool) -> None:
    raws = [
        raw("i-old", name="lb1", launched=100.0, public_ip="203.0.113.1"),
        raw("i-new", name="lb1", launched=200.0, public_ip="203.0.113.2"),
    ]
    inventory = build_inventory(list(reversed(raws)) if reverse else raws, RULES)
    assert [(lb.instance_id, lb.name) for lb in inventory.lbs] == [("i-old", "lb1")]
    (newer,) = inventory.skipped
    assert newer.instance_id == "i-new"
    assert "i-old" in skipped_reason(newer)
    assert newer.name is None  # the record belongs to the older LB
    assert newer.address == "203.0.113.2"


@pytest.mark.parametrize("state", ["stopped", "terminated", "shutting-down"])
def test_a_gone_lb_does_not_hold_its_name_against_a_running_replacement(state: str) -> None:
    raws = [
        raw("i-old", name="lb1", launched=100.0, state=state, public_ip=None),
        raw("i-new", name="lb1", launched=200.0),
    ]
    inventory = build_inventory(raws, RULES)
    assert inventory.skipped == ()
    assert {lb.instance_id: lb.name for lb in inventory.lbs} == {"i-old": "lb1", "i-new": "lb1"}


def test_a_terminated_lb_gives_its_name_up() -> None:
    raws = [
        raw("i-old", name="lb1", launched=100.0, state="terminated", public_ip=None),
        raw("i-new", name="lb1", launched=200.0),
    ]
    inventory = build_inventory(raws, RULES)
    assert inventory.skipped == ()
    held = {lb.instance_id: lb.name for lb in inventory.lbs if lb.state != "terminated"}
    assert held == {"i-new": "lb1"}


def test_a_frozen_older_lb_keeps_its_name_from_a_newer_one() -> None:
    """SPEC: the older keeps the name, and a skipped LB's record is left as it is."""
    raws = [
        raw("i-old", name="lb1", maintenance="Drain", launched=100.0, public_ip="203.0.113.1"),
        raw("i-new", name="lb1", launched=200.0, public_ip="203.0.113.2"),
    ]
    inventory = build_inventory(raws, RULES)
    assert [lb.name for lb in inventory.lbs] == []
    assert {s.instance_id: s.name for s in inventory.skipped} == {"i-old": "lb1", "i-new": None}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param([], "lb1", id="none-taken"),
        pytest.param(["lb1"], "lb2", id="lb1-taken"),
        pytest.param(["lb1", "lb3"], "lb2", id="gap-filled-first"),
        pytest.param(["lb2"], "lb1", id="lb1-free"),
        pytest.param([f"lb{n}" for n in range(1, 10)], "lb10", id="natural-order-after-lb9"),
        pytest.param(["lb1", "lb2", "lb10"], "lb3", id="lb10-does-not-hide-lb3"),
        pytest.param(["edge-a", "edge-b"], "lb1", id="other-names-do-not-count"),
        pytest.param(["lb01"], "lb1", id="lb01-is-not-lb1"),
    ],
)
def test_a_missing_name_gets_the_lowest_free_lbN(names: list[str], expected: str) -> None:
    raws = [
        raw(f"i-{n}", name=name, launched=100.0 + n, public_ip=f"203.0.113.{n + 1}")
        for n, name in enumerate(names)
    ]
    raws.append(raw("i-unnamed", launched=999.0, public_ip="203.0.113.200"))
    inventory = build_inventory(raws, RULES)
    (unnamed,) = [lb for lb in inventory.lbs if lb.instance_id == "i-unnamed"]
    assert (unnamed.name, unnamed.name_assigned) == (expected, True)
    assert all(not lb.name_assigned for lb in inventory.lbs if lb.instance_id != "i-unnamed")


def test_the_name_of_a_skipped_lb_is_taken_too() -> None:
    raws = [
        raw("i-frozen", name="lb1", maintenance="Drain", launched=100.0),
        raw("i-unnamed", launched=200.0, public_ip="203.0.113.2"),
    ]
    assert lb_names(raws) == {"i-unnamed": "lb2"}


def test_unnamed_lbs_are_named_in_launch_order() -> None:
    raws = [
        raw("i-c", launched=300.0, public_ip="203.0.113.3"),
        raw("i-a", launched=100.0, public_ip="203.0.113.1"),
        raw("i-b", name="lb2", launched=200.0, public_ip="203.0.113.2"),
        raw("i-d", launched=400.0, public_ip="203.0.113.4"),
    ]
    assert lb_names(raws) == {"i-a": "lb1", "i-b": "lb2", "i-c": "lb3", "i-d": "lb4"}


def test_a_terminated_unnamed_lb_gets_no_name() -> None:
    raws = [raw("i-gone", launched=100.0, state="terminated", public_ip=None)]
    assert lb_names(raws) == {"i-gone": None}


def test_web_servers_are_never_named() -> None:
    inventory = build_inventory([raw("i-web", role="web")], RULES)
    assert [(w.instance_id, w.name, w.name_assigned) for w in inventory.webs] == [
        ("i-web", None, False)
    ]


def test_instances_are_sorted_into_lbs_webs_and_skipped() -> None:
    inventory = build_inventory(
        [
            raw("i-lb", name="lb1"),
            raw("i-web", role="web"),
            raw("i-bad", role="router"),
        ],
        RULES,
    )
    assert [i.instance_id for i in inventory.lbs] == ["i-lb"]
    assert [i.instance_id for i in inventory.webs] == ["i-web"]
    assert [i.instance_id for i in inventory.skipped] == ["i-bad"]


# --- natural order -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(["lb10", "lb2"], ["lb2", "lb10"], id="lb2-before-lb10"),
        pytest.param(["lb10", "lb9", "lb1", "lb100"], ["lb1", "lb9", "lb10", "lb100"], id="by-number"),
        pytest.param(["lb2", "edge-a", "lb1"], ["edge-a", "lb1", "lb2"], id="letters-alphabetical"),
        pytest.param(["edge-b10", "edge-b2", "edge-a"], ["edge-a", "edge-b2", "edge-b10"], id="digits-inside"),
        pytest.param(["lb", "lb1"], ["lb", "lb1"], id="prefix-first"),
    ],
)  # fmt: skip
def test_natural_key_orders_names_as_an_operator_reads_them(
    names: list[str], expected: list[str]
) -> None:
    assert sorted(names, key=natural_key) == expected


# --- a running instance without the address the settings select is skipped loudly --------------


@pytest.mark.parametrize(
    ("role", "state", "overrides", "public_ip", "private_ip", "reason"),
    [
        pytest.param("lb", "running", {}, None, "10.0.0.10", "running without a public IPv4 address (LBF_LB_ADDRESS=public)", id="lb-public-missing"),
        pytest.param("lb", "running", {"lb_address": "private"}, "203.0.113.10", None, "running without a private IPv4 address (LBF_LB_ADDRESS=private)", id="lb-private-missing"),
        pytest.param("web", "running", {}, "2001:db8::5", None, "running without a private IPv4 address (LBF_POOL_ADDRESS=private)", id="ipv6-only-web-private"),
        pytest.param("web", "running", {"pool_address": "public"}, None, "10.0.0.10", "running without a public IPv4 address (LBF_POOL_ADDRESS=public)", id="web-public-missing"),
        pytest.param("lb", "running", {"mode": "eip", "eip_allocation_id": "eipalloc-0123456789abcdef0"}, None, "10.0.0.10", "LBF_MODE=eip with LBF_LB_ADDRESS=public needs LBs with their own public IPv4", id="eip-mode-public"),
        pytest.param("lb", "stopped", {}, None, "10.0.0.10", None, id="stopped-lb-parses-without-its-public-address"),
        pytest.param("lb", "pending", {}, None, "10.0.0.10", None, id="pending-lb-parses-before-its-address"),
    ],
)  # fmt: skip
def test_a_running_instance_without_the_selected_address_is_skipped(
    role: str,
    state: str,
    overrides: dict[str, str],
    public_ip: str | None,
    private_ip: str | None,
    reason: str | None,
) -> None:
    rules = parse_rules(settings(**overrides))
    parsed = parse_instance(
        raw(role=role, state=state, public_ip=public_ip, private_ip=private_ip), rules
    )
    if reason is None:
        assert parsed_instance(parsed).address is None
    else:
        assert reason in skipped_reason(parsed)


def test_a_skipped_instance_carries_what_parsed_of_it_and_nothing_else() -> None:
    parsed = parse_instance(
        raw(
            name="lb1\n",
            maintenance="drain",
            tags={"lbf:health": "healthy", "lbf:probe": "ok:7", "lbf:state": "active"},
        ),
        RULES,
    )
    assert isinstance(parsed, Skipped)
    assert parsed.frozen is not None
    frozen = parsed.frozen
    assert (frozen.role, frozen.address, frozen.name) == (Role.LB, "203.0.113.10", None)
    assert (frozen.health, frozen.damping.run) == (Health.HEALTHY, ProbeRun(ok=True, count=7))
    assert (frozen.draining, frozen.lb_state, frozen.written) == (True, LbState.ACTIVE, ())


def test_an_instance_of_unknown_role_is_known_by_its_lb_address_only() -> None:
    parsed = parse_instance(raw(role="lb;reboot"), RULES)
    assert isinstance(parsed, Skipped)
    assert (parsed.frozen, parsed.address) == (None, "203.0.113.10")


def test_the_newer_of_two_lbs_with_one_name_is_judged_by_no_name() -> None:
    """It may hold the active role (a replacement that took over): it keeps it while healthy
    and loses it when it fails, like any skipped LB, and its record stays the older one's."""
    older = raw("i-old", name="lb1", launched=1.0, tags={"lbf:health": "healthy"})
    newer = raw(
        "i-new",
        name="lb1",
        launched=2.0,
        public_ip="203.0.113.11",
        tags={"lbf:health": "unhealthy", "lbf:probe": "fail:3", "lbf:state": "active"},
    )
    inventory = build_inventory([older, newer], RULES)
    [skip] = inventory.skipped
    assert skip.frozen is not None
    assert (skip.name, skip.frozen.name, skip.frozen.address) == (None, None, "203.0.113.11")
    assert (skip.frozen.health, skip.frozen.lb_state) == (Health.UNHEALTHY, LbState.ACTIVE)
