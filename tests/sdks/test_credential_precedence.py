"""Which credential wins when an SDK sends two: the bearer token, always (docs/api.md#authentication).

The Python SDK sends the app's key as `X-API-Key` on every call and the user's token as
`Authorization: Bearer`; the Swift and Kotlin SDKs send only the bearer. The user's token says
who calls; the app's key is used only when no bearer token is sent. tests/sdks/test_python_sdk.py
checks the same rules through the SDK itself.
"""

from __future__ import annotations

import secrets
import time

import pytest
from aigateway.auth import Authenticator, mint_jwt
from aigateway.errors import GatewayError

SECRET = "precedence-" + secrets.token_hex(8)
ADMIN_KEY = "ik_" + secrets.token_hex(32)


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator(SECRET, ADMIN_KEY)


def _bearer(claims: dict[str, object]) -> str:
    return "Bearer " + mint_jwt(SECRET, claims)


def test_a_user_token_beside_the_admin_key_is_the_user(auth: Authenticator) -> None:
    who = auth.user(_bearer({"sub": "u-1", "role": "authenticated"}), ADMIN_KEY)
    assert (who.user_id, who.role, who.is_admin) == ("u-1", "authenticated", False)


def test_the_admin_key_does_not_make_a_user_an_admin(auth: Authenticator) -> None:
    with pytest.raises(GatewayError) as caught:
        auth.admin(_bearer({"sub": "u-1"}), ADMIN_KEY)
    assert (caught.value.status, caught.value.code) == (403, "AUTH_UNAUTHORIZED")


@pytest.mark.parametrize(
    "bearer",
    [
        "Bearer not.a.jwt",
        "Bearer " + mint_jwt(SECRET, {"sub": "u-1"}, ttl_s=None).rsplit(".", 1)[0] + ".forged",
        "Bearer " + mint_jwt(SECRET, {"sub": "u-1", "exp": int(time.time()) - 3600}),
    ],
    ids=["garbage", "bad-signature", "expired"],
)
def test_a_bad_user_token_never_falls_back_to_the_key(auth: Authenticator, bearer: str) -> None:
    with pytest.raises(GatewayError) as caught:
        auth.user(bearer, ADMIN_KEY)
    assert (caught.value.status, caught.value.code) == (401, "AUTH_UNAUTHORIZED")


def test_without_a_bearer_token_the_key_is_the_caller(auth: Authenticator) -> None:
    assert auth.admin(None, ADMIN_KEY).via_api_key
    assert auth.admin("Basic dXNlcjpwYXNz", ADMIN_KEY).via_api_key  # not a bearer: ignored
    with pytest.raises(GatewayError) as caught:
        auth.user(None, "ik_wrong")
    assert (caught.value.status, caught.value.code) == (401, "AUTH_INVALID_API_KEY")


def test_an_admin_key_as_bearer_beside_a_wrong_x_api_key_is_the_admin(auth: Authenticator) -> None:
    """The bearer decides; a second, wrong key in `x-api-key` is not read."""
    assert auth.admin(f"Bearer {ADMIN_KEY}", "ik_wrong").via_api_key
