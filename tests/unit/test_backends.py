"""The backend list every LB serves (SPEC: "Backend lists (SSM)").

`address:port` (IPv6 as `[address]:port`) of every running, healthy, non-draining web server,
sorted by address then port numerically, joined by single spaces; Checksum is the sha256 hex of
exactly that string. Never truncated, never empty, and never shrunk by a prober's bad minute.
"""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.core.backends import (
    BackendList,
    BackendListTooLong,
    build_list,
    guard_not_empty,
    guard_pool_drop,
    parse_list,
)
from chalicelib.core.model import Instance
from tests.kit.world import web


def text_of(webs: list[Instance]) -> str:
    return build_list(webs).text


@pytest.mark.parametrize(
    ("webs", "expected"),
    [
        pytest.param(
            [web("127.0.1.10"), web("127.0.1.9")],
            "127.0.1.9:80 127.0.1.10:80",
            id="address-numeric-9-before-10",
        ),
        pytest.param(
            [web("10.0.0.2"), web("9.255.255.255"), web("10.0.0.1")],
            "9.255.255.255:80 10.0.0.1:80 10.0.0.2:80",
            id="address-numeric-across-octets",
        ),
        pytest.param(
            [web("10.0.0.1", port=8080), web("10.0.0.1", port=443), web("10.0.0.1", port=80)],
            "10.0.0.1:80 10.0.0.1:443 10.0.0.1:8080",
            id="port-numeric-80-before-443",
        ),
        pytest.param(
            [web("10.0.0.2", port=80), web("10.0.0.1", port=8080)],
            "10.0.0.1:8080 10.0.0.2:80",
            id="address-before-port",
        ),
        pytest.param(
            [web("2001:db8::1"), web("10.0.0.1")],
            "10.0.0.1:80 [2001:db8::1]:80",
            id="ipv6-after-ipv4-and-bracketed",
        ),
        pytest.param(
            [web("2001:db8::a"), web("2001:db8::9"), web("2001:db8::1", port=8443)],
            "[2001:db8::1]:8443 [2001:db8::9]:80 [2001:db8::a]:80",
            id="ipv6-numeric",
        ),
        pytest.param(
            [web("10.0.0.1"), web("10.0.0.1", instance_id="i-same-address-again")],
            "10.0.0.1:80",
            id="one-entry-per-address-and-port",
        ),
        pytest.param([web("10.0.0.1")], "10.0.0.1:80", id="one-server"),
    ],
)
def test_the_list_is_sorted_by_address_then_port_numerically(
    webs: list[Instance], expected: str
) -> None:
    assert text_of(webs) == expected


@pytest.mark.parametrize(
    "left_out",
    [
        pytest.param(web("10.0.0.9", draining=True), id="draining"),
        pytest.param(web("10.0.0.9", "unhealthy"), id="unhealthy"),
        pytest.param(web("10.0.0.9", "unknown"), id="unknown-no-verdict-yet"),
        pytest.param(web("10.0.0.9", state="stopped"), id="stopped"),
        pytest.param(web("10.0.0.9", state="stopping"), id="stopping"),
        pytest.param(web("10.0.0.9", state="terminated"), id="terminated"),
        pytest.param(web("10.0.0.9", state="pending"), id="pending"),
        pytest.param(web(None), id="no-address"),
    ],
)
def test_only_running_healthy_serving_web_servers_are_listed(left_out: Instance) -> None:
    assert text_of([web("10.0.0.1"), left_out]) == "10.0.0.1:80"


@pytest.mark.parametrize(
    "webs",
    [
        pytest.param([web("10.0.0.1")], id="one"),
        pytest.param([web("10.0.0.2"), web("10.0.0.1", port=8080)], id="two"),
        pytest.param([web("2001:db8::1"), web("10.0.0.1")], id="with-ipv6"),
    ],
)
def test_the_checksum_is_the_sha256_of_exactly_the_list_string(webs: list[Instance]) -> None:
    built = build_list(webs)
    assert built.checksum == hashlib.sha256(built.text.encode()).hexdigest()
    assert built.checksum != hashlib.sha256((built.text + "\n").encode()).hexdigest()


