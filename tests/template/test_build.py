"""Builds the shared layer the way `sam build` does (layers/gateway/Makefile) and checks what is in
it. Downloads ~15 MB of arm64 wheels, so it runs only with AIGATEWAY_TEST_LAYER_BUILD=1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("AIGATEWAY_TEST_LAYER_BUILD") != "1",
        reason="layer build downloads ~15 MB of wheels; set AIGATEWAY_TEST_LAYER_BUILD=1 to run it",
    ),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("layer")
    # The interpreter running the tests (any 3.x with pip) installs wheels for the Lambda runtime.
    subprocess.run(
        [
            "make",
            "-C",
            str(ROOT / "layers" / "gateway"),
            "build-GatewayLayer",
            f"ARTIFACTS_DIR={out}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
        timeout=600,
    )
    return out / "python"


def _project(dist_info: Path) -> str:
    name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_layer_holds_the_package(layer: Path) -> None:
    assert (layer / "aigateway" / "__init__.py").is_file()
    source = ROOT / "layers" / "gateway" / "aigateway"
    for sql in (source / "migrations").glob("*.sql"):
        assert (layer / "aigateway" / "migrations" / sql.name).is_file(), sql.name
    # Bytecode compiled by CPython 3.12 for the read-only /opt (when the machine has a 3.12), never
    # the source tree's own caches of another version.
    pycs = list((layer / "aigateway").rglob("*.pyc"))
    assert all(".cpython-312." in p.name and p.parent.name == "__pycache__" for p in pycs)


def test_layer_holds_arm64_cp312_dependencies(layer: Path) -> None:
    for package in (
        "fastapi",
        "mangum",
        "uvicorn",
        "aiohttp",
        "psycopg",
        "cryptography",
        "orjson",
        "aws_lambda_powertools",
    ):
        assert (layer / package).is_dir(), package
    binaries = list((layer / "psycopg_binary").glob("*.cpython-312-aarch64-linux-gnu.so"))
    assert binaries, "psycopg's binary wheel for aarch64/cp312 is missing"
    assert not list(layer.rglob("*x86_64*.so")), "x86_64 extension modules in an arm64 layer"
    assert not (layer / "boto3").exists() and not (layer / "botocore").exists()  # the runtime has them
    assert not (layer / "bin").exists()


def test_layer_holds_each_package_once(layer: Path) -> None:
    projects = [_project(d) for d in layer.glob("*.dist-info")]
    duplicates = sorted({p for p in projects if projects.count(p) > 1})
    assert not duplicates, duplicates
    assert "aigateway" not in projects  # copied as source, not installed a second time
