"""The Lambda layer installs exactly the package's runtime dependencies (boto3 comes with the runtime)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _names(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower()
            out[name] = line.replace(" ", "")
    return out


def test_layer_requirements_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    layer = _names((ROOT / "layers/gateway/requirements.txt").read_text().splitlines())
    assert "boto3" in declared and "boto3" not in layer
    declared.pop("boto3")
    assert declared == layer


def test_migrations_ship_with_the_package() -> None:
    from aigateway.migrations import migration_files

    names = [n for n, _ in migration_files()]
    assert names == sorted(names) and names[0] == "001_base.sql"
    assert all(re.match(r"^\d{3}_[a-z0-9_]+\.sql$", n) for n in names)
