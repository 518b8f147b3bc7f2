"""Dummy AWS credentials and a region, for tests that build real boto3 clients (moto or Stubber)."""

from __future__ import annotations

import os

import pytest

from chalicelib.adapters.clients import forget_clients


def use_fake_credentials(
    monkeypatch: pytest.MonkeyPatch, region: str = "eu-west-1", *, clear: bool = False
) -> None:
    """Never the shell's own credentials, nor an endpoint redirect left in it; with `clear`, no
    other AWS_ variable either. The controller's cached clients are dropped, so the next one made
    sees these."""
    for key in list(os.environ):
        if clear and key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    forget_clients()
