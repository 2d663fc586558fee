"""Console sessions: a vidgate key exchanged for a signed cookie that never holds the key.

    signer = SessionSigner(secret, lifetime=12 * 3600)
    cookie = signer.issue(key_name, key_digest, now)      # after the key authenticated
    caller = signer.caller(cookie, keyring, now)          # None: sign in again

The cookie carries the key's *name*, an expiry and a tag binding it to that key's digest
(an HMAC under the console secret, so the cookie reveals nothing about the key, not even
its hash), all signed with HMAC-SHA256. A session ends when it expires, when its key is
removed or replaced by a config reload (the tag no longer matches), or at sign-out. It
grants exactly what the key grants: the caller is the key ring's own.

The CSRF secret is derived from the same secret, so one setting covers both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import msgspec

from gateway.auth import Caller, KeyRing

COOKIE = "vidgate_session"
CSRF_COOKIE = "vidgate_csrf"
PATH = "/console"
_VERSION = "v1"


class _Payload(msgspec.Struct, frozen=True, array_like=True):
    key_name: str
    tag: str  # HMAC(secret, key digest), truncated: which key this session was made with
    expires: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Payload)


class SessionSigner:
    def __init__(self, secret: str | None, *, lifetime: float) -> None:
        self._secret = (secret or secrets.token_urlsafe(32)).encode()
        self.lifetime = lifetime

    @property
    def csrf_secret(self) -> str:
        return self._mac(b"csrf").hex()

    def issue(self, key_name: str, key_digest: str, now: float) -> str:
        payload = _b64(_encoder.encode(_Payload(key_name, self._tag(key_digest), int(now + self.lifetime))))
        return f"{_VERSION}.{payload}.{self._sign(payload)}"

    def caller(self, cookie: str | None, keys: KeyRing, now: float) -> Caller | None:
        """The caller a cookie stands for, or None when it is missing, forged, expired, or its
        key is gone or changed."""
        if not cookie or len(cookie) > 4096:
            return None
        version, _, rest = cookie.partition(".")
        payload, _, signature = rest.partition(".")
        if version != _VERSION or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            session = _decoder.decode(_unb64(payload))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            return None
        if session.expires <= now:
            return None
        found = keys.named(session.key_name)
        if found is None or not hmac.compare_digest(session.tag, self._tag(found[0])):
            return None
        return found[1]

    def _tag(self, key_digest: str) -> str:
        return self._mac(b"key:" + key_digest.lower().encode()).hex()[:32]

    def _sign(self, payload: str) -> str:
        return _b64(self._mac(b"session:" + payload.encode()))

    def _mac(self, message: bytes) -> bytes:
        return hmac.new(self._secret, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
