"""What `sam build` would deploy, built here: the layer, each function's artifacts and a runtime.

- The layer: `layers/gateway/Makefile` (the one `sam build` runs) for this machine's architecture,
  bytecode compiled by CPython 3.12, as deployed.
- Each function: its own `functions/<name>/Makefile` target (`build-<LogicalId>`).
- The runtime: what Lambda's python3.12 image has in /var/runtime: `awslambdaric` (the runtime
  interface client the managed runtime uses) and boto3, installed for CPython 3.12 and compiled.
- Each function's specification comes from template.yaml: handler, timeout, memory and the
  environment (Globals plus the function's own), with `!Ref`/`!GetAtt`/`!Sub`/`!If` resolved
  against values the caller supplies (parameters, resource ids), so a variable the template
  forgets to give a function is missing here too.

Builds are cached under ~/.cache/aigateway/lambda by the hash of their inputs: the layer is
rebuilt when the lock, its Makefile or any file of the package changes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LAYER_SRC = ROOT / "layers" / "gateway"
FUNCTIONS = ROOT / "functions"
TEMPLATE = ROOT / "template.yaml"
RUNTIME_PYTHON_VERSION = (3, 12)
AWSLAMBDARIC = "awslambdaric==4.2.2"


@dataclass(frozen=True)
class Bundle:
    python: str  # a CPython 3.12, the runtime's interpreter
    layer: Path  # the layer's python/ folder, mounted at /opt/python
    runtime: Path  # LAMBDA_RUNTIME_DIR: awslambdaric and boto3
    tasks: Path  # tasks/<LogicalId>/: each function's build output (LAMBDA_TASK_ROOT)

    def task(self, logical_id: str) -> Path:
        return self.tasks / logical_id


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function of template.yaml, its values resolved."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    task_dir: Path | None = None  # the build output by default (Bundle.task)

    @property
    def behind_adapter(self) -> bool:
        """The Lambda Web Adapter execs the handler file instead of the Python runtime."""
        return self.environment.get("AWS_LAMBDA_EXEC_WRAPPER") == "/opt/bootstrap"


def runtime_python() -> str | None:
    """A CPython 3.12 on this machine (Lambda's python3.12 runtime), or None."""
    want = ".".join(map(str, RUNTIME_PYTHON_VERSION))
    candidates = [shutil.which(f"python{want}"), sys.executable]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{want}.*"), reverse=True)]
    check = "import sys; sys.exit(sys.implementation.name != 'cpython' or sys.version_info[:2] != (3, 12))"
    for exe in candidates:
        if (
            exe
            and Path(exe).exists()
            and subprocess.run([exe, "-c", check], capture_output=True, check=False).returncode == 0
        ):
            return exe
    return None


def _digest(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def _cached(target: Path, build: Any) -> Path:
    """Build into a temporary sibling and rename: a half-built folder is never reused."""
    if target.is_dir():
        return target
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def build_bundle(cache: Path | None = None) -> Bundle:
    python = runtime_python()
    if python is None:
        raise RuntimeError("no CPython 3.12 on this machine (Lambda's python3.12 runtime)")
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aigateway" / "lambda"
    arch = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"

    def layer(out: Path) -> None:
        _run(["make", "-C", str(LAYER_SRC), "build-GatewayLayer", f"ARTIFACTS_DIR={out}", f"LAYER_ARCH={arch}",
              f"PYTHON={sys.executable}", f"LAYER_COMPILE_PYTHON={python}"])  # fmt: skip

    def runtime(out: Path) -> None:
        import boto3

        _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
              "--target", str(out), AWSLAMBDARIC, f"boto3=={boto3.__version__}"])  # fmt: skip
        _run([python, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", str(out)])
        # /var/lang/bin of the managed runtime: `python` is the runtime's interpreter (run.sh execs it).
        shutil.rmtree(out / "bin", ignore_errors=True)  # boto3's console scripts
        (out / "bin").mkdir()
        (out / "bin" / "python").symlink_to(python)

    def tasks(out: Path) -> None:
        for makefile in sorted(FUNCTIONS.glob("*/Makefile")):
            for target in re.findall(r"^build-(\w+):", makefile.read_text(), re.M):
                _run(["make", "-C", str(makefile.parent), f"build-{target}", f"ARTIFACTS_DIR={out / target}"])

    layer_dir = _cached(cache / f"layer-{arch}-{_digest(LAYER_SRC, extra=python)}", layer)
    runtime_dir = _cached(cache / f"runtime-{_digest(extra=AWSLAMBDARIC + python + 'bin')}", runtime)
    tasks_dir = _cached(cache / f"tasks-{_digest(FUNCTIONS)}", tasks)
    return Bundle(python=python, layer=layer_dir / "python", runtime=runtime_dir, tasks=tasks_dir)


# -- template.yaml ---------------------------------------------------------------------------


class Resolver:
    """Resolves the intrinsic functions template.yaml uses in function properties."""

    def __init__(
        self, template: dict[str, Any], refs: Mapping[str, str], secrets: Mapping[str, str] | None = None
    ) -> None:
        self.template = template
        self.secrets = dict(secrets or {})
        params = template.get("Parameters", {})
        self.refs = {k: str(v["Default"]) for k, v in params.items() if "Default" in v} | dict(refs)
        self.refs.setdefault("AWS::Region", "us-east-1")
        self.refs.setdefault("AWS::AccountId", "123456789012")
        self.refs.setdefault("AWS::StackName", "aigw-harness")
        self.refs.setdefault("AWS::Partition", "aws")

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        resolved = self._intrinsic(node)
        if isinstance(resolved, str) and "{{resolve:secretsmanager:" in resolved:
            # CloudFormation's dynamic reference: the secret's value, read at deploy time.
            return re.sub(
                r"\{\{resolve:secretsmanager:(.+?):SecretString(?::[^}]*)?\}\}", lambda m: self.secrets[m[1]], resolved
            )
        return resolved

    def _intrinsic(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self.value(v) for k, v in node.items()}
        [(key, arg)] = node.items()
        if key == "Ref":
            return None if arg == "AWS::NoValue" else self.refs.get(arg, f"<{arg}>")
        if key == "Fn::GetAtt":
            name = ".".join(arg) if isinstance(arg, list) else arg
            return self.refs.get(name, f"<{name}>")
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(extra.get(m[1], self.refs.get(m[1], f"<{m[1]}>"))), text)
        if key == "Fn::If":
            cond, yes, no = arg
            return self.value(yes if self.condition(cond) else no)
        if key == "Fn::Equals":
            a, b = self.value(arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.value(arg[0])
        if key == "Fn::And":
            return all(self.value(a) for a in arg)
        if key == "Fn::Or":
            return any(self.value(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(p) for p in self.value(parts) if p is not None)
        return {key: self.value(arg)}


def function_specs(
    refs: Mapping[str, str], secrets: Mapping[str, str] | None = None, template_path: Path = TEMPLATE
) -> dict[str, FunctionSpec]:
    """Every function of the template, with its environment as Lambda would set it (`secrets`:
    the values of the secrets that `{{resolve:secretsmanager:...}}` references name)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(template_path.read_text(encoding="utf-8"))
    resolve = Resolver(template, refs, secrets)
    globals_ = template.get("Globals", {}).get("Function", {})
    specs = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env: dict[str, Any] = {}
        for source in (globals_, props):
            variables = resolve.value(source.get("Environment", {}).get("Variables", {}))
            env.update({k: v for k, v in variables.items() if v is not None})
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout_s=int(resolve.value(props.get("Timeout", globals_.get("Timeout", 3)))),
            memory_mb=int(resolve.value(props.get("MemorySize", globals_.get("MemorySize", 128)))),
            environment={k: str(v) for k, v in env.items()},
        )
    return specs