def test_the_same_servers_in_any_order_give_the_same_checksum() -> None:
    servers = [web("10.0.0.3"), web("10.0.0.1"), web("2001:db8::1"), web("10.0.0.2", port=81)]
    assert build_list(servers).checksum == build_list(list(reversed(servers))).checksum


def test_a_list_too_long_for_a_parameter_fails_loudly() -> None:
    servers = [web(f"10.0.{n // 250}.{n % 250 + 1}", port=65535) for n in range(1000)]
    with pytest.raises(BackendListTooLong, match="1000 entries"):
        build_list(servers)


def test_a_long_list_that_fits_is_kept_whole() -> None:
    servers = [web(f"10.0.{n // 250}.{n % 250 + 1}") for n in range(400)]
    built = build_list(servers)
    assert len(built) == 400
    assert len(built.text) <= 8192


# --- guards ----------------------------------------------------------------------------------


def test_an_empty_list_is_held() -> None:
    held = guard_not_empty(build_list([web("10.0.0.1", "unhealthy")]))
    assert held is not None
    assert held.guard == "empty"


def test_a_non_empty_list_passes() -> None:
    assert guard_not_empty(build_list([web("10.0.0.1")])) is None


PUBLISHED = ("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")


def pool(*changes: Instance) -> list[Instance]:
    """The four published servers, with some replaced by the given ones (matched by address)."""
    changed = {w.address: w for w in changes}
    return [changed.get(f"10.0.0.{n}", web(f"10.0.0.{n}")) for n in range(1, 5)]


@pytest.mark.parametrize(
    ("webs", "max_drop", "held"),
    [
        pytest.param(pool(), 50, False, id="nothing-removed"),
        pytest.param(pool(web("10.0.0.1", "unhealthy")), 50, False, id="1-of-4-failed"),
        pytest.param(
            pool(web("10.0.0.1", "unhealthy"), web("10.0.0.2", "unhealthy")),
            50,
            False,
            id="2-of-4-failed-is-50-percent-not-more",
        ),
        pytest.param(
            pool(*(web(f"10.0.0.{n}", "unhealthy") for n in (1, 2, 3))),
            50,
            True,
            id="3-of-4-failed-is-more-than-50-percent",
        ),
        pytest.param(
            pool(*(web(f"10.0.0.{n}", draining=True) for n in (1, 2, 3))),
            50,
            False,
            id="3-of-4-drained-do-not-count",
        ),
        pytest.param(
            pool(*(web(f"10.0.0.{n}", "unhealthy", state="terminated") for n in (1, 2, 3))),
            50,
            False,
            id="3-of-4-terminated-do-not-count",
        ),
        pytest.param(
            pool(*(web(f"10.0.0.{n}", "unhealthy", state="stopped") for n in (1, 2, 3))),
            50,
            False,
            id="3-of-4-stopped-do-not-count",
        ),
        pytest.param(
            [web("10.0.0.3"), web("10.0.0.4")],
            50,
            False,
            id="vanished-from-the-inventory-do-not-count",
        ),
        pytest.param(
            pool(
                web("10.0.0.1", "unhealthy"),
                web("10.0.0.2", "unhealthy"),
                web("10.0.0.3", draining=True),
            ),
            50,
            False,
            id="2-failed-plus-1-drained",
        ),
        pytest.param(
            pool(web("10.0.0.1", "unknown"), web("10.0.0.2", "unknown"), web("10.0.0.3", "unknown")),
            50,
            False,
            id="unknown-is-not-a-failed-probe",
        ),
        pytest.param(pool(web("10.0.0.1", "unhealthy")), 0, True, id="LBF_MAX_POOL_DROP-0"),
        pytest.param(pool(web("10.0.0.1", "unhealthy")), 25, False, id="LBF_MAX_POOL_DROP-25-one-of-4"),
        pytest.param(
            pool(web("10.0.0.1", "unhealthy"), web("10.0.0.2", "unhealthy")),
            25,
            True,
            id="LBF_MAX_POOL_DROP-25-two-of-4",
        ),
        pytest.param(
            pool(*(web(f"10.0.0.{n}", "unhealthy") for n in (1, 2, 3))),
            100,
            False,
            id="LBF_MAX_POOL_DROP-100",
        ),
    ],
)  # fmt: skip
def test_too_many_servers_failing_at_once_keeps_the_last_list(
    webs: list[Instance], max_drop: int, held: bool
) -> None:
    result = guard_pool_drop(PUBLISHED, build_list(webs), webs, max_drop)
    assert (result is not None) == held
    if result is not None:
        assert result.guard == "pool-drop"
        assert f"LBF_MAX_POOL_DROP={max_drop}%" in result.reason


