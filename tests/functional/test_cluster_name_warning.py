"""An existing cluster whose name a new one could not take (core.names.NEW_CLUSTER) keeps
running: the command line says why the name is frowned upon, and does its work anyway."""

from __future__ import annotations

import pytest

from chalicelib.__main__ import main
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud
from tests.kit.settings import environment


@pytest.mark.parametrize(("cluster", "warned"), [("web.eu", True), ("web-eu", False)])
def test_the_command_line_runs_an_existing_dotted_cluster_with_a_warning(
    capsys: pytest.CaptureFixture[str], cluster: str, warned: bool
) -> None:
    cloud = FakeCloud()
    env = {**environment(FAKE_CLOUD_ENV, sns_topic_arn=None), "LBF_CLUSTER": cluster}

    code = main(["status"], environ=env, services=cloud.services(), clock=cloud.clock)

    err = capsys.readouterr().err
    assert code != 2  # not a configuration error: the status of an empty cluster
    assert (
        "warning: LBF_CLUSTER 'web.eu' runs, but a new cluster could not take it" in err
    ) is warned
