"""The page's files as the gateway serves them: headers that keep it safe, and nothing else served."""

from __future__ import annotations

from tests.support import Gateway


def test_files_carry_a_strict_policy(gateway: Gateway) -> None:
    for path, media in [
        ("/dashboard/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ]:
        r = gateway.client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(media)
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        for part in (
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ):
            assert part in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "set-cookie" not in r.headers


def test_files_go_compressed_to_who_accepts_it_and_revalidate_with_a_304(gateway: Gateway) -> None:
    import gzip

    raw = gateway.client.get("/dashboard/app.js", headers={"Accept-Encoding": "identity"})
    assert raw.status_code == 200 and "content-encoding" not in raw.headers and "Accept-Encoding" in raw.headers["vary"]
    with gateway.client.stream("GET", "/dashboard/app.js", headers={"Accept-Encoding": "br, gzip"}) as packed:
        body = b"".join(packed.iter_raw())
    assert packed.headers["content-encoding"] == "gzip" and gzip.decompress(body) == raw.content
    assert len(body) < len(raw.content) / 2
    refused = gateway.client.get("/dashboard/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    again = gateway.client.get("/dashboard/app.js", headers={"If-None-Match": raw.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == raw.headers["etag"]
    assert "frame-ancestors 'none'" in again.headers["content-security-policy"]
    other = gateway.client.get("/dashboard/style.css", headers={"If-None-Match": raw.headers["etag"]})
    assert other.status_code == 200  # another file's tag does not match


def test_the_bare_path_moves_to_the_folder(gateway: Gateway) -> None:
    r = gateway.client.get("/dashboard", follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == "/dashboard/"


def test_only_the_page_files_are_served(gateway: Gateway) -> None:
    for path in ("/dashboard/../api.py", "/dashboard/dashboard.py", "/dashboard/%2e%2e%2fcli.py", "/dashboard/nope.js"):
        r = gateway.client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "NOT_FOUND"


def test_the_page_has_no_inline_code(gateway: Gateway) -> None:
    html = gateway.client.get("/dashboard/").text
    assert "<script>" not in html and "style=" not in html and " on" + "click=" not in html
    for name in ("app.js", "core.js", "charts.js", "admin.js", "records.js", "cache.js"):
        js = gateway.client.get("/dashboard/" + name).text
        assert "innerHTML" not in js and "outerHTML" not in js and "insertAdjacentHTML" not in js
        assert "eval(" not in js and "document.write" not in js


def test_every_file_of_the_page_is_served_and_ships_in_the_package() -> None:
    import tomllib
    from pathlib import Path

    from aigateway.api import dashboard

    folder = Path(dashboard.__file__).resolve().parent.parent / "dashboard"
    assert sorted(p.name for p in folder.iterdir()) == sorted(dashboard._FILES)
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "dashboard/*" in project["tool"]["setuptools"]["package-data"]["aigateway"]
