"""The layer builds from the hashed lock for either architecture, with CPython 3.12 bytecode.

Downloads ~20 MB of x86_64 wheels and needs a CPython 3.12 on the machine, so it runs only with
AIGATEWAY_TEST_LAYER_BUILD=1 (as tests/template/test_build.py does for arm64)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "gateway"

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("AIGATEWAY_TEST_LAYER_BUILD") != "1",
        reason="layer build downloads ~20 MB of wheels; set AIGATEWAY_TEST_LAYER_BUILD=1 to run it",
    ),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(LAYER), *args, f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def x86_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("layer-x86")
    build = _make("build-GatewayLayer", f"ARTIFACTS_DIR={out}", "LAYER_ARCH=x86_64")
    assert build.returncode == 0, build.stderr[-3000:]
    if "no CPython 3.12 found" in build.stderr:
        pytest.skip("no CPython 3.12 on this machine: the layer was built without bytecode")
    return out / "python"


def _pins() -> dict[str, str]:
    text = (LAYER / "requirements.lock").read_text()
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", text, re.M)}


def test_x86_64_layer_holds_the_locked_versions(x86_layer: Path) -> None:
    installed = {}
    for d in x86_layer.glob("*.dist-info"):
        name, version = d.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[re.sub(r"[-_.]+", "-", name).lower()] = version
    pins = {re.sub(r"[-_.]+", "-", k): v for k, v in _pins().items()}
    assert installed == pins
    assert list((x86_layer / "psycopg_binary").glob("*.cpython-312-x86_64-linux-gnu.so"))
    assert not list(x86_layer.rglob("*aarch64*.so")), "arm64 extension modules in an x86_64 layer"


def test_bytecode_is_cpython_312_and_unchecked(x86_layer: Path) -> None:
    pycs = list(x86_layer.rglob("__pycache__/*.pyc"))
    assert pycs and all(".cpython-312." in p.name for p in pycs), {p.name for p in pycs if "312" not in p.name}
    for module in ("aigateway/logs", "aigateway/api/app", "fastapi/applications", "psycopg/connection"):
        folder, name = (x86_layer / module).parent, (x86_layer / module).name
        [pyc] = list((folder / "__pycache__").glob(f"{name}.cpython-312.pyc"))
        header = pyc.read_bytes()[:16]
        # PEP 552: flags 0b01 = hash-based, check_source unset; Lambda's /opt is read-only anyway.
        assert int.from_bytes(header[4:8], "little") == 0b01, module
    # Every module has its bytecode (none failed to compile, none was left out).
    sources = [p for p in (x86_layer / "aigateway").rglob("*.py")]
    for source in sources:
        assert (source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc").is_file(), source


def test_a_compile_python_of_another_version_is_refused(tmp_path: Path) -> None:
    if sys.version_info[:2] == (3, 12):
        pytest.skip("the test interpreter is 3.12 itself")
    build = _make("build-GatewayLayer", f"ARTIFACTS_DIR={tmp_path}", f"LAYER_COMPILE_PYTHON={sys.executable}")
    assert build.returncode != 0
    assert "is not CPython 3.12" in build.stderr
