"""One-time setup the harness does by itself: the LiteLLM peer venv, wrk; and what machine this is."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

LITELLM_SPEC = "litellm[proxy]==1.108.7"
LITELLM_VERSION = "1.108.7"
BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venvs" / "litellm"


def litellm_python() -> Path:
    return VENV_DIR / "bin" / "python"


def installed_litellm_version() -> str | None:
    py = litellm_python()
    if not py.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def ensure_litellm(log: Callable[[str], None]) -> tuple[Path | None, str]:
    """Create bench/.venvs/litellm with the pinned peer unless it is already there. Returns (python, note)."""
    if installed_litellm_version() == LITELLM_VERSION:
        return litellm_python(), f"LiteLLM {LITELLM_VERSION} already installed in {VENV_DIR}"
    log(f"installing {LITELLM_SPEC} into {VENV_DIR} (one time, ~3 minutes)")
    if not litellm_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True, timeout=300)
    pip = [str(litellm_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check", LITELLM_SPEC]
    out = subprocess.run(pip, capture_output=True, text=True, timeout=1800, check=False)
    version = installed_litellm_version()
    if version != LITELLM_VERSION:
        return None, f"LiteLLM install failed: {out.stderr.strip()[-400:]}"
    return litellm_python(), f"installed {LITELLM_SPEC} into {VENV_DIR}"


def ensure_wrk(log: Callable[[str], None]) -> tuple[str | None, str]:
    """wrk from Debian's packages; ``apt-get update`` only if the first install attempt fails."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk already installed"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "wrk missing and apt-get unavailable (not root)"
    log("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, capture_output=True, env=env, timeout=600, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600, check=False)
        subprocess.run(install, capture_output=True, env=env, timeout=600, check=False)
    found = shutil.which("wrk")
    return found, "installed wrk with apt-get" if found else "apt-get install wrk failed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def wrk_version(wrk: str | None) -> str:
    if not wrk:
        return "not installed"
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (out.stdout + out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def machine_info(wrk: str | None) -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(mem_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "llmplex": _version("llmplex"),
            "litellm": installed_litellm_version() or "not installed",
            "aiohttp": _version("aiohttp"),
            "starlette": _version("starlette"),
            "uvicorn": _version("uvicorn"),
            "uvloop": _version("uvloop"),
            "matplotlib": _version("matplotlib"),
            "wrk": wrk_version(wrk),
        },
    }
