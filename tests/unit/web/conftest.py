"""The fixtures of the web page's in-process tests: a fake gateway, the page's settings, and
FastAPI's TestClient over both."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from podium.web.app import create_app
from podium.web.settings import WebSettings
from tests.support.web import FakeGateway


@pytest.fixture
def gateway():
    return FakeGateway()


@pytest.fixture
def settings(tmp_path):
    return WebSettings(cache_dir=tmp_path / "cache", reports_dir=tmp_path / "reports", page_size=2)


@pytest.fixture
def web(gateway, settings):
    with TestClient(create_app(settings, link=gateway), base_url="http://127.0.0.1") as client:
        yield client
