"""Fixtures the end-to-end tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standin.web import LocalWebServer


@pytest.fixture
def servers() -> Iterator[dict[str, LocalWebServer]]:
    """The web servers a test starts, by name; every one is stopped after the test."""
    started: dict[str, LocalWebServer] = {}
    yield started
    for server in started.values():
        server.stop()
