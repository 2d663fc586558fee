"""`gateway.console.session`: the cookie stands for a key without holding it."""

from __future__ import annotations

import base64

from gateway.auth import KeyRing, digest
from gateway.console.session import SessionSigner
from gateway.settings import KeySettings

KEYS = [KeySettings(name="demo", tenant="demo", key="sk-demo-key-1"), KeySettings(name="ops", tenant="ops", key="sk-ops-key-2", admin=True)]
NOW = 1_000_000.0


def signer(secret: str = "s" * 32) -> SessionSigner:
    return SessionSigner(secret, lifetime=3600)


def test_a_cookie_names_its_caller_until_it_expires() -> None:
    ring = KeyRing(KEYS)
    cookie = signer().issue("ops", digest("sk-ops-key-2"), NOW)
    caller = signer().caller(cookie, ring, NOW + 10)
    assert caller is not None and (caller.key_name, caller.tenant, caller.admin) == ("ops", "ops", True)
    assert signer().caller(cookie, ring, NOW + 3600) is None


def test_the_cookie_holds_neither_the_key_nor_its_hash() -> None:
    cookie = signer().issue("demo", digest("sk-demo-key-1"), NOW)
    decoded = b"".join(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in cookie.split(".")[1:])
    assert b"sk-demo" not in decoded and digest("sk-demo-key-1").encode() not in decoded and digest("sk-demo-key-1")[:16].encode() not in decoded
    assert "sk-demo" not in cookie


def test_forged_tampered_or_foreign_cookies_are_refused() -> None:
    ring = KeyRing(KEYS)
    good = signer().issue("demo", digest("sk-demo-key-1"), NOW)
    version, payload, signature = good.split(".")
    as_ops = base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==").replace(b'"demo"', b'"ops"')).rstrip(b"=").decode()
    for bad in (None, "", "garbage", f"{version}.{as_ops}.{signature}", f"v2.{payload}.{signature}", good[:-2] + "xx", "x" * 5000):
        assert signer().caller(bad, ring, NOW) is None, bad
    assert signer("t" * 32).caller(good, ring, NOW) is None  # another secret (another deployment)
    assert SessionSigner(None, lifetime=60).caller(good, ring, NOW) is None  # a random secret per process


def test_a_session_ends_when_its_key_is_replaced_or_removed() -> None:
    cookie = signer().issue("demo", digest("sk-demo-key-1"), NOW)
    rotated = KeyRing([KeySettings(name="demo", tenant="demo", key="sk-demo-key-NEW"), KEYS[1]])
    assert signer().caller(cookie, rotated, NOW) is None
    assert signer().caller(cookie, KeyRing(KEYS[1:]), NOW) is None


def test_the_csrf_secret_is_derived_from_the_session_secret() -> None:
    assert signer().csrf_secret == signer().csrf_secret != signer("t" * 32).csrf_secret
