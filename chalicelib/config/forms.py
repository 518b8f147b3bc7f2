"""One parser per variable with a form of its own: names, ids, ARNs, check templates, paths.

Several of these values end up in DNS names, Parameter Store names or probe URLs, where a stray
character would do damage far from the cause: each form is as narrow as AWS's own. Also the one
thing read that is no setting: whether AWS is the local stand-in (`aws_is_the_stand_in`).

Pure: the environment comes in as a mapping.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from chalicelib.config.reading import (
    ConfigError,
    bad,
    choice,
    integer,
    optional,
    optional_integer,
    required,
    seconds,
    shown,
)
from chalicelib.core import timing
from chalicelib.core.endpoints import ADDRESS_FIELD, PORT_FIELD, SCHEMES, CheckTemplate
from chalicelib.core.model import ActiveMode, AddressKind, DnsFailover, FailoverMode
from chalicelib.core.names import CLUSTER, DNS_LABEL, HOSTED_ZONE_ID, HOSTED_ZONE_PREFIX
from chalicelib.core.second_opinion import RESOURCE_PATH_MAX_CHARS
from chalicelib.core.timing import SCHEDULE_SECONDS

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

# RFC 3986's characters plus the two placeholders' braces: nothing a URL parser might read two ways.
_CHECK_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%{}]+")
_TCP_CHECK = re.compile(r"tcp://\{address\}:(?:\{port\}|[0-9]{1,5})")
# Rendered once with each address family to prove the template puts the address in the host.
_SAMPLE_IPV4 = "192.0.2.10"
_SAMPLE_IPV6 = "2001:db8::10"
_SAMPLE_PORT = 8080
# A sanity bound on LBF_PROBE_ROUNDS's form only: what fits the minute is `schedule`'s to say.
_MOST_ROUNDS = 1_000_000
# Route 53 offers these two request intervals and no other.
_ROUTE53_INTERVALS = ("10", "30")

# The template becomes the probe's request line. Web servers refuse request lines past about
# 8 KiB (414), which would fail every probe; a check URL has no reason to come near that.
_CHECK_MAX_CHARS = 2048

_CHECK_FORM = (
    "an http://, https:// or tcp:// URL template with {address} as the host, "
    "e.g. http://{address}:80/health"
)


def cluster(environ: Mapping[str, str]) -> str:
    expected = "1-128 characters of A-Z a-z 0-9 . _ -"
    value = required(environ, "LBF_CLUSTER", expected)
    if not CLUSTER.fullmatch(value):
        raise bad("LBF_CLUSTER", expected, value)
    return value


def domain(environ: Mapping[str, str]) -> str:
    expected = (
        f"a domain name of at least two labels and at most {_DOMAIN_MAX_CHARS} characters, "
        "each label 1-63 of a-z 0-9 - (no leading or trailing -), e.g. lb.example.com"
    )
    value = required(environ, "LBF_DOMAIN", expected)
    # Route 53 answers with fully qualified names ("example.com."); one trailing dot is the same name.
    name = value.lower().removesuffix(".")
    labels = name.split(".")
    if (
        len(name) > _DOMAIN_MAX_CHARS
        or len(labels) < 2
        or not all(DNS_LABEL.fullmatch(label) for label in labels)
    ):
        raise bad("LBF_DOMAIN", expected, value)
    return name


def hosted_zone_id(environ: Mapping[str, str]) -> str:
    expected = "a Route 53 hosted zone id such as Z0123456789ABC or /hostedzone/Z0123456789ABC"
    value = required(environ, "LBF_HOSTED_ZONE_ID", expected)
    zone_id = value.removeprefix(HOSTED_ZONE_PREFIX)
    if not HOSTED_ZONE_ID.fullmatch(zone_id):
        raise bad("LBF_HOSTED_ZONE_ID", expected, value)
    return zone_id


def active_name(environ: Mapping[str, str]) -> str:
    value = optional(environ, "LBF_ACTIVE_NAME")
    if value is None:
        return "lb"
    name = value.lower()
    if not DNS_LABEL.fullmatch(name):
        raise bad(
            "LBF_ACTIVE_NAME", "a DNS label: 1-63 of a-z 0-9 - (no leading or trailing -)", value
        )
    return name


def eip_allocation_id(environ: Mapping[str, str], mode: FailoverMode) -> str | None:
    name = "LBF_EIP_ALLOCATION_ID"
    expected = "an Elastic IP allocation id such as eipalloc-0123456789abcdef0"
    value = optional(environ, name)
    if value is None:
        if mode is FailoverMode.EIP:
            raise ConfigError(name, f"required when LBF_MODE is eip; expected {expected}")
        return None
    if mode is not FailoverMode.EIP:
        # Set but unused means the operator expects the EIP to follow the active LB, and it would not.
        raise ConfigError(name, "set, but LBF_MODE is dns; set LBF_MODE=eip or unset it")
    allocation_id = value.lower()
    if not _EIP_ALLOCATION_ID.fullmatch(allocation_id):
        raise bad(name, expected, value)
    return allocation_id


def active_mode(environ: Mapping[str, str], mode: FailoverMode) -> ActiveMode:
    chosen = choice(
        environ, "LBF_ACTIVE_MODE", ActiveMode.SINGLE, (ActiveMode.SINGLE, ActiveMode.ALL)
    )
    if chosen is ActiveMode.ALL and mode is FailoverMode.EIP:
        # One Elastic IP can be attached to one instance only.
        raise ConfigError(
            "LBF_ACTIVE_MODE", "all cannot be used with LBF_MODE=eip (one EIP, one LB); use single"
        )
    return chosen


def check(
    environ: Mapping[str, str], name: str, default: str, *, port_allowed: bool
) -> CheckTemplate:
    value = optional(environ, name)
    template = default if value is None else value
    problem = _check_problem(template, port_allowed=port_allowed)
    if problem is not None:
        raise ConfigError(name, f"{problem}; expected {_CHECK_FORM}, got {shown(template)}")
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


def address_kinds(environ: Mapping[str, str]) -> tuple[AddressKind, AddressKind]:
    """LBF_LB_ADDRESS, then LBF_POOL_ADDRESS: the address of each role that is probed and used."""
    lb_address = choice(
        environ, "LBF_LB_ADDRESS", AddressKind.PUBLIC, (AddressKind.PUBLIC, AddressKind.PRIVATE)
    )
    pool_address = choice(
        environ,
        "LBF_POOL_ADDRESS",
        AddressKind.PRIVATE,
        (AddressKind.PRIVATE, AddressKind.PUBLIC),
    )
    return lb_address, pool_address


def checks(environ: Mapping[str, str]) -> tuple[CheckTemplate, CheckTemplate]:
    """LBF_LB_CHECK, then LBF_POOL_CHECK: an LB has no backend port, a web server has one."""
    lb_check = check(environ, "LBF_LB_CHECK", "http://{address}:80/health", port_allowed=False)
    pool_check = check(
        environ, "LBF_POOL_CHECK", "http://{address}:{port}/health", port_allowed=True
    )
    return lb_check, pool_check


class ProbeNumbers(NamedTuple):
    timeout: float
    interval: float
    rounds: int | None  # None: as many as fit (`schedule`)
    pool_interval: float


def probe_numbers(environ: Mapping[str, str], lb_address: AddressKind) -> ProbeNumbers:
    """The four probe timings, each on its own; how they fit together is `schedule`'s, once
    LBF_PROBER_FUNCTION says which paths take the invoke's margin."""
    private_lbs = lb_address is AddressKind.PRIVATE
    return ProbeNumbers(
        # One probe outlasting the one-minute schedule is never what was meant.
        timeout=seconds(environ, "LBF_PROBE_TIMEOUT", timing.DEFAULT_PROBE_TIMEOUT, high=60.0),
        interval=seconds(
            environ,
            "LBF_PROBE_INTERVAL",
            timing.PRIVATE_LB_INTERVAL if private_lbs else timing.PUBLIC_LB_INTERVAL,
            high=SCHEDULE_SECONDS,
        ),
        # Bounded by the schedule (`schedule`: as many as fit, 116 at 0.5 s), not by a number here.
        rounds=optional_integer(environ, "LBF_PROBE_ROUNDS", 1, _MOST_ROUNDS),
        pool_interval=seconds(
            environ, "LBF_POOL_INTERVAL", timing.DEFAULT_POOL_INTERVAL, high=SCHEDULE_SECONDS
        ),
    )


