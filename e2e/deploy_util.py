"""Helpers shared by the deploy tests (test_deploy.py, test_k8s.py): running commands,
whether docker works here, the figures file, and the image to test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "deploy"


def docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def run(*args: str, check: bool = True, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def record(**figures):
    """Adds figures to e2e/artifacts/deploy/figures.json (the README's source)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "figures.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(figures)
    path.write_text(json.dumps(data, indent=2) + "\n")


def image_tag() -> str:
    """STROM_IMAGE (test.sh builds it), else strom:e2e built here by deploy/build-image.sh."""
    tag = os.environ.get("STROM_IMAGE")
    if not tag:
        tag = "strom:e2e"
        run(str(ROOT / "deploy" / "build-image.sh"), tag, timeout=3600)
    return tag
