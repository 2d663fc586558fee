"""Caller keys: bearer parsing, digest lookup, and which providers a key may pin."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from gateway.auth import Caller, KeyRing, digest
from gateway.errors import Forbidden, Unauthenticated
from gateway.settings import KeySettings

PLAIN = "sk-vidgate-plain-0001"
HASHED = "sk-vidgate-hashed-0002"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(
        [
            KeySettings(name="app", tenant="acme", key=PLAIN),
            KeySettings(
                name="batch",
                tenant="globex",
                sha256=hashlib.sha256(HASHED.encode()).hexdigest(),
                admin=True,
                providers=["useapi"],
            ),
        ]
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_digest_is_sha256_hex() -> None:
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_plain_key_authenticates(ring: KeyRing) -> None:
    assert ring.authenticate(bearer(PLAIN)) == Caller(key_name="app", tenant="acme", admin=False, providers=None)


def test_sha256_configured_key_authenticates(ring: KeyRing) -> None:
    caller = ring.authenticate(bearer(HASHED))
    assert caller == Caller(key_name="batch", tenant="globex", admin=True, providers=frozenset({"useapi"}))


@pytest.mark.parametrize(
    "value",
    [f"bearer {PLAIN}", f"BEARER {PLAIN}", f"Bearer   {PLAIN}  "],
)
def test_bearer_scheme_is_case_insensitive_and_token_trimmed(ring: KeyRing, value: str) -> None:
    assert ring.authenticate({"authorization": value}).key_name == "app"


def test_case_insensitive_header_mapping(ring: KeyRing) -> None:
    assert ring.authenticate(httpx.Headers({"Authorization": f"Bearer {PLAIN}"})).tenant == "acme"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": "Bearer    "},
        {"authorization": f"Basic {PLAIN}"},
        {"authorization": PLAIN},
    ],
)
def test_missing_or_malformed_bearer(ring: KeyRing, headers: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated) as info:
        ring.authenticate(headers)
    assert info.value.status == 401
    assert "Missing bearer token" in info.value.message


@pytest.mark.parametrize(
    "token",
    [
        "sk-wrong",
        PLAIN + "x",
        PLAIN.upper(),
        hashlib.sha256(PLAIN.encode()).hexdigest(),  # the digest itself is not a key
        hashlib.sha256(HASHED.encode()).hexdigest(),
    ],
)
def test_wrong_key_is_401(ring: KeyRing, token: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        ring.authenticate(bearer(token))
    assert info.value.status == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.message == "Incorrect API key provided"
    assert token not in info.value.message


def test_empty_keyring_rejects_everything() -> None:
    with pytest.raises(Unauthenticated):
        KeyRing([]).authenticate(bearer(PLAIN))


def test_keyring_keeps_no_plaintext(ring: KeyRing) -> None:
    assert PLAIN not in repr(vars(ring))
    assert HASHED not in repr(vars(ring))


def test_require_provider(ring: KeyRing) -> None:
    unrestricted = ring.authenticate(bearer(PLAIN))
    KeyRing.require_provider(unrestricted, "powertokens")
    KeyRing.require_provider(unrestricted, "useapi")

    restricted = ring.authenticate(bearer(HASHED))
    KeyRing.require_provider(restricted, "useapi")
    with pytest.raises(Forbidden) as info:
        KeyRing.require_provider(restricted, "powertokens")
    assert info.value.status == 403
    assert info.value.param == "provider"
    assert "'powertokens'" in info.value.message


def test_empty_provider_list_allows_none() -> None:
    ring = KeyRing([KeySettings(name="locked", tenant="t", key="k", providers=[])])
    caller = ring.authenticate(bearer("k"))
    assert caller.providers == frozenset()
    with pytest.raises(Forbidden):
        KeyRing.require_provider(caller, "useapi")