def rounds(
    probes: ProbeNumbers,
    prober_function: str | None,
    lb_address: AddressKind,
    pool_address: AddressKind,
) -> int:
    """`schedule` for the paths as deployed: a private path goes through the prober function."""
    return schedule(
        probes,
        lbs_invoke=prober_function is not None and lb_address is AddressKind.PRIVATE,
        pool_invoke=prober_function is not None and pool_address is AddressKind.PRIVATE,
    )


def schedule(probes: ProbeNumbers, *, lbs_invoke: bool, pool_invoke: bool) -> int:
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
    total = timing.path_seconds(probe_timeout, invoke=True)
    return (
        f"LBF_PROBE_TIMEOUT + {timing.PROBER_INVOKE_SECONDS:g} s through the prober function "
        f"({total:g} s)"
    )


def damping(environ: Mapping[str, str]) -> tuple[int, int]:
    """LBF_RISE and LBF_FALL: equal results in a row that turn a target healthy / unhealthy."""
    return integer(environ, "LBF_RISE", 2, 1, 10), integer(environ, "LBF_FALL", 3, 1, 10)


def prober_fault_percent(environ: Mapping[str, str]) -> int:
    return integer(environ, "LBF_PROBER_FAULT_PERCENT", 100, 1, 100, unit="percent")


