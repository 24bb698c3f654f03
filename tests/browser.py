"""Headless Chromium for page tests (Debian's ``chromium``; ``.ci/run`` installs it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is required (apt-get install chromium)", pytrace=False)


def run(url: str, *extra: str, budget_ms: int = 8000) -> str:
    """Load ``url`` and return what Chromium printed (the DOM with ``--dump-dom``)."""
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}",
             f"--virtual-time-budget={budget_ms}", *extra, url],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    return out.stdout


def dump_dom(url: str, budget_ms: int = 8000) -> str:
    return run(url, "--dump-dom", budget_ms=budget_ms)


def screenshot(url: str, name: str, size: str = "1280,900") -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    run(url, f"--screenshot={path}", f"--window-size={size}")
    return path
