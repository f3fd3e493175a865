"""Shared test fixtures: the local cloud (started if needed, stopped after), AWS clients, events."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
# The local cloud's state folder (its log, pid, the stacks' outputs): scripts/test.sh runs a second lane of tests
# against a second local cloud with its own port and folder.
STATE_DIR = Path(os.environ.get("LOCALCLOUD_STATE_DIR") or ROOT / ".localcloud")
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def localcloud():
    """The local cloud's endpoint: reuses a running one, else starts it and stops it at the end."""
    started = False
    if not _healthy():
        subprocess.run(["bash", str(ROOT / "scripts" / "up.sh")], check=True)
        started = True
    yield ENDPOINT
    if started and not os.environ.get("KEEP_LOCALCLOUD"):
        subprocess.run(["bash", str(ROOT / "scripts" / "down.sh")], check=True)


@pytest.fixture(scope="session")
def aws(localcloud):
    """A factory of boto3 clients bound to the local cloud."""
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120)

    def client(service: str, **kwargs):
        kwargs.setdefault("config", config)
        return boto3.client(service, endpoint_url=localcloud, region_name=REGION, **kwargs)

    return client


def load_event(name: str) -> dict:
    """An event from events/ by file name (without .json)."""
    return json.loads((ROOT / "events" / f"{name}.json").read_text())
