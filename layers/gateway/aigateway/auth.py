"""Authorization header → Principal, or the exact GatewayError the SDK expects.

JWTs are HS256 only, verified here in a few lines of stdlib: pyjwt costs ~100 ms of import
on every cold start, and we need none of its other algorithms. The algorithm is pinned
(`alg` must be HS256: no `none`, no RS/HS confusion) and signatures compare in constant time.
Admin API keys are kept only as a SHA-256 digest and compared with `hmac.compare_digest`.

Parsing is strict because every leniency is a second spelling of the same token: base64url
without padding and without characters outside its alphabet (and canonical, so no two encodings
of one payload both verify), `exp` / `nbf` / `iat` finite numbers (the JSON parser also yields
NaN, Infinity and booleans, and `t > NaN` is always false: a NaN `exp` never expired), `role` a
string. `TokenRules` adds what a deployment may require on top: a longest lifetime for the
non-anon roles (an anon key is a long-lived public key by design), an audience and an issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import (
    AUTH_INVALID_API_KEY,
    AUTH_INVALID_CREDENTIALS,
    AUTH_UNAUTHORIZED,
    GatewayError,
)

if TYPE_CHECKING:
    from .settings import Settings

ROLES = ("anon", "authenticated", "project_admin")
_CHECK_TOKEN = "Check the token is valid or login to get a new token."
_LEEWAY_S = 30


@dataclass(frozen=True)
class Principal:
    """Who is calling. `user_id` is the JWT subject; API-key callers have none."""

    role: str
    user_id: str | None = None
    email: str | None = None
    via_api_key: bool = False

    @property
    def is_admin(self) -> bool:
        return self.via_api_key or self.role == "project_admin"

    @property
    def actor(self) -> str:
        """The name written into audit records."""
        if self.via_api_key:
            return "api-key"
        return self.email or self.user_id or self.role


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(part: str) -> bytes:
    """Strict, canonical, unpadded base64url; ValueError for anything else."""
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if _b64encode(raw) != part:  # unused low bits set: another spelling of the same bytes
        raise ValueError("not canonical base64url")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint_jwt(secret: str, claims: Mapping[str, Any], ttl_s: int | None = 3600) -> str:
    """An HS256 JWT (the local server prints a demo token; tests mint their own)."""
    body = dict(claims)
    now = int(time.time())
    body.setdefault("iat", now)
    if ttl_s is not None:
        body.setdefault("exp", now + ttl_s)
    header = _b64encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(sig)}"


def _time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim: absent, or a finite int/float (not a bool, string, NaN or infinity)."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"JWT {name} is not a number")
    return float(value)


def decode_jwt(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """The verified claims of an HS256 token; ValueError for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        sig = _b64decode(parts[2])
    except (ValueError, TypeError) as exc:
        raise ValueError("undecodable JWT") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise ValueError("unsupported JWT algorithm")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise ValueError("bad JWT signature")
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not an object")
    t = time.time() if now is None else now
    exp, nbf = _time_claim(claims, "exp"), _time_claim(claims, "nbf")
    _time_claim(claims, "iat")
    if exp is not None and t > exp + _LEEWAY_S:
        raise ValueError("JWT expired")
    if nbf is not None and t < nbf - _LEEWAY_S:
        raise ValueError("JWT not yet valid")
    return claims


@dataclass(frozen=True)
class TokenRules:
    """What a deployment requires of its JWTs beyond a good signature (all off by default).

    `max_lifetime_s`: tokens of the non-anon roles must carry `exp`, at most this far after their
    `iat` (or after now, without `iat`): a leaked user or admin token stops working. `audience` /
    `issuer`: the `aud` claim (a string or a list holding it) and `iss` must name them.
    """

    max_lifetime_s: int | None = None
    audience: str | None = None
    issuer: str | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> TokenRules:
        return cls(s.jwt_max_lifetime_s, s.jwt_audience, s.jwt_issuer)

    def check(self, claims: Mapping[str, Any], role: str, now: float | None = None) -> None:
        """ValueError when the claims break a rule."""
        if self.max_lifetime_s is not None and role != "anon":
            exp = _time_claim(claims, "exp")
            if exp is None:
                raise ValueError("JWT without exp")
            start = _time_claim(claims, "iat")
            start = (time.time() if now is None else now) if start is None else start
            if exp - start > self.max_lifetime_s:
                raise ValueError("JWT lifetime too long")
        if self.audience is not None:
            aud = claims.get("aud")
            names = aud if isinstance(aud, list) else [aud]
            if self.audience not in [a for a in names if isinstance(a, str)]:
                raise ValueError("JWT audience")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise ValueError("JWT issuer")


