"""Cold start of each Lambda handler: import + init time in a fresh interpreter, and its RSS.

For every `functions/<name>/app.py` a new interpreter (pinned to the gateway's core) loads the
module the way the Lambda runtime does, and reports the wall time of that import measured
inside the child with `time.perf_counter` (interpreter start-up itself excluded: Lambda's
runtime is already up when it imports the handler), and the peak RSS after it. Five runs, the
median is reported; one earlier run warms the .pyc files (the layer ships compiled bytecode).
The chat function is served by `python -m uvicorn app:app`, so its figure includes importing
uvicorn. One extra run under `python -X importtime` lists the top-level imports that cost most.

The environment is a Lambda's as far as init is concerned (function name, region, secrets in
variables); nothing at import time talks to the network or the database.

As a script (the child): python coldstart.py --child PATH_TO_APP_PY [--with-uvicorn]
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402


def _child(path: str, with_uvicorn: bool) -> None:
    import importlib.util
    import resource

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if with_uvicorn:
        import uvicorn  # noqa: F401
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    t1 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    import json

    cpu_ms = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1000
    out = {"import_init_ms": (t1 - t0) * 1000, "cpu_ms": cpu_ms, "rss_mb": ru1.ru_maxrss / 1024}
    sys.stdout.write(json.dumps(out))


def lambda_env(name: str, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGATEWAY_", "DATABASE_", "OPENROUTER_"))}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{name}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIGATEWAY_HOME": home,
            "DATABASE_URL": "postgresql://bench@127.0.0.1:9/bench",
            "JWT_SECRET": "bench-jwt-secret-not-used-for-anything-else",
            "ACCESS_API_KEY": "ik_" + "0" * 64,
            "OPENROUTER_API_KEY": "sk-or-v1-bench",
        }
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _top_imports(stderr: str, count: int = 8) -> list[dict[str, object]]:
    """Import time summed per top-level package (self times of all its modules), most costly first."""
    per_root: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        self_us = int(parts[0].split(":")[1])
        root = parts[2].strip().split(".")[0]
        per_root[root] = per_root.get(root, 0) + self_us
    ranked = sorted(per_root.items(), key=lambda kv: -kv[1])[:count]
    return [{"package": name, "ms": round(us / 1000, 1)} for name, us in ranked]


def measure(repo: str, core: int | None, runs: int = 5) -> dict[str, dict[str, object]]:
    """{function name: {import_init_ms, cpu_ms, rss_mb (medians), runs_ms, top_imports}}."""
    import json
    import subprocess
    import tempfile

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from procs import median, pinned

    results: dict[str, dict[str, object]] = {}
    functions = os.path.join(os.path.abspath(repo), "functions")
    home = tempfile.mkdtemp(prefix="aigw-bench-cold-")
    for name in sorted(os.listdir(functions)):
        app = os.path.join(functions, name, "app.py")
        if not os.path.isfile(app):
            continue
        env = lambda_env(name, home)
        cmd = [sys.executable, os.path.abspath(__file__), "--child", app]
        if name == "chat":
            cmd.append("--with-uvicorn")
        samples = []
        for i in range(runs + 1):
            out = subprocess.run(
                pinned(cmd, core), env=env, capture_output=True, text=True, check=True, timeout=120, cwd=home
            )
            if i:  # the first run compiles and caches bytecode
                samples.append(json.loads(out.stdout))
        imp = subprocess.run(
            pinned([sys.executable, "-X", "importtime", *cmd[1:]], core),
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            cwd=home,
        )
        ms = [float(s["import_init_ms"]) for s in samples]
        cpu = [float(s["cpu_ms"]) for s in samples]
        rss = [float(s["rss_mb"]) for s in samples]
        results[name] = {
            "import_init_ms": round(median(ms) or 0.0, 1),
            "cpu_ms": round(median(cpu) or 0.0, 1),
            "rss_mb": round(median(rss) or 0.0, 1),
            "runs_ms": [round(x, 1) for x in ms],
            "top_imports": _top_imports(imp.stderr),
        }
    return results


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        _child(sys.argv[2], "--with-uvicorn" in sys.argv[3:])
    else:
        import json

        _repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        print(json.dumps(measure(_repo, 1), indent=2))
