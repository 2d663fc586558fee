"""Caller authentication: vidgate keys from config, compared by SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

import msgspec

from gateway.errors import Forbidden, Unauthenticated
from gateway.settings import KeySettings


class Caller(msgspec.Struct, frozen=True):
    key_name: str
    tenant: str
    admin: bool = False
    providers: frozenset[str] | None = None  # providers this key may pin; None = any

    def may_use(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Looks a presented bearer key up by digest; plaintext keys are never kept."""

    def __init__(self, keys: Iterable[KeySettings]) -> None:
        self._by_digest: dict[str, Caller] = {}
        self._by_name: dict[str, tuple[str, Caller]] = {}
        for k in keys:
            caller = Caller(
                key_name=k.name,
                tenant=k.tenant,
                admin=k.admin,
                providers=frozenset(k.providers) if k.providers is not None else None,
            )
            self._by_digest[k.digest.lower()] = caller
            self._by_name[k.name] = (k.digest.lower(), caller)

    def named(self, key_name: str) -> tuple[str, Caller] | None:
        """The key called `key_name`, as (its digest, its caller), if it is still configured
        (a console session names its key; a reload may have removed or replaced it)."""
        return self._by_name.get(key_name)

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Missing bearer token: send 'Authorization: Bearer <vidgate key>'")
        presented = digest(token.strip())
        for known, caller in self._by_digest.items():
            if hmac.compare_digest(known, presented):
                return caller
        raise Unauthenticated("Incorrect API key provided")

    @staticmethod
    def require_provider(caller: Caller, provider: str) -> None:
        if not caller.may_use(provider):
            raise Forbidden(f"This key may not use provider {provider!r}", param="provider")