def ssm_document(environ: Mapping[str, str]) -> str:
    value = optional(environ, "LBF_SSM_DOCUMENT")
    if value is None:
        return "LbFailover-UpdateBackends"
    if not (_SSM_DOCUMENT_NAME.fullmatch(value) or _SSM_DOCUMENT_ARN.fullmatch(value)):
        raise bad(
            "LBF_SSM_DOCUMENT",
            "an SSM document name of 3-128 characters of A-Z a-z 0-9 _ . - or a document ARN",
            value,
        )
    return value


def parameter_prefix(environ: Mapping[str, str], cluster: str) -> str:
    name = "LBF_PARAMETER_PREFIX"
    value = optional(environ, name)
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
        raise bad(name, expected, value)
    if value[1:].lower().startswith(_PARAMETER_RESERVED_STARTS):
        raise bad(name, "a path whose first level does not start with aws or ssm (reserved)", value)
    return value


def sns_topic_arn(environ: Mapping[str, str]) -> str | None:
    value = optional(environ, "LBF_SNS_TOPIC_ARN")
    if value is not None and not _SNS_TOPIC_ARN.fullmatch(value):
        raise bad(
            "LBF_SNS_TOPIC_ARN",
            "an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:lb-failover",
            value,
        )
    return value


def prober_function(environ: Mapping[str, str]) -> str | None:
    value = optional(environ, "LBF_PROBER_FUNCTION")
    if value is not None and not (
        _FUNCTION_NAME.fullmatch(value) or _FUNCTION_ARN.fullmatch(value)
    ):
        raise bad(
            "LBF_PROBER_FUNCTION",
            "a Lambda function name (1-64 of A-Z a-z 0-9 _ -) or its ARN, such as "
            "arn:aws:lambda:eu-west-1:123456789012:function:lb-failover-prod-ProbePrivate",
            value,
        )
    return value


def dns_failover(
    environ: Mapping[str, str],
    mode: FailoverMode,
    active_mode: ActiveMode,
    lb_address: AddressKind,
    lb_check: CheckTemplate,
) -> DnsFailover:
    """`route53` only where Route 53 can check and answer what the active record holds."""
    chosen = choice(
        environ,
        "LBF_DNS_FAILOVER",
        DnsFailover.CONTROLLER,
        (DnsFailover.CONTROLLER, DnsFailover.ROUTE53),
    )
    if chosen is DnsFailover.CONTROLLER:
        return chosen
    why = None
    if mode is not FailoverMode.DNS:
        why = "LBF_MODE=dns (the pair is the active record; with eip an Elastic IP moves instead)"
    elif active_mode is not ActiveMode.SINGLE:
        why = "LBF_ACTIVE_MODE=single (a failover pair answers one LB at a time)"
    elif lb_address is not AddressKind.PUBLIC:
        why = "LBF_LB_ADDRESS=public (Route 53's health checkers reach only public addresses)"
    elif len(lb_check.endpoint(_SAMPLE_IPV4).path) > RESOURCE_PATH_MAX_CHARS:
        why = f"an LBF_LB_CHECK path of at most {RESOURCE_PATH_MAX_CHARS} characters (Route 53's)"
    if why is not None:
        raise ConfigError(
            "LBF_DNS_FAILOVER", f"route53 needs {why}; set it or unset LBF_DNS_FAILOVER"
        )
    return chosen


def route53_interval(environ: Mapping[str, str]) -> int:
    value = optional(environ, "LBF_ROUTE53_INTERVAL")
    if value is None:
        return 30
    if value not in _ROUTE53_INTERVALS:
        raise bad("LBF_ROUTE53_INTERVAL", "10 or 30 (seconds)", value)
    return int(value)


def aws_is_the_stand_in(environ: Mapping[str, str]) -> bool:
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