def test_nothing_published_yet_is_never_a_drop() -> None:
    webs = [web("10.0.0.1"), web("10.0.0.2", "unhealthy")]
    assert guard_pool_drop((), build_list(webs), webs, 0) is None


def test_additions_are_never_held() -> None:
    webs = [*pool(), web("10.0.0.5"), web("10.0.0.6")]
    assert guard_pool_drop(PUBLISHED, build_list(webs), webs, 0) is None


# --- the stored list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10.0.0.1:80", ("10.0.0.1:80",), id="one"),
        pytest.param(
            "10.0.0.1:80 [2001:db8::1]:443",
            ("10.0.0.1:80", "[2001:db8::1]:443"),
            id="ipv4-and-ipv6",
        ),
        pytest.param(None, (), id="no-parameter"),
        pytest.param("", (), id="empty"),
        pytest.param("10.0.0.1", (), id="no-port"),
        pytest.param("10.0.0.1:", (), id="empty-port"),
        pytest.param("10.0.0.1:0", (), id="port-zero"),
        pytest.param("10.0.0.1:70000", (), id="port-too-big"),
        pytest.param("10.0.0.1:\uff18\uff10", (), id="full-width-port"),
        pytest.param("web1:80", (), id="host-name"),
        pytest.param("10.0.0.256:80", (), id="bad-octet"),
        pytest.param("10.0.0.1:80  10.0.0.2:80", (), id="double-space"),
        pytest.param("10.0.0.1:80,10.0.0.2:80", (), id="comma-separated"),
        pytest.param("10.0.0.1:80\n", (), id="trailing-newline"),
        pytest.param(" 10.0.0.1:80", (), id="leading-space"),
        pytest.param("10.0.0.1:80;reboot", (), id="shell"),
        pytest.param("10.0.0.1:80 garbage", (), id="one-bad-entry-spoils-all"),
    ],
)
def test_a_stored_list_that_does_not_parse_counts_as_none(
    text: str | None, expected: tuple[str, ...]
) -> None:
    assert parse_list(text) == expected


def test_a_stored_list_round_trips() -> None:
    built = build_list([web("10.0.0.2"), web("2001:db8::1"), web("10.0.0.1", port=8080)])
    assert BackendList(parse_list(built.text)) == built


# --- LBF_MAX_POOL_DROP is per run -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed_now", "max_drop", "held"),
    [
        # The run started with the four published; an earlier round already removed 10.0.0.1.
        pytest.param(("10.0.0.1",), 25, False, id="first-removal-within-bound"),
        pytest.param(("10.0.0.1", "10.0.0.2"), 25, True, id="second-round-over-the-run-bound"),
        pytest.param(("10.0.0.1", "10.0.0.2"), 50, False, id="two-of-four-at-fifty"),
        pytest.param(("10.0.0.1", "10.0.0.2", "10.0.0.3"), 50, True, id="three-of-four-at-fifty"),
    ],
)
def test_the_bound_counts_against_the_list_the_run_started_with(
    failed_now: tuple[str, ...], max_drop: int, held: bool
) -> None:
    webs = pool(*(web(address, "unhealthy") for address in failed_now))
    result = guard_pool_drop(PUBLISHED, build_list(webs), webs, max_drop)
    assert (result is not None) == held


def test_a_skipped_server_failing_its_probes_counts_toward_the_bound() -> None:
    webs = [w for w in pool(web("10.0.0.2", "unhealthy")) if w.address != "10.0.0.1"]
    wanted = build_list(webs)
    assert guard_pool_drop(PUBLISHED, wanted, webs, 25) is None
    held = guard_pool_drop(PUBLISHED, wanted, webs, 25, failed_entries=("10.0.0.1:80",))
    assert held is not None
    assert held.guard == "pool-drop"


def test_a_skipped_server_keeps_its_entry_in_the_list() -> None:
    webs = [w for w in pool() if w.address != "10.0.0.3"]
    assert build_list(webs, kept=("10.0.0.3:80",)).entries == PUBLISHED
