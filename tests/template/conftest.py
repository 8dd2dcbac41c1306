"""Fixtures for the offline template checks: the SAM template as written and as translated by the
SAM transform (run locally by infra/check_template.py). Nothing here imports aigateway."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
INSTALL_HINT = "pip install -r infra/requirements-ci.txt"


def _load_check_module() -> ModuleType:
    name = "aigateway_infra_check_template"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "infra" / "check_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def check() -> ModuleType:
    pytest.importorskip("samtranslator", reason=f"aws-sam-translator is not installed ({INSTALL_HINT})")
    pytest.importorskip("cfnlint", reason=f"cfn-lint is not installed ({INSTALL_HINT})")
    return _load_check_module()


@pytest.fixture(scope="session")
def source(check: ModuleType) -> dict[str, Any]:
    return check.load_template(TEMPLATE)


@pytest.fixture(scope="session")
def translated(check: ModuleType, source: dict[str, Any]) -> dict[str, Any]:
    # The transform rejects what cfn-lint alone lets through (e.g. a misspelt ScheduleV2 property).
    try:
        return check.translate(source)
    except Exception as exc:
        pytest.fail(f"the SAM transform rejected template.yaml: {exc}", pytrace=False)
