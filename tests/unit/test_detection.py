"""The detection bound's terms: the prober function's invoke counts only when it is used."""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.core.detection import detection_bound, detection_terms
from tests.builders import REQUIRED_ENV

FUNCTION = "lb-failover-prod-ProbePrivate-1A2B"


def settings(**variables: str) -> Settings:
    return Settings.from_env({**REQUIRED_ENV, **variables})


def test_the_defaults_give_the_spec_bound() -> None:
    # (3 + 1) x 10 + 2 + (60 - 6 x 10) = 42 s, plus start-up.
    assert detection_bound(settings()) == 42.0
    assert detection_bound(settings(), startup_seconds=1.5) == 43.5


def test_the_prober_function_adds_its_invoke_when_a_target_is_private() -> None:
    with_function = settings(LBF_PROBER_FUNCTION=FUNCTION)  # the pool is private by default
    names = [term.name for term in detection_terms(with_function)]
    assert "prober function invoke" in names
    assert detection_bound(with_function) == 43.0


def test_no_invoke_term_when_nothing_goes_to_the_prober_function() -> None:
    all_public = settings(
        LBF_PROBER_FUNCTION=FUNCTION, LBF_LB_ADDRESS="public", LBF_POOL_ADDRESS="public"
    )
    assert detection_bound(all_public) == 42.0
    assert detection_bound(settings()) == 42.0  # private targets, probed in-process
