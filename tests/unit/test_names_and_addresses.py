"""The name and address forms every part of the controller checks the same way (core/names.py,
core/addresses.py): one table each, so a change to a form shows here rather than as two parts
that quietly disagree."""

from __future__ import annotations

import pytest

from chalicelib.core.addresses import DEFAULT_PORTS, canonical, sort_key, url_host
from chalicelib.core.names import (
    is_instance_id,
    is_label,
    push_log_group,
    record_name,
    show,
)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("lb", True),
        ("lb1", True),
        ("a" * 63, True),
        ("a" * 64, False),  # DNS's limit for one label
        ("-lb", False),
        ("lb-", False),
        ("l-b", True),
        ("LB1", False),  # records are lower case; config and the inventory lower it first
        ("lb_1", False),
        ("", False),
    ],
)
def test_a_dns_label(value: str, ok: bool) -> None:
    assert is_label(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("i-0123456789abcdef0", True),  # 17 digits, today's form
        ("i-01234567", True),  # 8 digits, older instances
        ("i-0123456", False),
        ("i-0123456789abcdef01", False),
        ("i-lb1", False),  # a name, not an id
        ("i-0123456789ABCDEF0", False),
        ("i-01;rm -rf", False),
    ],
)
def test_an_instance_id(value: str, ok: bool) -> None:
    assert is_instance_id(value) is ok


def test_a_records_name_and_the_push_log_group() -> None:
    assert record_name("lb2", "prod.example.com") == "lb2.prod.example.com"
    assert push_log_group("web") == "/lbf/web/pushes"


def test_a_hostile_value_is_shown_escaped_quoted_and_cut() -> None:
    assert show("lb\n1") == "'lb\\n1'"
    assert show("b\u00fccher") == "'b\\xfccher'"
    assert show("x" * 50, 10) == "'" + "x" * 10 + "...'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", None),  # a scope id is free text
        ("10.0.0.256", None),
        ("lb1", None),
        (None, None),
    ],
)
def test_an_address_has_one_written_form(value: str | None, expected: str | None) -> None:
    assert canonical(value) == expected


def test_addresses_sort_by_number_ipv4_first() -> None:
    addresses = ["2001:db8::1", "10.0.0.10", "10.0.0.9"]
    assert sorted(addresses, key=sort_key) == ["10.0.0.9", "10.0.0.10", "2001:db8::1"]


def test_an_ipv6_address_is_bracketed_as_a_host_and_the_default_ports() -> None:
    assert url_host("10.0.0.1") == "10.0.0.1"
    assert url_host("2001:db8::1") == "[2001:db8::1]"
    assert DEFAULT_PORTS == {"http": 80, "https": 443}