def _storable(value: Any) -> bool:
    """A string the usage and audit rows can hold: no NUL, no unpaired surrogate (JSON allows both)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_api_key(key: str) -> str:
    """Admin keys are `ik_<hex>`; a configured key without the prefix gets it (as InsForge does)."""
    key = key.strip()
    return key if key.startswith("ik_") else f"ik_{key}"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _invalid_token() -> GatewayError:
    return GatewayError(AUTH_UNAUTHORIZED, 401, "Invalid token")


def _invalid_api_key() -> GatewayError:
    return GatewayError(
        AUTH_INVALID_API_KEY, 401, "Invalid API key", "Check the API key is valid or generate a new API key."
    )


class Authenticator:
    """Checks credentials against the deployment's JWT secret and admin key digest."""

    def __init__(
        self,
        jwt_secret: str,
        admin_api_key: str | None,
        *,
        allow_anon: bool = True,
        rules: TokenRules | None = None,
    ) -> None:
        if not jwt_secret:
            raise ValueError("JWT secret must not be empty")
        self._jwt_secret = jwt_secret
        self._rules = rules or TokenRules()
        self._admin_digests = [_digest(normalize_api_key(admin_api_key))] if admin_api_key else []
        self.allow_anon = allow_anon

    def _check_api_key(self, key: str) -> Principal:
        candidate = _digest(key.strip())
        ok = False
        for digest in self._admin_digests:  # every digest is compared: no early exit
            ok |= hmac.compare_digest(candidate, digest)
        if not ok:
            raise _invalid_api_key()
        return Principal(role="project_admin", via_api_key=True)

    def _check_jwt(self, token: str) -> Principal:
        try:
            claims = decode_jwt(token, self._jwt_secret)
            role = claims.get("role")
            role = "authenticated" if role is None else role
            sub = claims.get("sub")
            if not isinstance(role, str) or role not in ROLES or (sub is not None and not _storable(sub)):
                raise ValueError("JWT role or subject")
            self._rules.check(claims, role)
        except ValueError as exc:
            raise _invalid_token() from exc
        email = claims.get("email")
        return Principal(role=role, user_id=sub, email=email if _storable(email) else None)

    def identify(self, authorization: str | None, x_api_key: str | None) -> Principal | None:
        """The caller, None when no credentials were sent, GatewayError when they are wrong."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return self._check_api_key(token) if token.startswith("ik_") else self._check_jwt(token)
        if x_api_key:
            return self._check_api_key(x_api_key)
        return None

    def user(self, authorization: str | None, x_api_key: str | None) -> Principal:
        """Generation routes: any valid principal (anon too, unless the deployment turned it off)."""
        principal = self.identify(authorization, x_api_key)
        if principal is None:
            raise GatewayError(AUTH_INVALID_CREDENTIALS, 401, "No token provided", _CHECK_TOKEN)
        if principal.role == "anon" and not self.allow_anon:
            raise GatewayError(
                AUTH_UNAUTHORIZED, 403, "Anonymous access is disabled on this deployment", "Sign in first."
            )
        return principal

    def admin(self, authorization: str | None, x_api_key: str | None) -> Principal:
        """Admin routes: a project_admin JWT or the admin API key."""
        principal = self.identify(authorization, x_api_key)
        if principal is None:
            raise GatewayError(AUTH_INVALID_CREDENTIALS, 401, "No admin token provided", _CHECK_TOKEN)
        if not principal.is_admin:
            raise GatewayError(
                AUTH_UNAUTHORIZED,
                403,
                "Admin access required",
                "Check the admin token is valid or login as admin to get a new token.",
            )
        return principal
