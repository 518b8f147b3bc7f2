"""Settings.from_env: the SPEC's defaults, every accepted form, and a named error for every bad one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from chalicelib.config import Settings
from chalicelib.config.reading import ConfigError
from chalicelib.config.variables import KNOWN_VARIABLES
from chalicelib.core.dns import RecordRules
from chalicelib.core.endpoints import CheckTemplate, ProbeRules
from chalicelib.core.health import Thresholds
from chalicelib.core.lists import ListRules
from chalicelib.core.model import ActiveMode, AddressKind, FailoverMode
from chalicelib.core.plan import ActiveRules, PlanRules
from chalicelib.core.planned_failover import MoveRules
from chalicelib.core.pushes import PushRules
from chalicelib.core.second_opinion import SecondOpinionRules
from tests.kit.settings import DEPLOYED, REQUIRED_ENV
from tests.kit.settings import settings as kit_settings

REQUIRED = dict(REQUIRED_ENV)


def settings(*variables: Mapping[str, object], **overrides: object) -> Settings:
    """The kit's builder, as a deployed controller reads its environment (no stand-in's AWS)."""
    return kit_settings(DEPLOYED, *variables, **overrides)


OPTIONAL_VARIABLES = (
    "LBF_ACTIVE_NAME",
    "LBF_TTL",
    "LBF_MODE",
    "LBF_EIP_ALLOCATION_ID",
    "LBF_ACTIVE_MODE",
    "LBF_LB_ADDRESS",
    "LBF_POOL_ADDRESS",
    "LBF_LB_CHECK",
    "LBF_POOL_CHECK",
    "LBF_POOL_PORT",
    "LBF_PROBE_TIMEOUT",
    "LBF_PROBE_INTERVAL",
    "LBF_PROBE_ROUNDS",
    "LBF_RISE",
    "LBF_FALL",
    "LBF_SSM_DOCUMENT",
    "LBF_PARAMETER_PREFIX",
    "LBF_SNS_TOPIC_ARN",
    "LBF_DRY_RUN",
    "LBF_MAX_POOL_DROP",
    "LBF_PROBER_FAULT_PERCENT",
    "LBF_LB_MIN_BACKENDS",
    "LBF_ROUTE53_HEALTH_CHECKS",
    "LBF_PROBER_FUNCTION",
)
ALL_VARIABLES = (*REQUIRED, *OPTIONAL_VARIABLES)

EIP = "eipalloc-0123456789abcdef0"
SNS = "arn:aws:sns:eu-west-1:123456789012:lb-failover"

DEFAULTS = Settings(
    cluster="prod",
    domain="example.com",
    hosted_zone_id="Z0123456789ABC",
    active_name="lb",
    ttl=60,
    mode="dns",
    eip_allocation_id=None,
    active_mode="single",
    lb_address="public",
    pool_address="private",
    lb_check=CheckTemplate("http", "http://{address}:80/health"),
    pool_check=CheckTemplate("http", "http://{address}:{port}/health"),
    pool_port=80,
    probe_timeout=1.5,
    probe_interval=2.0,
    probe_rounds=29,
    pool_interval=10.0,
    rise=2,
    fall=3,
    ssm_document="LbFailover-UpdateBackends",
    parameter_prefix="/lbf/prod",
    sns_topic_arn=None,
    dry_run=False,
    max_pool_drop=50,
    prober_fault_percent=100,
    lb_min_backends=0,
    route53_health_checks=False,
)


def raised(environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    return caught.value


def assert_names(error: ConfigError, variable: str) -> None:
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")
    # An error is one log line: control characters in a value are shown escaped.
    assert "\n" not in str(error)
    assert "\r" not in str(error)


# --- defaults and derived names -------------------------------------------------------------------


def test_only_the_required_variables_give_the_spec_defaults() -> None:
    assert settings() == DEFAULTS


def test_derived_names_follow_domain_active_name_and_prefix() -> None:
    result = settings(active_name="www", parameter_prefix="/ops/lbf")
    assert result.active_record_name == "www.example.com"
    assert result.record_name("lb2") == "lb2.example.com"
    assert result.backends_parameter_name == "/ops/lbf/backends"
    assert result.lbs_parameter_name == "/ops/lbf/lbs"
    assert result.paused_parameter_name == "/ops/lbf/paused"


def test_default_names_use_lb_and_the_cluster_prefix() -> None:
    assert DEFAULTS.active_record_name == "lb.example.com"
    assert DEFAULTS.backends_parameter_name == "/lbf/prod/backends"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.ttl = 5  # type: ignore[misc]


@pytest.mark.parametrize("variable", OPTIONAL_VARIABLES)
@pytest.mark.parametrize("empty", ["", "   ", "\t"])
def test_an_optional_variable_set_to_empty_takes_its_default(variable: str, empty: str) -> None:
    assert settings({variable: empty}) == DEFAULTS


def test_variables_without_the_prefix_are_ignored() -> None:
    environ = {**REQUIRED, "PATH": "/bin", "LBTEST_UNKNOWN": "$(id)", "XLBF_DRYRUN": "true"}
    assert Settings.from_env(environ) == DEFAULTS


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("LBF_DRYRUN", "LBF_DRY_RUN"),
        ("LBF_DRY_RUNS", "LBF_DRY_RUN"),
        ("LBF_PROBE_TIMOUT", "LBF_PROBE_TIMEOUT"),
        ("LBF_CLUSTR", "LBF_CLUSTER"),
        ("lbf_dry_run", "LBF_DRY_RUN"),
        ("Lbf_Max_Pool_Drop", "LBF_MAX_POOL_DROP"),
    ],
)
def test_an_unknown_lbf_name_is_refused_naming_the_closest_known_one(
    name: str, suggested: str
) -> None:
    error = raised({**REQUIRED, name: "true"})
    assert_names(error, name)
    assert str(error).endswith(f"did you mean {suggested}?")


def test_an_unknown_name_far_from_every_known_one_is_refused_without_a_guess() -> None:
    error = raised({**REQUIRED, "LBF_SOAK": "1"})
    assert_names(error, "LBF_SOAK")
    assert "not a known setting" in str(error)
    assert "did you mean" not in str(error)


def test_an_unknown_name_is_reported_before_a_missing_required_variable() -> None:
    # The typo is the cause: "LBF_CLUSTER required" alone would hide it.
    error = raised({"LBF_CLUSTR": "prod", "LBF_DOMAIN": "example.com"})
    assert_names(error, "LBF_CLUSTR")
    assert "did you mean LBF_CLUSTER?" in str(error)


def test_an_unknown_name_with_control_characters_is_shown_escaped() -> None:
    error = raised({**REQUIRED, "LBF_X\nY\x1b": "1"})
    assert "\n" not in str(error)
    assert "\x1b" not in str(error)
    assert "LBF_X\\nY" in str(error)


def test_the_known_names_are_the_spec_table() -> None:
    # The SPEC's "Configuration" table, row by row: a new row is a new name here and in config.
    assert {
        *REQUIRED,
        *OPTIONAL_VARIABLES,
        "LBF_POOL_INTERVAL",
        "LBF_DNS_FAILOVER",
        "LBF_ROUTE53_INTERVAL",
    } == KNOWN_VARIABLES


@pytest.mark.parametrize("value", ["true", "TRUE", "True", " false ", "FALSE"])
def test_a_boolean_is_true_or_false_in_any_case(value: str) -> None:
    assert settings(dry_run=value).dry_run is (value.strip().lower() == "true")


@pytest.mark.parametrize("variable", ["LBF_DRY_RUN", "LBF_ROUTE53_HEALTH_CHECKS"])
@pytest.mark.parametrize("value", ["yes", "no", "1", "0", "on", "off", "y", "t", "f"])
def test_a_boolean_is_nothing_but_true_or_false(variable: str, value: str) -> None:
    error = raised({**REQUIRED, variable: value})
    assert_names(error, variable)
    assert "expected true or false, got" in str(error)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LBF_DNS_FAILOVER", "controller"),
        ("LBF_DNS_FAILOVER", "Controller"),
        ("LBF_ROUTE53_INTERVAL", "30"),
    ],
)
def test_the_names_for_a_later_release_are_known_and_accepted(variable: str, value: str) -> None:
    assert settings({variable: value}) == DEFAULTS


@pytest.mark.parametrize(
    ("variable", "value", "phrase"),
    [
        ("LBF_POOL_INTERVAL", "0", "above 0"),
        ("LBF_POOL_INTERVAL", "-5", "above 0"),
        ("LBF_POOL_INTERVAL", "ten", "above 0"),
        ("LBF_DNS_FAILOVER", "dns", "expected controller or route53"),
        ("LBF_ROUTE53_INTERVAL", "20", "expected 10 or 30"),
        ("LBF_ROUTE53_INTERVAL", "fast", "expected 10 or 30"),
    ],
)
def test_the_names_for_a_later_release_are_validated(
    variable: str, value: str, phrase: str
) -> None:
    error = raised({**REQUIRED, variable: value})
    assert_names(error, variable)
    assert phrase in str(error)


# --- accepted forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("LBF_CLUSTER", "prod", "cluster", "prod"),
        ("LBF_CLUSTER", "  Team_A.web-1  ", "cluster", "Team_A.web-1"),
        ("LBF_CLUSTER", "x" * 128, "cluster", "x" * 128),
        ("LBF_DOMAIN", "example.com", "domain", "example.com"),
        ("LBF_DOMAIN", "Example.COM", "domain", "example.com"),
        ("LBF_DOMAIN", "example.com.", "domain", "example.com"),
        ("LBF_DOMAIN", " lb.prod.example.com. ", "domain", "lb.prod.example.com"),
        ("LBF_DOMAIN", "xn--bcher-kva.example", "domain", "xn--bcher-kva.example"),
        ("LBF_DOMAIN", "a-1.b2.example.com", "domain", "a-1.b2.example.com"),
        ("LBF_HOSTED_ZONE_ID", "Z0123456789ABC", "hosted_zone_id", "Z0123456789ABC"),
        ("LBF_HOSTED_ZONE_ID", "/hostedzone/Z0123456789ABC", "hosted_zone_id", "Z0123456789ABC"),
        # moto's zone ids need not start with Z.
        (
            "LBF_HOSTED_ZONE_ID",
            "4LQ7VZ3S1IEM9KD2XGHTWA",
            "hosted_zone_id",
            "4LQ7VZ3S1IEM9KD2XGHTWA",
        ),
        ("LBF_ACTIVE_NAME", "www", "active_name", "www"),
        ("LBF_ACTIVE_NAME", "Edge-A", "active_name", "edge-a"),
        ("LBF_ACTIVE_NAME", "a" * 63, "active_name", "a" * 63),
        ("LBF_TTL", "1", "ttl", 1),
        ("LBF_TTL", "86400", "ttl", 86400),
        ("LBF_TTL", " 300 ", "ttl", 300),
        ("LBF_MODE", "dns", "mode", "dns"),
        ("LBF_MODE", "DNS", "mode", "dns"),
        ("LBF_ACTIVE_MODE", "all", "active_mode", "all"),
        ("LBF_ACTIVE_MODE", "Single", "active_mode", "single"),
        ("LBF_LB_ADDRESS", "private", "lb_address", "private"),
        ("LBF_LB_ADDRESS", "PUBLIC", "lb_address", "public"),
        ("LBF_POOL_ADDRESS", "public", "pool_address", "public"),
        ("LBF_POOL_PORT", "1", "pool_port", 1),
        ("LBF_POOL_PORT", "8080", "pool_port", 8080),
        ("LBF_POOL_PORT", "65535", "pool_port", 65535),
        ("LBF_PROBE_TIMEOUT", "0.5", "probe_timeout", 0.5),
        ("LBF_PROBE_TIMEOUT", ".25", "probe_timeout", 0.25),
        ("LBF_PROBE_TIMEOUT", "2", "probe_timeout", 2.0),  # the interval (2 s) at most
        ("LBF_PROBE_INTERVAL", "2.5", "probe_interval", 2.5),
        ("LBF_PROBE_INTERVAL", "10", "probe_interval", 10.0),
        ("LBF_PROBE_ROUNDS", "1", "probe_rounds", 1),
        # As many as fit at the defaults: (29 - 1) x 2 + 1.5 = 57.5 s, by 58 s.
        ("LBF_PROBE_ROUNDS", "29", "probe_rounds", 29),
        ("LBF_POOL_INTERVAL", "10", "pool_interval", 10.0),
        ("LBF_POOL_INTERVAL", "2.5", "pool_interval", 2.5),
        ("LBF_POOL_INTERVAL", "60", "pool_interval", 60.0),
        ("LBF_RISE", "1", "rise", 1),
        ("LBF_RISE", "10", "rise", 10),
        ("LBF_FALL", "1", "fall", 1),
        ("LBF_FALL", "10", "fall", 10),
        ("LBF_SSM_DOCUMENT", "My.Doc_1-x", "ssm_document", "My.Doc_1-x"),
        (
            "LBF_SSM_DOCUMENT",
            "arn:aws:ssm:eu-west-1:123456789012:document/LbFailover-UpdateBackends",
            "ssm_document",
            "arn:aws:ssm:eu-west-1:123456789012:document/LbFailover-UpdateBackends",
        ),
        ("LBF_PARAMETER_PREFIX", "/ops/lbf", "parameter_prefix", "/ops/lbf"),
        ("LBF_PARAMETER_PREFIX", "/a", "parameter_prefix", "/a"),
        ("LBF_PARAMETER_PREFIX", "/x_y/z.1-2", "parameter_prefix", "/x_y/z.1-2"),
        ("LBF_PARAMETER_PREFIX", "/a" * 14, "parameter_prefix", "/a" * 14),
        ("LBF_SNS_TOPIC_ARN", SNS, "sns_topic_arn", SNS),
        (
            "LBF_SNS_TOPIC_ARN",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts.fifo",
            "sns_topic_arn",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts.fifo",
        ),
        ("LBF_DRY_RUN", "true", "dry_run", True),
        ("LBF_DRY_RUN", "TRUE", "dry_run", True),
        ("LBF_DRY_RUN", "false", "dry_run", False),
        ("LBF_DRY_RUN", "False", "dry_run", False),
        ("LBF_ROUTE53_HEALTH_CHECKS", "true", "route53_health_checks", True),
        ("LBF_ROUTE53_HEALTH_CHECKS", "FALSE", "route53_health_checks", False),
        (
            "LBF_PROBER_FUNCTION",
            "lb-failover-prod-ProbePrivate-AbC123",
            "prober_function",
            "lb-failover-prod-ProbePrivate-AbC123",
        ),
        (
            "LBF_PROBER_FUNCTION",
            "arn:aws:lambda:eu-west-1:123456789012:function:lbf-ProbePrivate",
            "prober_function",
            "arn:aws:lambda:eu-west-1:123456789012:function:lbf-ProbePrivate",
        ),
        (
            "LBF_PROBER_FUNCTION",
            "arn:aws:lambda:eu-west-1:123456789012:function:lbf-ProbePrivate:live",
            "prober_function",
            "arn:aws:lambda:eu-west-1:123456789012:function:lbf-ProbePrivate:live",
        ),
        ("LBF_MAX_POOL_DROP", "0", "max_pool_drop", 0),
        ("LBF_MAX_POOL_DROP", "100", "max_pool_drop", 100),
        ("LBF_PROBER_FAULT_PERCENT", "1", "prober_fault_percent", 1),
        ("LBF_PROBER_FAULT_PERCENT", "80", "prober_fault_percent", 80),
        ("LBF_LB_MIN_BACKENDS", "0", "lb_min_backends", 0),
        ("LBF_LB_MIN_BACKENDS", "10000", "lb_min_backends", 10000),
    ],
)
def test_accepted_value(variable: str, raw: str, field: str, expected: object) -> None:
    assert getattr(settings({variable: raw}), field) == expected


def test_eip_mode_takes_the_allocation_id() -> None:
    result = settings(mode="eip", eip_allocation_id=EIP)
    assert (result.mode, result.eip_allocation_id, result.active_mode) == ("eip", EIP, "single")


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("LBF_MODE", "EIP", "mode", FailoverMode.EIP),
        ("LBF_ACTIVE_MODE", "All", "active_mode", ActiveMode.ALL),
        ("LBF_LB_ADDRESS", "Private", "lb_address", AddressKind.PRIVATE),
        ("LBF_POOL_ADDRESS", "PUBLIC", "pool_address", AddressKind.PUBLIC),
    ],
)
def test_a_choice_is_its_enum_member_and_prints_as_the_word_typed(
    variable: str, raw: str, field: str, expected: FailoverMode | ActiveMode | AddressKind
) -> None:
    extra = {"LBF_EIP_ALLOCATION_ID": EIP} if variable == "LBF_MODE" else {}
    chosen = getattr(settings({variable: raw, **extra}), field)
    assert chosen is expected
    assert f"{chosen}" == expected.value == raw.lower()


def test_the_core_rules_are_built_from_the_settings() -> None:
    config = settings(
        mode="eip",
        eip_allocation_id=EIP,
        parameter_prefix="/ops/lbf",
        lb_min_backends=2,
        max_pool_drop=25,
        rise=4,
        fall=5,
        route53_health_checks=True,
    )
    rules = config.rules
    assert rules.thresholds == Thresholds(rise=4, fall=5)
    assert rules.records == RecordRules(
        domain="example.com",
        ttl=60,
        active_name="lb",
        active_mode=ActiveMode.SINGLE,
        cluster="prod",
    )
    assert rules.plan == PlanRules(
        records=rules.records,
        active=ActiveRules(mode=FailoverMode.EIP, eip_allocation_id=EIP, min_backends=2),
        lists=ListRules(
            backends_parameter_name="/ops/lbf/backends",
            lbs_parameter_name="/ops/lbf/lbs",
            max_pool_drop=25,
            held_drop_parameter_name="/ops/lbf/held-drop",
        ),
        pushes=PushRules(log_group="/lbf/prod/pushes"),
        pair=rules.pair,
    )
    assert rules.pair.checks == rules.second_opinion
    assert rules.move == MoveRules(
        records=rules.records,
        active=rules.plan.active,
        paused_parameter_name="/ops/lbf/paused",
        pair=rules.pair,
    )
    assert rules.probes == ProbeRules(lb_check=config.lb_check, pool_check=config.pool_check)
    assert rules.second_opinion == SecondOpinionRules(
        enabled=True,
        cluster="prod",
        lb_check=config.lb_check,
        request_interval=30,
        failure_threshold=5,
        loopback_allowed=config.loopback_allowed,
    )
    assert (rules.parse.lb_address, rules.parse.pool_address, rules.parse.mode) == (
        AddressKind.PUBLIC,
        AddressKind.PRIVATE,
        FailoverMode.EIP,
    )


def test_eip_allocation_id_is_lower_cased() -> None:
    assert settings(mode="EIP", eip_allocation_id=EIP.upper()).eip_allocation_id == EIP


def test_default_parameter_prefix_follows_the_cluster() -> None:
    assert settings(cluster="Team_A.web-1").parameter_prefix == "/lbf/Team_A.web-1"


def test_longest_domain_still_leaves_room_for_a_full_label() -> None:
    domain = ".".join(["a" * 63, "b" * 63, "c" * 61])  # 189 characters
    result = settings(domain=domain)
    assert len(result.record_name("x" * 63)) == 253


# --- rejected forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", list(REQUIRED))
@pytest.mark.parametrize("missing", [None, "", "   "])
def test_missing_required_variable(variable: str, missing: str | None) -> None:
    environ = dict(REQUIRED)
    if missing is None:
        del environ[variable]
    else:
        environ[variable] = missing
    error = raised(environ)
    assert_names(error, variable)
    assert "required" in str(error)


# Values that must never reach DNS, a parameter name, a URL or a command, whatever the variable.
HOSTILE = ["a\nb", "prod\n", "\nprod", "a\rb", "a\x00b", "a\x1bb", "$(id)", "`id`", "x;rm -rf /"]


@pytest.mark.parametrize("variable", ALL_VARIABLES)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_is_rejected_by_every_variable(variable: str, value: str) -> None:
    # In eip mode the allocation id is read rather than refused as unused.
    environ = {**REQUIRED, "LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": EIP}
    if variable == "LBF_MODE":
        del environ["LBF_EIP_ALLOCATION_ID"]
    environ[variable] = value
    assert_names(raised(environ), variable)


BAD_VALUES = [
    # LBF_CLUSTER
    ("LBF_CLUSTER", "prod cluster"),
    ("LBF_CLUSTER", "prod/x"),
    ("LBF_CLUSTER", "x" * 129),
    ("LBF_CLUSTER", "prød"),
    # LBF_DOMAIN
    ("LBF_DOMAIN", "com"),
    ("LBF_DOMAIN", "com."),
    ("LBF_DOMAIN", "example.com.."),
    ("LBF_DOMAIN", ".example.com"),
    ("LBF_DOMAIN", "example..com"),
    ("LBF_DOMAIN", "-example.com"),
    ("LBF_DOMAIN", "example-.com"),
    ("LBF_DOMAIN", "ex_ample.com"),
    ("LBF_DOMAIN", "exa mple.com"),
    ("LBF_DOMAIN", "*.example.com"),
    ("LBF_DOMAIN", "bücher.example"),
    ("LBF_DOMAIN", "a" * 64 + ".com"),
    ("LBF_DOMAIN", ".".join(["a" * 63, "b" * 63, "c" * 62])),  # 190 characters
    # LBF_HOSTED_ZONE_ID
    ("LBF_HOSTED_ZONE_ID", "z0123456789abc"),
    ("LBF_HOSTED_ZONE_ID", "/hostedzone/"),
    ("LBF_HOSTED_ZONE_ID", "hostedzone/Z0123"),
    ("LBF_HOSTED_ZONE_ID", "/hostedzone//hostedzone/Z0123"),
    ("LBF_HOSTED_ZONE_ID", "Z0123-456"),
    ("LBF_HOSTED_ZONE_ID", "Z" * 33),
    # LBF_ACTIVE_NAME
    ("LBF_ACTIVE_NAME", "lb.example"),
    ("LBF_ACTIVE_NAME", "-lb"),
    ("LBF_ACTIVE_NAME", "lb-"),
    ("LBF_ACTIVE_NAME", "_lbf"),
    ("LBF_ACTIVE_NAME", "a" * 64),
    ("LBF_ACTIVE_NAME", "l b"),
    # whole numbers
    ("LBF_TTL", "-1"),
    ("LBF_TTL", "0"),
    ("LBF_TTL", "86401"),
    ("LBF_TTL", "60s"),
    ("LBF_TTL", "1e3"),
    ("LBF_TTL", "60.0"),
    ("LBF_TTL", "+60"),
    ("LBF_TTL", "6 0"),
    ("LBF_TTL", "٦٠"),
    ("LBF_TTL", "9" * 5000),
    ("LBF_POOL_PORT", "0"),
    ("LBF_POOL_PORT", "65536"),
    ("LBF_POOL_PORT", "-80"),
    ("LBF_POOL_PORT", "http"),
    ("LBF_PROBE_ROUNDS", "0"),
    ("LBF_PROBE_ROUNDS", "61"),
    ("LBF_PROBE_ROUNDS", "1.5"),
    ("LBF_RISE", "0"),
    ("LBF_RISE", "11"),
    ("LBF_FALL", "0"),
    ("LBF_FALL", "11"),
    ("LBF_FALL", "three"),
    ("LBF_MAX_POOL_DROP", "-1"),
    ("LBF_MAX_POOL_DROP", "101"),
    ("LBF_MAX_POOL_DROP", "50%"),
    ("LBF_PROBER_FAULT_PERCENT", "0"),
    ("LBF_PROBER_FAULT_PERCENT", "101"),
    ("LBF_LB_MIN_BACKENDS", "-1"),
    ("LBF_LB_MIN_BACKENDS", "10001"),
    # seconds
    ("LBF_PROBE_TIMEOUT", "0"),
    ("LBF_PROBE_TIMEOUT", "0.0"),
    ("LBF_PROBE_TIMEOUT", "-1"),
    ("LBF_PROBE_TIMEOUT", "nan"),
    ("LBF_PROBE_TIMEOUT", "inf"),
    ("LBF_PROBE_TIMEOUT", "1e0"),
    ("LBF_PROBE_TIMEOUT", "2s"),
    ("LBF_PROBE_TIMEOUT", "1,5"),
    ("LBF_PROBE_TIMEOUT", "."),
    ("LBF_PROBE_TIMEOUT", "61"),
    ("LBF_PROBE_TIMEOUT", "0.0000001"),
    ("LBF_PROBE_INTERVAL", "0"),
    ("LBF_PROBE_INTERVAL", "-10"),
    ("LBF_PROBE_INTERVAL", "NaN"),
    ("LBF_PROBE_INTERVAL", "Infinity"),
    ("LBF_PROBE_INTERVAL", "ten"),
    ("LBF_PROBE_INTERVAL", "901"),
    ("LBF_POOL_INTERVAL", "0"),
    ("LBF_POOL_INTERVAL", "-5"),
    ("LBF_POOL_INTERVAL", "ten"),
    ("LBF_POOL_INTERVAL", "61"),
    # choices
    ("LBF_MODE", "elastic"),
    ("LBF_MODE", "dns,eip"),
    ("LBF_ACTIVE_MODE", "both"),
    ("LBF_LB_ADDRESS", "ipv6"),
    ("LBF_POOL_ADDRESS", "elastic"),
    # booleans
    ("LBF_DRY_RUN", "maybe"),
    ("LBF_DRY_RUN", "on"),
    ("LBF_DRY_RUN", "yes"),
    ("LBF_DRY_RUN", "1"),
    ("LBF_DRY_RUN", "2"),
    ("LBF_DRY_RUN", "t"),
    ("LBF_ROUTE53_HEALTH_CHECKS", "enabled"),
    # names and ARNs
    ("LBF_SSM_DOCUMENT", "ab"),
    ("LBF_SSM_DOCUMENT", "x" * 129),
    ("LBF_SSM_DOCUMENT", "My Doc"),
    ("LBF_SSM_DOCUMENT", "doc/name"),
    ("LBF_SSM_DOCUMENT", "arn:aws:ssm:eu-west-1:1234:document/Doc"),
    ("LBF_PARAMETER_PREFIX", "lbf/prod"),
    ("LBF_PARAMETER_PREFIX", "/lbf/prod/"),
    ("LBF_PARAMETER_PREFIX", "/"),
    ("LBF_PARAMETER_PREFIX", "/lbf//prod"),
    ("LBF_PARAMETER_PREFIX", "/lbf/pr od"),
    ("LBF_PARAMETER_PREFIX", "/lbf/prod*"),
    ("LBF_PARAMETER_PREFIX", "/" + "a" * 900),
    ("LBF_PARAMETER_PREFIX", "/a" * 15),
    ("LBF_PARAMETER_PREFIX", "/aws/lbf"),
    ("LBF_PARAMETER_PREFIX", "/SSM-x/lbf"),
    ("LBF_SNS_TOPIC_ARN", "lb-failover"),
    ("LBF_SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:12345678901:lb-failover"),
    ("LBF_SNS_TOPIC_ARN", "arn:aws:sqs:eu-west-1:123456789012:lb-failover"),
    ("LBF_SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:"),
    ("LBF_SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:lb failover"),
    ("LBF_SNS_TOPIC_ARN", "arn:aws:sns::123456789012:lb-failover"),
    ("LBF_PROBER_FUNCTION", "x" * 65),
    ("LBF_PROBER_FUNCTION", "probe private"),
    ("LBF_PROBER_FUNCTION", "lbf.probe"),
    ("LBF_PROBER_FUNCTION", "arn:aws:lambda:eu-west-1:1234:function:probe"),
    ("LBF_PROBER_FUNCTION", "arn:aws:sns:eu-west-1:123456789012:function:probe"),
    ("LBF_PROBER_FUNCTION", "arn:aws:lambda:eu-west-1:123456789012:function:"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_rejected_value(variable: str, value: str) -> None:
    error = raised({**REQUIRED, variable: value})
    assert_names(error, variable)
    assert "expected" in str(error)


@pytest.mark.parametrize(
    ("environ", "variable", "phrase"),
    [
        ({"LBF_MODE": "eip"}, "LBF_EIP_ALLOCATION_ID", "required when LBF_MODE is eip"),
        ({"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "  "}, "LBF_EIP_ALLOCATION_ID", "required"),
        (
            {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eip-0123"},
            "LBF_EIP_ALLOCATION_ID",
            "eipalloc-",
        ),
        (
            {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-xyz12345"},
            "LBF_EIP_ALLOCATION_ID",
            "eipalloc-",
        ),
        # Set without eip mode: the operator expects the EIP to move, and it would not.
        ({"LBF_EIP_ALLOCATION_ID": EIP}, "LBF_EIP_ALLOCATION_ID", "LBF_MODE=eip"),
        (
            {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": EIP, "LBF_ACTIVE_MODE": "all"},
            "LBF_ACTIVE_MODE",
            "LBF_MODE=eip",
        ),
        # Each path fits its own interval, and the error names the setting to raise.
        ({"LBF_PROBE_TIMEOUT": "10"}, "LBF_PROBE_INTERVAL", "raise LBF_PROBE_INTERVAL"),
        (
            {"LBF_PROBE_TIMEOUT": "5", "LBF_PROBE_INTERVAL": "4.5"},
            "LBF_PROBE_INTERVAL",
            "expected at least LBF_PROBE_TIMEOUT (5 s)",
        ),
        (
            {"LBF_PROBE_TIMEOUT": "5", "LBF_PROBE_INTERVAL": "10", "LBF_POOL_INTERVAL": "4"},
            "LBF_POOL_INTERVAL",
            "raise LBF_POOL_INTERVAL",
        ),
        (
            {"LBF_PROBE_INTERVAL": "60", "LBF_PROBE_ROUNDS": "16"},
            "LBF_PROBE_ROUNDS",
            "LBF_PROBE_INTERVAL",
        ),
    ],
)
def test_rejected_combination(environ: dict[str, str], variable: str, phrase: str) -> None:
    error = raised({**REQUIRED, **environ})
    assert_names(error, variable)
    assert phrase in str(error)


@pytest.mark.parametrize(
    ("rounds", "interval", "timeout", "fits"),
    [
        # (ROUNDS - 1) x INTERVAL + TIMEOUT at most 58 s (SPEC "Time").
        ("29", "2", "1.5", True),  # the defaults: 57.5 s
        ("30", "2", "1.5", False),
        ("6", "10", "1.5", True),  # 51.5 s
        ("6", "10", "8", True),  # 58 s exactly
        ("6", "10", "8.5", False),
        ("7", "10", "0.5", False),
        ("2", "30", "0.5", True),  # 30.5 s: the rule counts the last round's probes, not 60 s
        ("3", "30", "0.5", False),
        ("19", "3", "1.5", True),  # 55.5 s
        ("20", "3", "1.5", False),
        ("58", "1", "0.5", True),
        ("59", "1", "0.5", False),
        # Past the old cap of 60: what the default gives at 0.5 s may be written, and one more
        # is refused for the schedule, as at every interval.
        ("116", "0.5", "0.5", True),
        ("117", "0.5", "0.5", False),
        ("61", "2", "1.5", False),
    ],
)
def test_rounds_must_fit_the_one_minute_schedule(
    rounds: str, interval: str, timeout: str, fits: bool
) -> None:
    """Rounds whose last probes end after 58 s would meet the next run: bad configuration."""
    environ = {
        **REQUIRED,
        "LBF_PROBE_ROUNDS": rounds,
        "LBF_PROBE_INTERVAL": interval,
        "LBF_PROBE_TIMEOUT": timeout,
    }
    if fits:
        settings = Settings.from_env(environ)
        assert settings.probe_rounds == int(rounds)
        return
    error = raised(environ)
    assert_names(error, "LBF_PROBE_ROUNDS")
    assert "LBF_PROBE_INTERVAL" in str(error)
    assert f"got {rounds} rounds of {interval} s" in str(error)


@pytest.mark.parametrize(
    ("environ", "rounds"),
    [
        ({}, 29),  # the SPEC's table: 29 at 2 s
        ({"LBF_LB_ADDRESS": "private"}, 19),  # 3 s by default there
        ({"LBF_LB_ADDRESS": "private", "LBF_PROBER_FUNCTION": "probe"}, 19),  # 18 x 3 + 2.5
        ({"LBF_PROBE_INTERVAL": "10"}, 6),  # an operator's old interval: rounds follow it
        ({"LBF_PROBE_INTERVAL": "10", "LBF_PROBE_TIMEOUT": "2"}, 6),  # the old defaults
        ({"LBF_PROBE_INTERVAL": "3"}, 19),
        ({"LBF_PROBE_INTERVAL": "2.5", "LBF_PROBE_TIMEOUT": "2.5"}, 23),  # 22 x 2.5 + 2.5 = 57.5
        # The prober function's margin counts where the LBs' path takes it: 4 x 10 + 8.5 = 48.5,
        # and a sixth round's probes would end at 58.5 s; in-process, 5 x 10 + 7.5 = 57.5.
        (
            {
                "LBF_LB_ADDRESS": "private",
                "LBF_PROBER_FUNCTION": "probe",
                "LBF_PROBE_INTERVAL": "10",
                "LBF_PROBE_TIMEOUT": "7.5",
            },
            5,
        ),
        ({"LBF_PROBE_INTERVAL": "10", "LBF_PROBE_TIMEOUT": "7.5"}, 6),
        # The pool's path through it does not count: it is no LB round.
        ({"LBF_PROBER_FUNCTION": "p", "LBF_PROBE_INTERVAL": "10", "LBF_PROBE_TIMEOUT": "7.5"}, 6),
    ],
)
def test_the_default_rounds_are_as_many_as_fit(environ: dict[str, str], rounds: int) -> None:
    settings = Settings.from_env({**REQUIRED, **environ})
    assert settings.probe_rounds == rounds
    last_probes_end = (rounds - 1) * settings.probe_interval + settings.probe_timeout
    assert last_probes_end + (1.0 if settings.lbs_through_prober else 0.0) <= 58.0
    # One more would not fit: as many as fit, not fewer.
    assert last_probes_end + settings.probe_interval > 58.0 - (
        1.0 if settings.lbs_through_prober else 0.0
    )


@pytest.mark.parametrize(
    ("environ", "interval", "timeout"),
    [
        ({}, 2.0, 1.5),
        ({"LBF_LB_ADDRESS": "private"}, 3.0, 1.5),
        ({"LBF_LB_ADDRESS": "PRIVATE", "LBF_PROBER_FUNCTION": "probe"}, 3.0, 1.5),
        ({"LBF_POOL_ADDRESS": "public"}, 2.0, 1.5),
    ],
)
def test_the_interval_default_follows_the_lbs_address(
    environ: dict[str, str], interval: float, timeout: float
) -> None:
    settings = Settings.from_env({**REQUIRED, **environ})
    assert (settings.probe_interval, settings.probe_timeout) == (interval, timeout)


@pytest.mark.parametrize(
    ("environ", "variable", "phrase"),
    [
        # The LBs' path through the prober function: TIMEOUT + 1 s within LBF_PROBE_INTERVAL.
        (
            {"LBF_LB_ADDRESS": "private", "LBF_PROBER_FUNCTION": "p", "LBF_PROBE_INTERVAL": "2"},
            "LBF_PROBE_INTERVAL",
            "LBF_PROBE_TIMEOUT + 1 s through the prober function (2.5 s)",
        ),
        # The pool's path through it: within LBF_POOL_INTERVAL (the pool is private by default).
        (
            {"LBF_PROBER_FUNCTION": "p", "LBF_POOL_INTERVAL": "2"},
            "LBF_POOL_INTERVAL",
            "raise LBF_POOL_INTERVAL",
        ),
        # Without the function no margin: 2 s of probes fit a 2 s pool interval, not 1.9 s.
        ({"LBF_POOL_INTERVAL": "1.9", "LBF_PROBE_TIMEOUT": "2"}, "LBF_POOL_INTERVAL", "(2 s)"),
    ],
)
def test_each_path_fits_its_own_interval(
    environ: dict[str, str], variable: str, phrase: str
) -> None:
    error = raised({**REQUIRED, **environ})
    assert_names(error, variable)
    assert phrase in str(error)


@pytest.mark.parametrize(
    "environ",
    [
        {"LBF_LB_ADDRESS": "private", "LBF_PROBER_FUNCTION": "p", "LBF_PROBE_INTERVAL": "2.5"},
        {"LBF_PROBER_FUNCTION": "p", "LBF_POOL_INTERVAL": "2.5"},
        {"LBF_POOL_INTERVAL": "2", "LBF_PROBE_TIMEOUT": "2"},
    ],
)
def test_a_path_that_fits_its_interval_exactly_is_accepted(environ: dict[str, str]) -> None:
    Settings.from_env({**REQUIRED, **environ})


@pytest.mark.parametrize("interval", ["61", "90", "900"])
def test_an_interval_longer_than_the_schedule_is_refused_on_its_own(interval: str) -> None:
    error = raised({**REQUIRED, "LBF_PROBE_ROUNDS": "1", "LBF_PROBE_INTERVAL": interval})
    assert_names(error, "LBF_PROBE_INTERVAL")
    assert "at most 60" in str(error)


@pytest.mark.parametrize(
    ("environ", "seconds", "terms"),
    [
        # The SPEC's formula: (FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL).
        ({}, 11.5, (8.0, 1.5, 2.0)),  # the SPEC's public figure
        ({"LBF_LB_ADDRESS": "private"}, 16.5, (12.0, 1.5, 3.0)),  # in-process: no invoke
        # The SPEC's private figure: the LBs' path through the prober function adds 1 s.
        ({"LBF_LB_ADDRESS": "private", "LBF_PROBER_FUNCTION": "p"}, 17.5, (12.0, 1.5, 3.0, 1.0)),
        # The pool's path through it is no term: it never delays an LB round.
        ({"LBF_PROBER_FUNCTION": "p"}, 11.5, (8.0, 1.5, 2.0)),
        ({"LBF_FALL": "1"}, 7.5, (4.0, 1.5, 2.0)),
        ({"LBF_PROBE_INTERVAL": "10", "LBF_PROBE_TIMEOUT": "2"}, 42.0, (40.0, 2.0, 0.0)),
        ({"LBF_PROBE_ROUNDS": "3", "LBF_PROBE_INTERVAL": "10"}, 71.5, (40.0, 1.5, 30.0)),
        (
            {"LBF_PROBE_ROUNDS": "5", "LBF_PROBE_INTERVAL": "1", "LBF_PROBE_TIMEOUT": "0.5"},
            59.5,
            (4.0, 0.5, 55.0),
        ),
        (
            {"LBF_PROBE_ROUNDS": "11", "LBF_PROBE_INTERVAL": "5", "LBF_FALL": "10"},
            61.5,
            (55, 1.5, 5),
        ),
    ],
)
def test_the_detection_bound_is_the_sum_of_its_named_terms(
    environ: dict[str, str], seconds: float, terms: tuple[float, ...]
) -> None:
    bound = Settings.from_env({**REQUIRED, **environ}).detection_bound

    assert bound.seconds == seconds
    assert tuple(term.seconds for term in bound.terms) == terms
    assert bound.formula.startswith("(FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL) + ")
    assert bound.formula.endswith(" + start-up")


def test_error_message_names_the_variable_and_the_expected_form() -> None:
    error = raised({**REQUIRED, "LBF_TTL": "-1"})
    assert str(error) == "LBF_TTL: expected a whole number of seconds from 1 to 86400, got '-1'"


def test_error_shows_a_long_value_cut_short() -> None:
    error = raised({**REQUIRED, "LBF_CLUSTER": "x" * 5000})
    assert len(str(error)) < 200


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "LBF_CLUSTER"),
        ({"LBF_TTL": "x", "LBF_CLUSTER": "a b", "LBF_DOMAIN": ""}, "LBF_CLUSTER"),
        ({**REQUIRED, "LBF_TTL": "x", "LBF_DOMAIN": "com"}, "LBF_DOMAIN"),
        ({**REQUIRED, "LBF_TTL": "x", "LBF_HOSTED_ZONE_ID": ""}, "LBF_HOSTED_ZONE_ID"),
        (
            {**REQUIRED, "LBF_DRY_RUN": "x", "LBF_TTL": "x", "LBF_ACTIVE_NAME": "-"},
            "LBF_ACTIVE_NAME",
        ),
        ({**REQUIRED, "LBF_DRY_RUN": "x", "LBF_TTL": "x"}, "LBF_TTL"),
        ({**REQUIRED, "LBF_POOL_CHECK": "x", "LBF_LB_CHECK": "x"}, "LBF_LB_CHECK"),
        ({**REQUIRED, "LBF_PROBE_INTERVAL": "x", "LBF_PROBE_TIMEOUT": "99"}, "LBF_PROBE_TIMEOUT"),
        # The variables added after SPEC's table come after all of it.
        ({**REQUIRED, "LBF_ACTIVE_MODE": "x", "LBF_DRY_RUN": "x"}, "LBF_DRY_RUN"),
        ({**REQUIRED, "LBF_ROUTE53_HEALTH_CHECKS": "x", "LBF_ACTIVE_MODE": "x"}, "LBF_ACTIVE_MODE"),
    ],
)
def test_the_first_bad_variable_in_fixed_order_is_reported(
    environ: dict[str, str], variable: str
) -> None:
    assert raised(environ).variable == variable


# --- check templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://{address}:80/health", CheckTemplate("http", "http://{address}:80/health")),
        ("http://{address}/", CheckTemplate("http", "http://{address}/")),
        ("http://{address}", CheckTemplate("http", "http://{address}")),
        (
            "HTTPS://{address}:8443/ready?x=1",
            CheckTemplate("https", "https://{address}:8443/ready?x=1"),
        ),
        ("https://{address}/status", CheckTemplate("https", "https://{address}/status")),
        ("tcp://{address}:443", CheckTemplate("tcp", "tcp://{address}:443")),
        ("Tcp://{address}:1", CheckTemplate("tcp", "tcp://{address}:1")),
    ],
)
@pytest.mark.parametrize("variable", ["LBF_LB_CHECK", "LBF_POOL_CHECK"])
def test_accepted_check(variable: str, raw: str, expected: CheckTemplate) -> None:
    field = variable.removeprefix("LBF_").lower()
    assert getattr(settings({variable: raw}), field) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://{address}:{port}/", CheckTemplate("http", "http://{address}:{port}/")),
        ("tcp://{address}:{port}", CheckTemplate("tcp", "tcp://{address}:{port}")),
        (
            "https://{address}:{port}/h?p=x",
            CheckTemplate("https", "https://{address}:{port}/h?p=x"),
        ),
    ],
)
def test_pool_check_may_use_the_port(raw: str, expected: CheckTemplate) -> None:
    assert settings(pool_check=raw).pool_check == expected


@pytest.mark.parametrize(
    "raw",
    ["http://{address}:{port}/health", "tcp://{address}:{port}", "http://{address}/?p={port}"],
)
def test_lb_check_may_not_use_the_port(raw: str) -> None:
    error = raised({**REQUIRED, "LBF_LB_CHECK": raw})
    assert_names(error, "LBF_LB_CHECK")
    assert "{port} is not allowed" in str(error)


BAD_CHECKS = [
    "ftp://{address}/",
    "{address}:80",
    "//{address}/health",
    "http:/{address}/",
    "http://example.com/health",
    "http://{address}/{address}",
    "http://{address!r}/",
    "http://{address:>10}/",
    "http://{Address}/",
    "http://{ address }/",
    "http://{address}/{}",
    "http://{address}/{{x}}",
    "http://{address}/{0}",
    "http://{address}/}",
    "http://{address}/health check",
    'http://{address}/"x"',
    "http://{address}/<x>",
    "http://{address}/a\\b",
    "http://[{address}]/",
    "http://{address}.example.com/",
    "http://x{address}/",
    "http://example.com/{address}",
    "http://user:secret@{address}/",
    "http://{address}:0/",
    "http://{address}:65536/",
    "http://{address}:http/",
    "http://{address}:/",
    "tcp://{address}",
    "tcp://{address}:",
    "tcp://{address}:80/",
    "tcp://{address}:80/health",
    "tcp://{address}:80?x",
    "tcp://{address}:0",
    "tcp://{address}:65536",
    "tcp://[{address}]:80",
]


@pytest.mark.parametrize("raw", BAD_CHECKS)
@pytest.mark.parametrize("variable", ["LBF_LB_CHECK", "LBF_POOL_CHECK"])
def test_rejected_check(variable: str, raw: str) -> None:
    error = raised({**REQUIRED, variable: raw})
    assert_names(error, variable)
    assert "expected an http://, https:// or tcp:// URL template" in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        "http://{address}:{port}/{port}",
        "http://{address}:{port}:{port}/",
        "http://{address}:{port}{port}/",
    ],
)
def test_pool_check_rejects_repeated_or_misplaced_port(raw: str) -> None:
    assert_names(raised({**REQUIRED, "LBF_POOL_CHECK": raw}), "LBF_POOL_CHECK")


@pytest.mark.parametrize(
    ("template", "address", "port", "expected"),
    [
        ("http://{address}:80/health", "10.0.0.5", None, "http://10.0.0.5:80/health"),
        ("http://{address}:80/health", "10.0.0.5", 8080, "http://10.0.0.5:80/health"),
        ("http://{address}:{port}/health", "10.0.0.5", 8080, "http://10.0.0.5:8080/health"),
        ("http://{address}:{port}/health", "2001:db8::5", 81, "http://[2001:db8::5]:81/health"),
        ("https://{address}/", "fe80::1", None, "https://[fe80::1]/"),
        ("tcp://{address}:443", "192.0.2.1", None, "tcp://192.0.2.1:443"),
        ("tcp://{address}:{port}", "2001:db8::5", 443, "tcp://[2001:db8::5]:443"),
        ("tcp://{address}:{port}", "127.0.0.2", 65535, "tcp://127.0.0.2:65535"),
    ],
)
def test_render(template: str, address: str, port: int | None, expected: str) -> None:
    scheme = template.partition("://")[0]
    assert CheckTemplate(scheme, template).render(address, port) == expected


def test_render_of_a_port_template_needs_a_port() -> None:
    check = CheckTemplate("http", "http://{address}:{port}/health")
    assert check.needs_port
    with pytest.raises(ValueError, match="needs a port"):
        check.render("10.0.0.5")


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_render_refuses_a_port_out_of_range(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        CheckTemplate("tcp", "tcp://{address}:{port}").render("10.0.0.5", port)


def test_default_checks_render_as_the_spec_says() -> None:
    assert DEFAULTS.lb_check.render("198.51.100.7") == "http://198.51.100.7:80/health"
    assert DEFAULTS.pool_check.render("10.0.1.9", 8080) == "http://10.0.1.9:8080/health"
    assert not DEFAULTS.lb_check.needs_port


def test_route53_failover_and_its_check_interval_reach_the_rules() -> None:
    pair = settings(dns_failover="ROUTE53", route53_interval=10, fall=2).rules.pair
    assert (pair.enabled, pair.request_interval, pair.failure_threshold) == (True, 10, 2)
    assert pair.detection_seconds == 20
    checks = settings(route53_interval=10, fall=2).rules.second_opinion
    # The checks are shared with LBF_ROUTE53_HEALTH_CHECKS: one interval and threshold for both.
    assert (checks.request_interval, checks.failure_threshold) == (10, 2)
    assert not settings().rules.pair.enabled
    assert settings().rules.pair.request_interval == 30


@pytest.mark.parametrize(
    ("variables", "phrase"),
    [
        (
            {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"},
            "route53 needs LBF_MODE=dns",
        ),
        ({"LBF_ACTIVE_MODE": "all"}, "route53 needs LBF_ACTIVE_MODE=single"),
        (
            {"LBF_LB_ADDRESS": "private"},
            "Route 53's health checkers reach only public addresses",
        ),
        (
            {"LBF_LB_CHECK": "http://{address}/" + "a" * 255},
            "an LBF_LB_CHECK path of at most 255 characters",
        ),
    ],
)
def test_route53_failover_is_refused_where_route53_cannot_check_the_lbs(
    variables: dict[str, str], phrase: str
) -> None:
    error = raised({**REQUIRED, "LBF_DNS_FAILOVER": "route53", **variables})
    assert_names(error, "LBF_DNS_FAILOVER")
    assert phrase in str(error)
