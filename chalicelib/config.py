"""Settings from the environment, validated once, before any AWS call (SPEC: "Configuration").

Every value is checked here, so the rest of the code can trust it: several of them end up in DNS
names, Parameter Store names or probe URLs, where a stray character would do damage far from the
cause. Reading rules, the same for every variable:

- Surrounding spaces and tabs are stripped; nothing else is changed. A newline or any other control
  character anywhere in a value is an error (a value pasted with a line break is a mistake, and it
  must never reach a log line or a record unescaped).
- A required variable that is unset or empty is an error. An optional variable that is set to the
  empty string (or only spaces) is treated as unset and takes its default, because deployment
  templates commonly render an unused variable as "".
- The `LBF_` prefix belongs to the SPEC's table alone (KNOWN_VARIABLES). Any other name with that
  prefix, in any case, is refused before anything else, naming the closest known name: a misspelt
  safety switch (`LBF_DRYRUN`) silently ignored would do the opposite of what was meant.
- Booleans are `true` or `false` in any case, nothing else: `yes`, `1` or `on` is a guess at intent.
- Everything is validated on every call, in one fixed order: unknown names (in sorted order), the
  required variables, then the SPEC table's order, then the variables added after it
  (LBF_ACTIVE_MODE, LBF_PROBER_FAULT_PERCENT, LBF_LB_MIN_BACKENDS, LBF_ROUTE53_HEALTH_CHECKS,
  LBF_PROBER_FUNCTION, then the names reserved for a later release). The first bad variable raises
  ConfigError, so the same environment always reports the same error.
- One thing is read that is no setting: whether every AWS endpoint is on loopback, i.e. AWS is the
  local stand-in, the only case that lets loopback web servers into backend lists
  (`Settings.loopback_allowed`).

Pure: the environment comes in as a mapping; nothing here reads os.environ, the clock or the network.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

from chalicelib.core import names, timing
from chalicelib.core.dns import RecordRules
from chalicelib.core.endpoints import ADDRESS_FIELD, PORT_FIELD, SCHEMES, CheckTemplate, ProbeRules
from chalicelib.core.health import Thresholds
from chalicelib.core.inventory import ParseRules
from chalicelib.core.model import ActiveMode, AddressKind, FailoverMode
from chalicelib.core.names import CLUSTER, DNS_LABEL, HOSTED_ZONE_ID, HOSTED_ZONE_PREFIX, show
from chalicelib.core.plan import ActiveRules, ListRules, PlanRules
from chalicelib.core.planned_failover import MoveRules
from chalicelib.core.pushes import PushRules
from chalicelib.core.second_opinion import SecondOpinionRules
from chalicelib.core.timing import SCHEDULE_SECONDS, DetectionBound, detection_bound

# Shown in errors; longer values are cut so one bad variable cannot flood a log line.
_SHOWN_CHARS = 57

# Leaves room for "<label>.<domain>" with the longest label: 63 + 1 + 189 = 253, DNS's limit for a
# whole name, so no LB name that passes as a label can make a record Route 53 refuses.
_DOMAIN_MAX_CHARS = 189
_EIP_ALLOCATION_ID = re.compile(r"eipalloc-[0-9a-f]{8,32}")
_SSM_DOCUMENT_NAME = re.compile(r"[A-Za-z0-9_.-]{3,128}")
_SSM_DOCUMENT_ARN = re.compile(
    r"arn:aws[a-z-]*:ssm:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}:document/[A-Za-z0-9_.-]{3,128}"
)
_SNS_TOPIC_ARN = re.compile(
    r"arn:aws[a-z-]*:sns:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?"
)
# Lambda's own forms: a function name, or its ARN with an optional version or alias.
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
_PARAMETER_PREFIX = re.compile(r"(?:/[A-Za-z0-9_.-]+)+")
# "<prefix>/backends" must stay under Parameter Store's 1011-character name limit.
_PARAMETER_PREFIX_MAX_CHARS = 900
# Parameter Store allows 15 levels; the prefix leaves one for "backends", "lbs", "paused".
_PARAMETER_PREFIX_MAX_LEVELS = 14
# Parameter Store reserves names whose first level starts with these (case-insensitive).
_PARAMETER_RESERVED_STARTS = ("aws", "ssm")

_WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")
# Plain decimals only: no sign, exponent, nan or inf, so "1e3" cannot mean 1000 by accident.
_DECIMAL = re.compile(r"(?:[0-9]{1,6}(?:\.[0-9]{0,6})?|\.[0-9]{1,6})")

# The SPEC's table ("Configuration"), in its order: the only names the `LBF_` prefix may carry.
KNOWN_VARIABLES: frozenset[str] = frozenset(
    {
        "LBF_CLUSTER",
        "LBF_DOMAIN",
        "LBF_HOSTED_ZONE_ID",
        "LBF_ACTIVE_NAME",
        "LBF_TTL",
        "LBF_MODE",
        "LBF_EIP_ALLOCATION_ID",
        "LBF_LB_ADDRESS",
        "LBF_POOL_ADDRESS",
        "LBF_LB_CHECK",
        "LBF_POOL_CHECK",
        "LBF_POOL_PORT",
        "LBF_PROBE_TIMEOUT",
        "LBF_PROBE_INTERVAL",
        "LBF_PROBE_ROUNDS",
        "LBF_POOL_INTERVAL",
        "LBF_RISE",
        "LBF_FALL",
        "LBF_SSM_DOCUMENT",
        "LBF_PARAMETER_PREFIX",
        "LBF_SNS_TOPIC_ARN",
        "LBF_DRY_RUN",
        "LBF_MAX_POOL_DROP",
        "LBF_ACTIVE_MODE",
        "LBF_LB_MIN_BACKENDS",
        "LBF_PROBER_FAULT_PERCENT",
        "LBF_ROUTE53_HEALTH_CHECKS",
        "LBF_DNS_FAILOVER",
        "LBF_ROUTE53_INTERVAL",
        "LBF_PROBER_FUNCTION",
    }
)
_PREFIX = "LBF_"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_BOOLEAN_FORM = "true or false"
_ROUTE53_INTERVALS = ("10", "30")

# RFC 3986's characters plus the two placeholders' braces: nothing a URL parser might read two ways.
_CHECK_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%{}]+")
_TCP_CHECK = re.compile(r"tcp://\{address\}:(?:\{port\}|[0-9]{1,5})")
# Rendered once with each address family to prove the template puts the address in the host.
_SAMPLE_IPV4 = "192.0.2.10"
_SAMPLE_IPV6 = "2001:db8::10"
_SAMPLE_PORT = 8080

# The template becomes the probe's request line. Web servers refuse request lines past about
# 8 KiB (414), which would fail every probe; a check URL has no reason to come near that.
_CHECK_MAX_CHARS = 2048

_CHECK_FORM = (
    "an http://, https:// or tcp:// URL template with {address} as the host, "
    "e.g. http://{address}:80/health"
)


class ConfigError(Exception):
    """One bad or missing variable: names it and the form it should take."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


