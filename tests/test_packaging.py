"""The Lambda layer installs exactly the package's runtime dependencies (boto3 comes with the runtime)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "gateway"


def _names(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower()
            out[name] = line.replace(" ", "")
    return out


def _lock() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {name: (pinned version, [sha256 hashes])}."""
    text = (LAYER / "requirements.lock").read_text().replace("\\\n", " ")
    out: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *hashes = line.split("--hash=")
        req = Requirement(spec.strip())
        [pin] = list(req.specifier)
        assert pin.operator == "==", line
        out[canonicalize_name(req.name)] = (pin.version, [h.strip() for h in hashes])
    return out


def test_layer_requirements_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    layer = _names((LAYER / "requirements.txt").read_text().splitlines())
    assert "boto3" in declared and "boto3" not in layer
    declared.pop("boto3")
    assert declared == layer


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name == "boto3":  # the Lambda runtime provides boto3 and botocore: never in the layer
            assert name not in lock and "botocore" not in lock
            continue
        assert name in lock, f"{name} is not pinned in requirements.lock: run make lock"
        version, _ = lock[name]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} does not satisfy {line}"
    assert "psycopg-binary" in lock and "uvloop" in lock  # the extras' packages are locked too
    for pinned, (_, hashes) in lock.items():
        # uv hashes every wheel of a version, aarch64 and x86_64 alike, so one lock builds both layers
        # (tests/ops/test_layer_build.py builds each with --require-hashes).
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), pinned


def test_migrations_ship_with_the_package() -> None:
    from aigateway.migrations import migration_files

    names = [n for n, _ in migration_files()]
    assert names == sorted(names) and names[0] == "001_base.sql"
    assert all(re.match(r"^\d{3}_[a-z0-9_]+\.sql$", n) for n in names)
