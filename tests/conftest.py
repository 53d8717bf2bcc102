"""Shared fixtures: the sample export tree and a running replica of the Sefaria API over it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from sefaria_ingest.replica import ReplicaThread

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """../shared/sefaria-sample (40 books, 2015 Sefaria-Export layout); read-only."""
    path = SHARED / "sefaria-sample"
    if not (path / "json").is_dir():
        pytest.skip(f"sample export not found at {path}")
    return path


@pytest.fixture(scope="session")
def replica(sample_dir) -> str:
    """Base URL ("http://127.0.0.1:PORT") of a replica serving the sample, started once per test session."""
    with ReplicaThread(sample_dir, "127.0.0.1", 0) as url:
        yield url


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def http_get(base: str, path: str, params: list[tuple[str, str]] | dict | None = None, method: str = "GET") -> Reply:
    """One request to 127.0.0.1; `path` is quoted (a ref may hold spaces, commas, Hebrew)."""
    url = base + urllib.parse.quote(path, safe="/:,.'")
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Reply(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


@pytest.fixture(scope="session")
def http():
    """http(base, path, params=None, method="GET") -> Reply, for replicas a test starts itself."""
    return http_get


@pytest.fixture(scope="session")
def replica_get(replica):
    """get(path, params=None) -> Reply from the session's replica."""

    def get(path: str, params=None, method: str = "GET") -> Reply:
        return http_get(replica, path, params, method)

    return get