@dataclass(frozen=True)
class Rules:
    """The core's rule objects: each part of the core is handed only the ones it reads."""

    parse: ParseRules  # reading the inventory
    thresholds: Thresholds  # rise/fall damping
    records: RecordRules  # the records, the active one included
    plan: PlanRules  # a round's plan: records, the active role, the lists, the pushes
    move: MoveRules  # a planned failover
    probes: ProbeRules  # what each probe connects to
    second_opinion: SecondOpinionRules  # Route 53 health checks


@dataclass(frozen=True)
class Settings:
    """Everything a run is configured with; build it with `Settings.from_env`."""

    cluster: str
    domain: str
    hosted_zone_id: str
    active_name: str
    ttl: int
    mode: FailoverMode
    eip_allocation_id: str | None  # set exactly when mode is eip
    active_mode: ActiveMode
    lb_address: AddressKind
    pool_address: AddressKind
    lb_check: CheckTemplate
    pool_check: CheckTemplate
    pool_port: int
    probe_timeout: float
    probe_interval: float
    probe_rounds: int
    pool_interval: float
    rise: int
    fall: int
    ssm_document: str
    parameter_prefix: str
    sns_topic_arn: str | None
    dry_run: bool
    max_pool_drop: int  # percent
    # A round in which at least this percent of its targets (two or more) fail is the prober's fault.
    prober_fault_percent: int
    lb_min_backends: int
    route53_health_checks: bool
    # The function that probes private targets from inside the VPC; None: probed in-process.
    prober_function: str | None = None
    # Loopback web servers may enter a backend list: only when AWS is the local stand-in.
    loopback_allowed: bool = False

    @property
    def active_record_name(self) -> str:
        return self.record_name(self.active_name)

    def record_name(self, label: str) -> str:
        return names.record_name(label, self.domain)

    @property
    def backends_parameter_name(self) -> str:
        return f"{self.parameter_prefix}/backends"

    @property
    def lbs_parameter_name(self) -> str:
        return f"{self.parameter_prefix}/lbs"

    @property
    def paused_parameter_name(self) -> str:
        return f"{self.parameter_prefix}/paused"

    @property
    def push_log_group(self) -> str:
        """Where the LBs' SSM Agent sends the output of backend pushes (CloudWatch Logs).

        A naming convention rather than a setting: infra/cloudformation/cluster.yaml creates the
        group under this name (with retention) and lets the LBs' role write to it.
        """
        return names.push_log_group(self.cluster)

    @property
    def cluster_warning(self) -> str | None:
        """Why a new cluster could not take this LBF_CLUSTER (core.names.NEW_CLUSTER), or None.
        An existing cluster keeps running under its name: this is logged, not refused."""
        if names.is_new_cluster_name(self.cluster):
            return None
        return (
            f"LBF_CLUSTER {show(self.cluster)} runs, but a new cluster could not take it: "
            f"{names.NEW_CLUSTER_FORM}"
        )

    @property
    def lbs_through_prober(self) -> bool:
        """Whether the LBs' probe path goes through the prober function (LBs are private)."""
        return self.prober_function is not None and self.lb_address is AddressKind.PRIVATE

    @property
    def pool_through_prober(self) -> bool:
        """Whether the pool's probe path goes through the prober function (the pool is private)."""
        return self.prober_function is not None and self.pool_address is AddressKind.PRIVATE

    @property
    def detection_bound(self) -> DetectionBound:
        """How long a dead LB can hold the active role with these settings (`status` prints it)."""
        return detection_bound(
            fall=self.fall,
            interval=self.probe_interval,
            timeout=self.probe_timeout,
            rounds=self.probe_rounds,
            prober_invoke=self.lbs_through_prober,
        )

    @property
    def history_parameter_name(self) -> str:
        """What the controller did: one version per round in which something happened."""
        return f"{self.parameter_prefix}/history"

    @property
    def held_drop_parameter_name(self) -> str:
        """The servers LBF_MAX_POOL_DROP holds in the list, and since when (core.held_drop)."""
        return f"{self.parameter_prefix}/held-drop"

    @property
    def notices_parameter_name(self) -> str:
        """The conditions already notified, so a notice goes out on a change, not every run."""
        return f"{self.parameter_prefix}/notices"

    @property
    def rules(self) -> Rules:
        """The one place the core's rule objects are built from the settings."""
        records = RecordRules(
            domain=self.domain,
            ttl=self.ttl,
            active_name=self.active_name,
            active_mode=self.active_mode,
            cluster=self.cluster,
        )
        active = ActiveRules(
            mode=self.mode,
            eip_allocation_id=self.eip_allocation_id,
            min_backends=self.lb_min_backends,
        )
        return Rules(
            parse=ParseRules(
                active_name=self.active_name,
                lb_address=self.lb_address,
                pool_address=self.pool_address,
                pool_port=self.pool_port,
                mode=self.mode,
                loopback_allowed=self.loopback_allowed,
            ),
            thresholds=Thresholds(rise=self.rise, fall=self.fall),
            records=records,
            plan=PlanRules(
                records=records,
                active=active,
                lists=ListRules(
                    backends_parameter_name=self.backends_parameter_name,
                    lbs_parameter_name=self.lbs_parameter_name,
                    max_pool_drop=self.max_pool_drop,
                    held_drop_parameter_name=self.held_drop_parameter_name,
                ),
                pushes=PushRules(log_group=self.push_log_group),
            ),
            move=MoveRules(
                records=records, active=active, paused_parameter_name=self.paused_parameter_name
            ),
            probes=ProbeRules(lb_check=self.lb_check, pool_check=self.pool_check),
            second_opinion=SecondOpinionRules(
                enabled=self.route53_health_checks, cluster=self.cluster, lb_check=self.lb_check
            ),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Validate every variable; raise ConfigError for the first bad one (see module doc)."""
        _refuse_unknown_names(environ)
        cluster = _cluster(environ)
        domain = _domain(environ)
        hosted_zone_id = _hosted_zone_id(environ)
        active_name = _active_name(environ)
        ttl = _integer(environ, "LBF_TTL", 60, 1, 86400, unit="seconds")
        mode = _choice(environ, "LBF_MODE", FailoverMode.DNS, (FailoverMode.DNS, FailoverMode.EIP))
        eip_allocation_id = _eip_allocation_id(environ, mode)
        lb_address = _choice(
            environ, "LBF_LB_ADDRESS", AddressKind.PUBLIC, (AddressKind.PUBLIC, AddressKind.PRIVATE)
        )
        pool_address = _choice(
            environ,
            "LBF_POOL_ADDRESS",
            AddressKind.PRIVATE,
            (AddressKind.PRIVATE, AddressKind.PUBLIC),
        )
        lb_check = _check(environ, "LBF_LB_CHECK", "http://{address}:80/health", port_allowed=False)
        pool_check = _check(
            environ, "LBF_POOL_CHECK", "http://{address}:{port}/health", port_allowed=True
        )
        pool_port = _integer(environ, "LBF_POOL_PORT", 80, 1, 65535)
        probes = _probe_numbers(environ, lb_address)
        rise = _integer(environ, "LBF_RISE", 2, 1, 10)
        fall = _integer(environ, "LBF_FALL", 3, 1, 10)
        ssm_document = _ssm_document(environ)
        parameter_prefix = _parameter_prefix(environ, cluster)
        sns_topic_arn = _sns_topic_arn(environ)
        dry_run = _boolean(environ, "LBF_DRY_RUN", default=False)
        max_pool_drop = _integer(environ, "LBF_MAX_POOL_DROP", 50, 0, 100, unit="percent")
        active_mode = _active_mode(environ, mode)
        prober_fault_percent = _integer(
            environ, "LBF_PROBER_FAULT_PERCENT", 100, 1, 100, unit="percent"
        )
        lb_min_backends = _integer(environ, "LBF_LB_MIN_BACKENDS", 0, 0, 10000)
        route53_health_checks = _boolean(environ, "LBF_ROUTE53_HEALTH_CHECKS", default=False)
        prober_function = _prober_function(environ)
        probe_rounds = _schedule(
            probes,
            lbs_invoke=prober_function is not None and lb_address is AddressKind.PRIVATE,
            pool_invoke=prober_function is not None and pool_address is AddressKind.PRIVATE,
        )
        _reserved_for_later(environ)
        loopback_allowed = _aws_is_the_stand_in(environ)
        return cls(
            cluster=cluster,
            domain=domain,
            hosted_zone_id=hosted_zone_id,
            active_name=active_name,
            ttl=ttl,
            mode=mode,
            eip_allocation_id=eip_allocation_id,
            active_mode=active_mode,
            lb_address=lb_address,
            pool_address=pool_address,
            lb_check=lb_check,
            pool_check=pool_check,
            pool_port=pool_port,
            probe_timeout=probes.timeout,
            probe_interval=probes.interval,
            probe_rounds=probe_rounds,
            pool_interval=probes.pool_interval,
            rise=rise,
            fall=fall,
            ssm_document=ssm_document,
            parameter_prefix=parameter_prefix,
            sns_topic_arn=sns_topic_arn,
            dry_run=dry_run,
            max_pool_drop=max_pool_drop,
            prober_fault_percent=prober_fault_percent,
            lb_min_backends=lb_min_backends,
            route53_health_checks=route53_health_checks,
            prober_function=prober_function,
            loopback_allowed=loopback_allowed,
        )


# --- reading ------------------------------------------------------------------------------------


def _shown(value: str) -> str:
    """The value as it goes into an error: quoted, escaped, and cut to a readable length."""
    return show(value, _SHOWN_CHARS)


def _bad(name: str, expected: str, value: str) -> ConfigError:
    return ConfigError(name, f"expected {expected}, got {_shown(value)}")


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    """The stripped value, or None when unset or empty."""
    raw = environ.get(name)
    if raw is None:
        return None
    value = raw.strip(" \t")
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise ConfigError(
            name, f"must not contain a newline or control character, got {_shown(value)}"
        )
    return value or None


def _required(environ: Mapping[str, str], name: str, expected: str) -> str:
    value = _optional(environ, name)
    if value is None:
        raise ConfigError(name, f"required but not set; expected {expected}")
    return value


# --- generic parsers ----------------------------------------------------------------------------


def _integer(
    environ: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    *,
    unit: str = "",
) -> int:
    value = _optional(environ, name)
    if value is None:
        return default
    expected = f"a whole number{' of ' + unit if unit else ''} from {low} to {high}"
    if not _WHOLE_NUMBER.fullmatch(value):
        raise _bad(name, expected, value)
    number = int(value)
    if not low <= number <= high:
        raise _bad(name, expected, value)
    return number


def _optional_integer(environ: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """A whole number from `low` to `high`, or None when unset (its default is derived)."""
    if _optional(environ, name) is None:
        return None
    return _integer(environ, name, low, low, high)


def _seconds(environ: Mapping[str, str], name: str, default: float, *, high: float) -> float:
    value = _optional(environ, name)
    if value is None:
        return default
    expected = f"a number of seconds above 0 and at most {high:g}, e.g. 2 or 0.5"
    if not _DECIMAL.fullmatch(value):
        raise _bad(name, expected, value)
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 < seconds <= high):
        raise _bad(name, expected, value)
    return seconds


_Choice = TypeVar("_Choice", bound=enum.StrEnum)


def _choice(
    environ: Mapping[str, str], name: str, default: _Choice, choices: tuple[_Choice, ...]
) -> _Choice:
    """One of `choices`, by its value in any case; `choices` in the order the error lists them."""
    value = _optional(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    for choice in choices:
        if choice.value == lowered:
            return choice
    raise _bad(name, " or ".join(choice.value for choice in choices), value)


def _boolean(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = _optional(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _bad(name, _BOOLEAN_FORM, value)


def _refuse_unknown_names(environ: Mapping[str, str]) -> None:
    # Any case: `lbf_dry_run=true` is the same mistake as `LBF_DRYRUN=true`, and as easily made.
    unknown = sorted(
        name for name in environ if name.upper().startswith(_PREFIX) and name not in KNOWN_VARIABLES
    )
    if not unknown:
        return
    name = unknown[0]
    # Compared without the prefix every name shares, which would make any two names look alike.
    suffixes = {known.removeprefix(_PREFIX): known for known in KNOWN_VARIABLES}
    typed = name.upper().removeprefix(_PREFIX)
    close = difflib.get_close_matches(typed, sorted(suffixes), n=1, cutoff=0.6)
    hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
    # A name is as untrusted as a value: anything odd in it is escaped before it reaches a log.
    shown = name if _PLAIN_NAME.fullmatch(name) else _shown(name)
    raise ConfigError(
        shown, f"not a known setting (the {_PREFIX} prefix is reserved for lb-failover's){hint}"
    )


def _reserved_for_later(environ: Mapping[str, str]) -> None:
    """The table's names for Route 53's own failover, not used yet.

    Validated so that a value set now is not a surprise when they are, and so that asking for
    Route 53's failover says plainly that this release does not do it.
    """
    dns_failover = _optional(environ, "LBF_DNS_FAILOVER")
    if dns_failover is not None:
        lowered = dns_failover.lower()
        if lowered == "route53":
            raise ConfigError(
                "LBF_DNS_FAILOVER",
                "route53 is not supported yet by this release; unset it or set controller",
            )
        if lowered != "controller":
            raise _bad("LBF_DNS_FAILOVER", "controller (route53: not supported yet)", dns_failover)
    interval = _optional(environ, "LBF_ROUTE53_INTERVAL")
    if interval is not None and interval not in _ROUTE53_INTERVALS:
        raise _bad("LBF_ROUTE53_INTERVAL", "10 or 30 (seconds)", interval)


# --- one parser per variable with its own form --------------------------------------------------


def _cluster(environ: Mapping[str, str]) -> str:
    expected = "1-128 characters of A-Z a-z 0-9 . _ -"
    value = _required(environ, "LBF_CLUSTER", expected)
    if not CLUSTER.fullmatch(value):
        raise _bad("LBF_CLUSTER", expected, value)
    return value


def _domain(environ: Mapping[str, str]) -> str:
    expected = (
        f"a domain name of at least two labels and at most {_DOMAIN_MAX_CHARS} characters, "
        "each label 1-63 of a-z 0-9 - (no leading or trailing -), e.g. lb.example.com"
    )
    value = _required(environ, "LBF_DOMAIN", expected)
    # Route 53 answers with fully qualified names ("example.com."); one trailing dot is the same name.
    domain = value.lower().removesuffix(".")
    labels = domain.split(".")
    if (
        len(domain) > _DOMAIN_MAX_CHARS
        or len(labels) < 2
        or not all(DNS_LABEL.fullmatch(label) for label in labels)
    ):
        raise _bad("LBF_DOMAIN", expected, value)
    return domain


def _hosted_zone_id(environ: Mapping[str, str]) -> str:
    expected = "a Route 53 hosted zone id such as Z0123456789ABC or /hostedzone/Z0123456789ABC"
    value = _required(environ, "LBF_HOSTED_ZONE_ID", expected)
    zone_id = value.removeprefix(HOSTED_ZONE_PREFIX)
    if not HOSTED_ZONE_ID.fullmatch(zone_id):
        raise _bad("LBF_HOSTED_ZONE_ID", expected, value)
    return zone_id


def _active_name(environ: Mapping[str, str]) -> str:
    value = _optional(environ, "LBF_ACTIVE_NAME")
    if value is None:
        return "lb"
    name = value.lower()
    if not DNS_LABEL.fullmatch(name):
        raise _bad(
            "LBF_ACTIVE_NAME", "a DNS label: 1-63 of a-z 0-9 - (no leading or trailing -)", value
        )
    return name


def _eip_allocation_id(environ: Mapping[str, str], mode: FailoverMode) -> str | None:
    name = "LBF_EIP_ALLOCATION_ID"
    expected = "an Elastic IP allocation id such as eipalloc-0123456789abcdef0"
    value = _optional(environ, name)
    if value is None:
        if mode is FailoverMode.EIP:
            raise ConfigError(name, f"required when LBF_MODE is eip; expected {expected}")
        return None
    if mode is not FailoverMode.EIP:
        # Set but unused means the operator expects the EIP to follow the active LB, and it would not.
        raise ConfigError(name, "set, but LBF_MODE is dns; set LBF_MODE=eip or unset it")
    allocation_id = value.lower()
    if not _EIP_ALLOCATION_ID.fullmatch(allocation_id):
        raise _bad(name, expected, value)
    return allocation_id


def _active_mode(environ: Mapping[str, str], mode: FailoverMode) -> ActiveMode:
    active_mode = _choice(
        environ, "LBF_ACTIVE_MODE", ActiveMode.SINGLE, (ActiveMode.SINGLE, ActiveMode.ALL)
    )
    if active_mode is ActiveMode.ALL and mode is FailoverMode.EIP:
        # One Elastic IP can be attached to one instance only.
        raise ConfigError(
            "LBF_ACTIVE_MODE", "all cannot be used with LBF_MODE=eip (one EIP, one LB); use single"
        )
    return active_mode


def _check(
    environ: Mapping[str, str], name: str, default: str, *, port_allowed: bool
) -> CheckTemplate:
    value = _optional(environ, name)
    template = default if value is None else value
    problem = _check_problem(template, port_allowed=port_allowed)
    if problem is not None:
        raise ConfigError(name, f"{problem}; expected {_CHECK_FORM}, got {_shown(template)}")
    scheme, rest = template.split("://", 1)
    return CheckTemplate(scheme=scheme.lower(), template=f"{scheme.lower()}://{rest}")


def _check_problem(template: str, *, port_allowed: bool) -> str | None:
    """Why a check template is unusable, or None. Every rule here guards the probe URL."""
    if len(template) > _CHECK_MAX_CHARS:
        return f"at most {_CHECK_MAX_CHARS} characters"
    if any(char.isspace() for char in template):
        return "whitespace is not allowed"
    if not _CHECK_CHARACTERS.fullmatch(template):
        return "only URL characters are allowed"
    scheme, separator, _ = template.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in SCHEMES:
        return "the scheme must be http, https or tcp"
    leftover = template.replace(ADDRESS_FIELD, "").replace(PORT_FIELD, "")
    if "{" in leftover or "}" in leftover:
        # Also refuses format specs ("{address!r}"): the template is substituted, never .format()ed.
        return "the only placeholders are {address} and {port}, written exactly so"
    if template.count(ADDRESS_FIELD) != 1:
        return "{address} must appear exactly once"
    if PORT_FIELD in template and not port_allowed:
        return "{port} is not allowed: a load balancer has no backend port, write the number"
    if template.count(PORT_FIELD) > 1:
        return "{port} may appear at most once"
    normalised = f"{scheme}://{template.partition('://')[2]}"
    if scheme == "tcp" and not _TCP_CHECK.fullmatch(normalised):
        return "a tcp:// check is exactly tcp://{address}:PORT, with no path"
    for sample in (_SAMPLE_IPV4, _SAMPLE_IPV6):
        rendered = CheckTemplate(scheme, normalised).render(sample, _SAMPLE_PORT)
        problem = _rendered_url_problem(rendered, sample, needs_port=scheme == "tcp")
        if problem is not None:
            return problem
    return None


def _rendered_url_problem(url: str, address: str, *, needs_port: bool) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        # urlsplit refuses a malformed bracketed host, e.g. a template that adds its own [ ].
        return "{address} must be the whole host, without brackets"
    try:
        port = parts.port
    except ValueError:
        return "the port must be a number from 1 to 65535"
    if parts.username is not None or parts.password is not None:
        return "credentials are not allowed in a check URL"
    if parts.hostname != address:
        return "{address} must be the whole host, without brackets"
    # "host:" with no digits parses as no port at all; it is a typo, not a request for the default.
    if port == 0 or parts.netloc.endswith(":") or (needs_port and port is None):
        return "the port must be a number from 1 to 65535"
    return None


class _ProbeNumbers(NamedTuple):
    timeout: float
    interval: float
    rounds: int | None  # None: as many as fit (`_schedule`)
    pool_interval: float


def _probe_numbers(environ: Mapping[str, str], lb_address: AddressKind) -> _ProbeNumbers:
    """The four probe timings, each on its own; how they fit together is `_schedule`'s, once
    LBF_PROBER_FUNCTION says which paths take the invoke's margin."""
    private_lbs = lb_address is AddressKind.PRIVATE
    return _ProbeNumbers(
        # One probe outlasting the one-minute schedule is never what was meant.
        timeout=_seconds(environ, "LBF_PROBE_TIMEOUT", timing.DEFAULT_PROBE_TIMEOUT, high=60.0),
        interval=_seconds(
            environ,
            "LBF_PROBE_INTERVAL",
            timing.PRIVATE_LB_INTERVAL if private_lbs else timing.PUBLIC_LB_INTERVAL,
            high=SCHEDULE_SECONDS,
        ),
        rounds=_optional_integer(environ, "LBF_PROBE_ROUNDS", 1, 60),
        pool_interval=_seconds(
            environ, "LBF_POOL_INTERVAL", timing.DEFAULT_POOL_INTERVAL, high=SCHEDULE_SECONDS
        ),
    )


def _schedule(probes: _ProbeNumbers, *, lbs_invoke: bool, pool_invoke: bool) -> int:
    """LBF_PROBE_ROUNDS (as many as fit when unset), once each path is known to fit its interval.

    A path whose probes outlast its interval would overlap its next probes and skew rise/fall;
    rounds that do not fit would overlap the next run's, and the detection bound's gap term
    would be a promise no schedule can keep (SPEC "Where two rules meet", Time).
    """
    timeout = probes.timeout
    for interval_name, interval, invoke, path in (
        ("LBF_PROBE_INTERVAL", probes.interval, lbs_invoke, "the LBs'"),
        ("LBF_POOL_INTERVAL", probes.pool_interval, pool_invoke, "the pool's"),
    ):
        if not timing.path_fits(interval=interval, probe_timeout=timeout, invoke=invoke):
            raise ConfigError(
                interval_name,
                f"expected at least {_path_wait(timeout, invoke=invoke)} ({path} probes end "
                f"before their next start), got {interval:g}; raise {interval_name} or lower "
                "LBF_PROBE_TIMEOUT",
            )
    fit = timing.rounds_that_fit(interval=probes.interval, probe_timeout=timeout, invoke=lbs_invoke)
    if fit == 0:
        raise ConfigError(
            "LBF_PROBE_TIMEOUT",
            f"expected {_path_wait(timeout, invoke=lbs_invoke)} of at most "
            f"{timing.PROBES_END_BY:g} s (one round's probes in the one-minute schedule), "
            f"got {timeout:g}",
        )
    if probes.rounds is None:
        return fit
    if probes.rounds > fit:
        raise ConfigError(
            "LBF_PROBE_ROUNDS",
            f"expected at most {fit} (the last round's probes end by {timing.PROBES_END_BY:g} s "
            f"of the one-minute schedule: (LBF_PROBE_ROUNDS - 1) x LBF_PROBE_INTERVAL + "
            f"{_path_wait(timeout, invoke=lbs_invoke)}), got {probes.rounds} rounds of "
            f"{probes.interval:g} s; unset it for as many as fit",
        )
    return probes.rounds


def _path_wait(probe_timeout: float, *, invoke: bool) -> str:
    """A path's probe time as the operator reads it: "LBF_PROBE_TIMEOUT (1.5 s)"."""
    if not invoke:
        return f"LBF_PROBE_TIMEOUT ({probe_timeout:g} s)"
    seconds = timing.path_seconds(probe_timeout, invoke=True)
    return (
        f"LBF_PROBE_TIMEOUT + {timing.PROBER_INVOKE_SECONDS:g} s through the prober function "
        f"({seconds:g} s)"
    )


def _ssm_document(environ: Mapping[str, str]) -> str:
    value = _optional(environ, "LBF_SSM_DOCUMENT")
    if value is None:
        return "LbFailover-UpdateBackends"
    if not (_SSM_DOCUMENT_NAME.fullmatch(value) or _SSM_DOCUMENT_ARN.fullmatch(value)):
        raise _bad(
            "LBF_SSM_DOCUMENT",
            "an SSM document name of 3-128 characters of A-Z a-z 0-9 _ . - or a document ARN",
            value,
        )
    return value


def _parameter_prefix(environ: Mapping[str, str], cluster: str) -> str:
    name = "LBF_PARAMETER_PREFIX"
    value = _optional(environ, name)
    if value is None:
        return f"/lbf/{cluster}"
    expected = (
        f"a Parameter Store path such as /lbf/{cluster}: starting with /, no trailing / or //, "
        f"only A-Z a-z 0-9 _ . - /, at most {_PARAMETER_PREFIX_MAX_CHARS} characters "
        f"and {_PARAMETER_PREFIX_MAX_LEVELS} levels"
    )
    if (
        len(value) > _PARAMETER_PREFIX_MAX_CHARS
        or not _PARAMETER_PREFIX.fullmatch(value)
        or value.count("/") > _PARAMETER_PREFIX_MAX_LEVELS
    ):
        raise _bad(name, expected, value)
    if value[1:].lower().startswith(_PARAMETER_RESERVED_STARTS):
        raise _bad(
            name, "a path whose first level does not start with aws or ssm (reserved)", value
        )
    return value


def _sns_topic_arn(environ: Mapping[str, str]) -> str | None:
    value = _optional(environ, "LBF_SNS_TOPIC_ARN")
    if value is not None and not _SNS_TOPIC_ARN.fullmatch(value):
        raise _bad(
            "LBF_SNS_TOPIC_ARN",
            "an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:lb-failover",
            value,
        )
    return value


def _prober_function(environ: Mapping[str, str]) -> str | None:
    value = _optional(environ, "LBF_PROBER_FUNCTION")
    if value is not None and not (
        _FUNCTION_NAME.fullmatch(value) or _FUNCTION_ARN.fullmatch(value)
    ):
        raise _bad(
            "LBF_PROBER_FUNCTION",
            "a Lambda function name (1-64 of A-Z a-z 0-9 _ -) or its ARN, such as "
            "arn:aws:lambda:eu-west-1:123456789012:function:lb-failover-prod-ProbePrivate",
            value,
        )
    return value


def _aws_is_the_stand_in(environ: Mapping[str, str]) -> bool:
    """Whether every AWS endpoint boto3 is sent to is on loopback: AWS is the local stand-in.

    That is the one place a web server on a loopback address is real (the stand-in runs every
    instance on 127.0.0.0/8); anywhere else a loopback backend sends the LB's clients to the LB
    itself. Deliberately not a setting or a parameter, which a deployed stage could carry: a
    deployed function talks to AWS's own endpoints, so it can never switch this on, and an
    endpoint override pointing anywhere else (a service's own AWS_ENDPOINT_URL_<SERVICE>, or
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) switches it off.
    """
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return False
    endpoints = [value for name, value in environ.items() if name.startswith("AWS_ENDPOINT_URL")]
    return "AWS_ENDPOINT_URL" in environ and all(_is_loopback_url(url) for url in endpoints)


def _is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
