"""LiteLLM proxy as the peer (`--peers`): its own virtual environment, pointed at the same simulator.

The venv lives in `~/.cache/aigateway-bench/litellm-venv` (override: AIGATEWAY_BENCH_CACHE) so it
never touches the project's environment; it is created with `pip install 'litellm[proxy]'` the
first time `--peers` runs, and the runner says so before it starts. Configuration as in the earlier
measurement in infra/bench/RESULTS.md: model `openai/<id>` with `api_base` = the simulator's
`/api/v1`, the master key from the environment, `LITELLM_LOCAL_MODEL_COST_MAP=True` (no cost-map
download), no database, no callbacks, one worker pinned to the gateway's core.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import pinned, wait_http

ALIAS = "bench-model"


def cache_dir() -> Path:
    base = os.environ.get("AIGATEWAY_BENCH_CACHE") or os.path.join(Path.home(), ".cache", "aigateway-bench")
    return Path(base)


def venv() -> Path:
    return cache_dir() / "litellm-venv"


def installed() -> bool:
    return (venv() / "bin" / "litellm").exists()


def install() -> None:
    """Create the venv and install LiteLLM's proxy into it (loudly: it takes a minute or two)."""
    target = venv()
    print(f"[bench] installing LiteLLM into {target} (one-time, pip install 'litellm[proxy]') ...", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run([str(target / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)


def version() -> str:
    out = subprocess.run(
        [str(venv() / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


class LiteLLM:
    """A running LiteLLM proxy; `.url` is its base, `.key` the master key to send."""

    def __init__(self, sim_base: str, upstream_model: str, port: int, core: int | None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.key = "sk-bench-" + secrets.token_hex(16)
        self._dir = Path(tempfile.mkdtemp(prefix="aigw-bench-litellm-"))
        config = self._dir / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {ALIAS}\n"
            "    litellm_params:\n"
            f"      model: openai/{upstream_model}\n"
            f"      api_base: {sim_base}\n"
            "      api_key: sk-or-v1-bench\n"
            "general_settings:\n"
            "  master_key: os.environ/LITELLM_MASTER_KEY\n"
        )
        env = dict(os.environ)
        env.update({"LITELLM_MASTER_KEY": self.key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        cmd = [str(venv() / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--num_workers", "1"]
        self._log = open(self._dir / "litellm.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen(pinned(cmd, core), env=env, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_http(self.url + "/health/liveliness", timeout_s=180, proc=self.proc)
        except RuntimeError:
            self._log.flush()
            print((self._dir / "litellm.log").read_text()[-3000:], file=sys.stderr)
            raise

    def stop(self) -> None:
        from procs import stop

        stop(self.proc)
        self._log.close()
