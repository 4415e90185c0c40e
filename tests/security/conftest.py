"""Hostile uploads: every test starts from the local profile's limits and an empty decoded-upload cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def local_limits(monkeypatch):
    """The local profile's defaults (no EXPLORER_* override from the environment), a fresh decode cache."""
    from explorer.images.uploads import decoded_cache

    for key in list(os.environ):
        if key.startswith("EXPLORER_MAX_") or key == "EXPLORER_PROFILE":
            monkeypatch.delenv(key)
    decoded_cache().clear()
    yield
    decoded_cache().clear()
