"""Settings from the environment, validated once, before any AWS call (SPEC: "Configuration").

Every value is checked here, so the rest of the code can trust it. How each variable is read is
`config.reading`'s; the table of known names and the did-you-mean, `config.variables`'s; the form
of each variable, `config.forms`'s. This module puts them together:

- Everything is validated on every call, in one fixed order: unknown names (in sorted order), the
  required variables, then the SPEC table's order, then the variables added after it
  (LBF_ACTIVE_MODE, LBF_PROBER_FAULT_PERCENT, LBF_LB_MIN_BACKENDS, LBF_ROUTE53_HEALTH_CHECKS,
  LBF_PROBER_FUNCTION, the name reserved for a later release, LBF_DNS_FAILOVER, LBF_ROUTE53_INTERVAL). The first bad variable raises
  ConfigError, so the same environment always reports the same error.
- One thing is read that is no setting: whether every AWS endpoint is on loopback, i.e. AWS is the
  local stand-in, the only case that lets loopback web servers into backend lists
  (`Settings.loopback_allowed`).

Pure: the environment comes in as a mapping; nothing here reads os.environ, the clock or the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config import forms
from chalicelib.config.reading import boolean, choice, integer
from chalicelib.config.variables import refuse_unknown_names
from chalicelib.core import names
from chalicelib.core.dns import RecordRules
from chalicelib.core.endpoints import CheckTemplate, ProbeRules
from chalicelib.core.failover_pair import PairRules
from chalicelib.core.health import Thresholds
from chalicelib.core.inventory import ParseRules
from chalicelib.core.lists import ListRules
from chalicelib.core.model import ActiveMode, AddressKind, DnsFailover, FailoverMode
from chalicelib.core.names import show
from chalicelib.core.plan import ActiveRules, PlanRules
from chalicelib.core.planned_failover import MoveRules
from chalicelib.core.pushes import PushRules
from chalicelib.core.second_opinion import SecondOpinionRules
from chalicelib.core.timing import DetectionBound, detection_bound


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
    pair: PairRules  # the active name as a Route 53 failover pair


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
    # LBF_DNS_FAILOVER and LBF_ROUTE53_INTERVAL (seconds): the active name as a failover pair.
    dns_failover: DnsFailover = DnsFailover.CONTROLLER
    route53_interval: int = 30
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
        checks, pair = self._route53_rules(records)
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
                pair=pair,
            ),
            move=MoveRules(
                records=records,
                active=active,
                paused_parameter_name=self.paused_parameter_name,
                pair=pair,
            ),
            probes=ProbeRules(lb_check=self.lb_check, pool_check=self.pool_check),
            second_opinion=checks,
            pair=pair,
        )

    def _route53_rules(self, records: RecordRules) -> tuple[SecondOpinionRules, PairRules]:
        """The health checks the controller keeps, shared by the second opinion and the pair."""
        checks = SecondOpinionRules(
            enabled=self.route53_health_checks,
            cluster=self.cluster,
            lb_check=self.lb_check,
            request_interval=self.route53_interval,
            failure_threshold=self.fall,
            loopback_allowed=self.loopback_allowed,
        )
        pair = PairRules(
            enabled=self.dns_failover is DnsFailover.ROUTE53,
            records=records,
            request_interval=self.route53_interval,
            failure_threshold=self.fall,
            checks=checks,
        )
        return checks, pair

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Validate every variable; raise ConfigError for the first bad one (see module doc)."""
        refuse_unknown_names(environ)
        cluster = forms.cluster(environ)
        domain = forms.domain(environ)
        hosted_zone_id = forms.hosted_zone_id(environ)
        active_name = forms.active_name(environ)
        ttl = integer(environ, "LBF_TTL", 60, 1, 86400, unit="seconds")
        mode = choice(environ, "LBF_MODE", FailoverMode.DNS, (FailoverMode.DNS, FailoverMode.EIP))
        eip_allocation_id = forms.eip_allocation_id(environ, mode)
        lb_address, pool_address = forms.address_kinds(environ)
        lb_check, pool_check = forms.checks(environ)
        pool_port = integer(environ, "LBF_POOL_PORT", 80, 1, 65535)
        probes = forms.probe_numbers(environ, lb_address)
        rise, fall = forms.damping(environ)
        ssm_document = forms.ssm_document(environ)
        parameter_prefix = forms.parameter_prefix(environ, cluster)
        sns_topic_arn = forms.sns_topic_arn(environ)
        dry_run = boolean(environ, "LBF_DRY_RUN", default=False)
        max_pool_drop = integer(environ, "LBF_MAX_POOL_DROP", 50, 0, 100, unit="percent")
        active_mode = forms.active_mode(environ, mode)
        prober_fault_percent = forms.prober_fault_percent(environ)
        lb_min_backends = integer(environ, "LBF_LB_MIN_BACKENDS", 0, 0, 10000)
        route53_health_checks = boolean(environ, "LBF_ROUTE53_HEALTH_CHECKS", default=False)
        prober_function = forms.prober_function(environ)
        probe_rounds = forms.rounds(probes, prober_function, lb_address, pool_address)
        dns_failover = forms.dns_failover(environ, mode, active_mode, lb_address, lb_check)
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
            dns_failover=dns_failover,
            route53_interval=forms.route53_interval(environ),
            loopback_allowed=forms.aws_is_the_stand_in(environ),
        )
