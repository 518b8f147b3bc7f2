"""The one settings builder: the three required variables, plus what a test changes.

Every test states what differs from the SPEC's defaults, as mappings of variables by their real
names (the way an environment holds them) and then keyword overrides by name without `LBF_`:

    settings(active_mode="all", max_pool_drop=25)    # LBF_ACTIVE_MODE, LBF_MAX_POOL_DROP
    settings(FAKE_CLOUD_ENV, lb_address="public")    # a whole set first, then one change

A value of None leaves the variable out (its default applies); booleans are written as the
SPEC's lower-case `true`/`false`.

Every environment also names a loopback AWS endpoint (STAND_IN_AWS), as the local stand-in's does:
the in-memory AWS stands in for AWS the same way, and its web servers are on loopback addresses,
which only a stand-in's backend lists may hold (config.Settings.loopback_allowed). A test of a
deployed controller's view leaves it out: `settings(DEPLOYED)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.config import Settings

CLUSTER = "prod"
DOMAIN = "example.com"
HOSTED_ZONE_ID = "Z0123456789ABC"
REQUIRED_ENV: Mapping[str, str] = {
    "LBF_CLUSTER": CLUSTER,
    "LBF_DOMAIN": DOMAIN,
    "LBF_HOSTED_ZONE_ID": HOSTED_ZONE_ID,
}
# Nothing listens there: the in-memory AWS is handed to the code directly, never reached by URL.
STAND_IN_AWS: Mapping[str, str] = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
# AWS's own endpoints, as a deployed function has them.
DEPLOYED: Mapping[str, None] = {"AWS_ENDPOINT_URL": None}


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def environment(*variables: Mapping[str, object], **overrides: object) -> dict[str, str]:
    """The variables `Settings.from_env` reads: REQUIRED_ENV and STAND_IN_AWS, each mapping in
    turn, then overrides."""
    changes: dict[str, object] = dict(STAND_IN_AWS)
    for mapping in variables:
        changes.update(mapping)
    changes.update({f"LBF_{name.upper()}": value for name, value in overrides.items()})
    environ = dict(REQUIRED_ENV)
    for name, value in changes.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = _text(value)
    return environ


def settings(*variables: Mapping[str, object], **overrides: object) -> Settings:
    """`Settings.from_env` of `environment(*variables, **overrides)`."""
    return Settings.from_env(environment(*variables, **overrides))
