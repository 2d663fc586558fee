"""Configuration: msgspec structs, loaded from TOML with `${ENV}` interpolation.

    settings = load_settings("config/example.toml")      # raises ConfigError
    print(describe(settings))                             # what `vidgate check-config` prints

Loading is three steps: decode the TOML, replace `${NAME}` / `${NAME:-default}` in every
string value from the environment, then convert into `Settings` (unknown keys rejected,
value limits from `Meta`, per-struct rules in `__post_init__`) and run the cross-checks
in `validate()`. Every problem is reported as a `ConfigError` naming the file and the key
path (`providers.main.base_url`, `keys[0].sha256`).

Secrets (`ProviderSettings.secret`, `KeySettings.key`, `WebhookSettings.secret`) are plain
`str` fields so they can be handed to an HTTP client as they are; every config struct's
`__repr__` masks them, and `describe()` never prints them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import re
import types
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import msgspec

from gateway import rules
from providers.registry import DESCRIPTORS

__all__ = [
    "WEBHOOK_EVENTS",
    "AccountSettings",
    "ClusterSettings",
    "ConfigError",
    "ConsoleSettings",
    "JobSettings",
    "KeySettings",
    "LoggingSettings",
    "MetricsSettings",
    "ModelSettings",
    "OutputSettings",
    "PriceSettings",
    "ProviderSettings",
    "RouteSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "WebhookEndpointSettings",
    "WebhookSettings",
    "describe",
    "load_settings",
    "parse_settings",
    "redact_url",
    "validate",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")

Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]


class ConfigError(Exception):
    """The configuration can't be used. `problems` lists every reason, each naming a key path."""

    def __init__(self, source: str, problems: list[str] | str) -> None:
        self.source = source
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = f"{source}: {self.problems[0]}"
        else:
            message = f"{source}: {len(self.problems)} problems\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class _Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every config struct: strict decoding and a repr that masks secrets."""

    __secret_fields__: ClassVar[frozenset[str]] = frozenset()  # shown as '***'
    __url_fields__: ClassVar[frozenset[str]] = frozenset()  # shown with any password masked

    def _shown(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            return None
        if name in self.__secret_fields__:
            return _Masked()
        if name in self.__url_fields__:
            return redact_url(value)
        return value

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [(name, self._shown(name)) for name in self.__struct_fields__]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={self._shown(name)!r}" for name in self.__struct_fields__)
        return f"{type(self).__name__}({fields})"


class _Masked:
    def __repr__(self) -> str:
        return "'***'"


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


class ServerSettings(_Config):
    __url_fields__: ClassVar[frozenset[str]] = frozenset({"public_url"})

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    # The base URL upstreams use to reach us (callbacks, signed media URLs); default http://host:port.
    public_url: str | None = None
    # Slow clients (`vidgate serve`, gateway.serving): a request's headers must arrive within
    # header_timeout_seconds of the connection opening (or of its first byte); a body may pause
    # at most body_timeout_seconds; an idle connection closes after keep_alive_seconds.
    header_timeout_seconds: Positive = 10.0
    body_timeout_seconds: Positive = 30.0
    keep_alive_seconds: Count = 5
    # Open connections (and requests in flight) at once; past it requests get a 503.
    max_connections: Count = 1024

    def __post_init__(self) -> None:
        if self.public_url is not None:
            _check_http_url(self.public_url, "public_url")

    @property
    def base_url(self) -> str:
        """`public_url` without a trailing slash, or `http://host:port` (a wildcard host becomes loopback)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


class StoreSettings(_Config):
    __url_fields__: ClassVar[frozenset[str]] = frozenset({"url"})

    # sqlite:///relative.db (relative to the working directory), sqlite:////abs/path.db,
    # sqlite:///:memory:; postgresql://user:pass@host/db once that store exists.
    url: str = "sqlite:///vidgate.db"

    def __post_init__(self) -> None:
        scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"store url must start with sqlite:/// or postgresql://, got {redact_url(self.url)!r}")
        if scheme == "sqlite" and not self.url.startswith("sqlite:///"):
            raise ValueError("a sqlite store url needs three slashes: sqlite:///file.db or sqlite:////abs/file.db")

    @property
    def sqlite_path(self) -> str | None:
        """The database file for a sqlite url (`:memory:` stays as is), None for other stores."""
        return self.url.removeprefix("sqlite:///") if self.url.startswith("sqlite:///") else None

    def outputs_dir(self, configured: str | None) -> str | None:
        """Where output copies go: `configured`, else beside the SQLite file (`<db>-outputs/`).

        None when there is no file to stand beside (PostgreSQL, `:memory:`): such a store
        needs `[outputs] dir` (see `validate`), never a directory that depends on where the
        process happened to start."""
        if configured:
            return configured
        path = self.sqlite_path
        if path is None or path == ":memory:":
            return None
        db = Path(path)
        return str(db.with_name(f"{db.stem}-outputs"))


class SecuritySettings(_Config):
    allow_private_urls: bool = False  # SSRF guard: allow loopback / private / link-local targets
    max_upload_bytes: Count = 50 * 2**20
    max_request_bytes: Count = 64 * 2**20
    max_media_fetch_bytes: Count = 50 * 2**20
    # Signs the URLs at which upstreams fetch uploads (`/v1/media/...`, when [server] public_url
    # is set); give every replica the same one. Default: random per process.
    media_url_secret: str | None = None
    media_url_seconds: Positive = 6 * 3600.0  # how long such a URL works


class KeySettings(_Config):
    """One caller key. Give the key itself (usually `${ENV}`) or its SHA-256, never both."""

    __secret_fields__: ClassVar[frozenset[str]] = frozenset({"key"})

    name: str
    tenant: str
    key: str | None = None
    sha256: str | None = None  # hex SHA-256 of the UTF-8 key, lowercase
    admin: bool = False
    providers: list[str] | None = None  # providers this key may pin; None = all

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("key name must not be empty")
        if not self.tenant:
            raise ValueError(f"key {self.name!r}: tenant must not be empty")
        if (self.key is None) == (self.sha256 is None):
            raise ValueError(f"key {self.name!r}: give exactly one of `key` or `sha256`")
        if self.key is not None and not self.key:
            raise ValueError(f"key {self.name!r}: `key` is empty")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"key {self.name!r}: `sha256` must be 64 lowercase hex characters")

    @property
    def digest(self) -> str:
        """The lowercase hex SHA-256 that identifies this key, whichever way it was given."""
        if self.sha256 is not None:
            return self.sha256
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).hexdigest()


class AccountSettings(_Config):
    """One upstream account, for providers whose work runs on accounts: its id as the
    upstream spells it, its region, and how many jobs it may run at once. The provider's
    descriptor says what an id looks like and the most `max_jobs` the upstream allows."""

    id: str
    region: str
    max_jobs: Count = 10


class PriceSettings(_Config):
    """Your price for one upstream model, over the provider's published one: USD per output
    second or per million billed tokens, either flat or by resolution (`{"720p" = 0.12}`)."""

    usd_per_second: Positive | dict[str, Positive] | None = None
    usd_per_million_tokens: Positive | dict[str, Positive] | None = None

    def __post_init__(self) -> None:
        if self.usd_per_second is None and self.usd_per_million_tokens is None:
            raise ValueError("give usd_per_second or usd_per_million_tokens")


class ProviderSettings(_Config):
    __secret_fields__: ClassVar[frozenset[str]] = frozenset({"secret"})
    __url_fields__: ClassVar[frozenset[str]] = frozenset({"base_url"})

    type: str  # a provider type from providers.registry
    base_url: str
    secret: str  # the upstream API token; write it as ${ENV_VAR}
    timeout_seconds: Positive = 30.0
    connect_timeout_seconds: Positive = 5.0
    max_concurrency: Count | None = None  # jobs it runs at once (its slots), for providers without accounts; default: the provider's own
    max_connections: Count = 32  # upstream HTTP calls in flight at once, whatever the slots
    accounts: list[AccountSettings] = []  # for providers whose work runs on accounts
    poll_interval_seconds: Positive = 5.0
    max_job_age_seconds: Positive | None = None  # default: the provider's own (its descriptor)
    enabled: bool = True
    # Costs in USD (`gateway.pricing`): what one upstream credit costs under your plan (for
    # providers that report costs in credits), and your prices per upstream model id where
    # they differ from the published ones the provider package knows (or where none is published).
    usd_per_credit: Positive | None = None
    prices: dict[str, PriceSettings] = {}

    def __post_init__(self) -> None:
        _check_http_url(self.base_url, "base_url")
        ids = [a.id for a in self.accounts]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate account id in {ids}")


class ModelSettings(_Config):
    """A logical model: which providers serve it, under which upstream model id, in which order."""

    providers: dict[str, str]  # provider name -> that provider's model id
    order: list[str] | None = None  # default: the order of `providers`

    def __post_init__(self) -> None:
        if not self.providers:
            raise ValueError("a model needs at least one provider")
        if self.order is not None and sorted(self.order) != sorted(self.providers):
            raise ValueError(f"`order` must list each of this model's providers once: has {self.order}, providers are {list(self.providers)}")

    @property
    def provider_order(self) -> list[str]:
        return list(self.order) if self.order is not None else list(self.providers)


class RouteSettings(_Config, dict=True):
    """One routing rule: when every `when` condition holds, the request goes to `use`
    (a provider, or a list tried in order) or to one arm of the weighted `split`.

    `sticky` names the field whose value picks the split arm (same value, same arm,
    across restarts and replicas); `fallback` is tried after the chosen arm. The
    condition language lives in `gateway.rules`. Checks that need only this table run
    here and name the route; whether the providers exist is checked in `validate()`.
    """

    # trace.rule values that routing itself writes; a route may not take them.
    RESERVED: ClassVar[frozenset[str]] = frozenset({"pin", "catalog"})

    name: str
    when: dict[str, Any] = {}
    use: str | list[str] | None = None
    split: dict[str, float] | None = None  # provider -> weight, walked in this order
    sticky: str | None = None  # a field path: "metadata.user", "key", "tenant", "header.x-user"
    fallback: list[str] | None = None  # tried after the chosen arm; absent = the arm only
    deadline_seconds: Positive | None = None  # a time budget for jobs this route takes, for the job runner

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a route needs a non-empty `name`")
        if self.name in self.RESERVED or self.name.startswith("models."):
            raise ValueError(f"route {self.name!r}: the name is reserved for routing traces (pin, catalog, models.*)")
        try:
            self._check()
            _ = self.conditions  # parse `when` now (and cache it) so a bad condition is a load error
        except ValueError as exc:
            raise ValueError(f"route {self.name!r}: {exc}") from None

    def _check(self) -> None:
        if (self.use is None) == (self.split is None):
            raise ValueError("give exactly one of `use` or `split`")
        if isinstance(self.use, list):
            if not self.use:
                raise ValueError("`use` must name at least one provider")
            _no_duplicates("use", self.use)
        if self.split is not None:
            if not self.split:
                raise ValueError("`split` must name at least one provider")
            for arm, weight in self.split.items():
                if not math.isfinite(weight) or weight < 0:
                    raise ValueError(f"split.{arm}: weight must be a finite number >= 0, got {weight:g}")
            if sum(self.split.values()) <= 0:
                raise ValueError("split: the weights must add up to more than 0")
        if self.sticky is not None:
            if self.split is None:
                raise ValueError("`sticky` only applies to a `split`")
            try:
                self.sticky = rules.check_field(self.sticky)
            except ValueError as exc:
                raise ValueError(f"sticky: {exc}") from None
        if self.fallback is not None:
            _no_duplicates("fallback", self.fallback)

    @cached_property
    def conditions(self) -> tuple[rules.Condition, ...]:
        return rules.parse_when(self.when)

    @property
    def arms(self) -> list[str]:
        """The providers tried first: `use` in order, or the split's arms."""
        if self.split is not None:
            return list(self.split)
        return [self.use] if isinstance(self.use, str) else list(self.use or ())


def _no_duplicates(field: str, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"`{field}` names {', '.join(map(repr, repeated))} more than once")


WebhookEvent = Literal["video.completed", "video.failed", "video.cancelled"]
WEBHOOK_EVENTS: tuple[str, ...] = get_args(WebhookEvent)


def _check_whsec(secret: str, what: str) -> None:
    body = secret.removeprefix("whsec_")
    if body == secret or not body:
        raise ValueError(f"{what} must look like whsec_<base64>")
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} must be whsec_ followed by base64") from None


class WebhookEndpointSettings(_Config):
    """A configured receiver: every event of one caller key (`key`) or one tenant (`tenant`).

    All of `secrets` sign each delivery (one `v1,` signature each), so during a rotation a
    receiver verifies with either its old or its new secret; list the new one first.
    """

    __secret_fields__: ClassVar[frozenset[str]] = frozenset({"secrets"})
    __url_fields__: ClassVar[frozenset[str]] = frozenset({"url"})

    name: str
    url: str
    secrets: list[str]
    tenant: str | None = None
    key: str | None = None  # a key's `name`
    events: list[WebhookEvent] = msgspec.field(default_factory=lambda: list(get_args(WebhookEvent)))
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("endpoint name must not be empty")
        _check_http_url(self.url, f"endpoint {self.name!r}: url")
        if not self.secrets:
            raise ValueError(f"endpoint {self.name!r}: give at least one secret in `secrets`")
        for i, secret in enumerate(self.secrets):
            _check_whsec(secret, f"endpoint {self.name!r}: secrets[{i}]")
        if len(set(self.secrets)) != len(self.secrets):
            raise ValueError(f"endpoint {self.name!r}: `secrets` lists a secret more than once")
        if (self.tenant is None) == (self.key is None):
            raise ValueError(f"endpoint {self.name!r}: give exactly one of `tenant` or `key`")
        if not self.events:
            raise ValueError(f"endpoint {self.name!r}: `events` must not be empty (omit it for every event)")
        _no_duplicates("events", list(self.events))


class WebhookSettings(_Config):
    __secret_fields__: ClassVar[frozenset[str]] = frozenset({"secret"})

    # Signs a job's own `webhook_url` when no endpoint below covers the caller; "" = none
    # (then `webhook_url` is refused for such callers).
    secret: str | None = None
    max_attempts: Count = 8
    # delay before retry n (1-based) is schedule_seconds[n-1]; the last entry repeats
    schedule_seconds: list[Annotated[float, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0]
    )
    # no retry is scheduled later than this after the event (max_attempts caps it too)
    max_age_seconds: Positive = 3 * 86400.0
    timeout_seconds: Positive = 10.0  # one attempt, connect to answer
    # Attempts in flight per process, and at most this many of them for one tenant and for
    # one receiver URL, so one tenant's dead receivers can't hold everyone's slots.
    concurrency: Count = 32
    per_tenant_concurrency: Count = 8
    per_endpoint_concurrency: Count = 2
    endpoints: list[WebhookEndpointSettings] = []

    def __post_init__(self) -> None:
        if self.secret == "":  # `${VIDGATE_WEBHOOK_SECRET:-}` with the variable unset
            self.secret = None
        if self.secret is not None:
            _check_whsec(self.secret, "webhook secret")
        if not self.schedule_seconds:
            raise ValueError("schedule_seconds must not be empty")


class JobSettings(_Config):
    default_model: str = "seedance-2.0"
    poll_min_seconds: Positive = 1.0
    poll_max_seconds: Positive = 30.0
    # how long a result stays downloadable when vidgate keeps no copy (upstream links last ~24 h)
    expires_after_seconds: Count = 86400

    def __post_init__(self) -> None:
        if self.poll_min_seconds > self.poll_max_seconds:
            raise ValueError("poll_min_seconds must not exceed poll_max_seconds")


class OutputSettings(_Config):
    """vidgate's own copy of each finished video, thumbnail and last frame."""

    keep: bool = True
    # local directory for copies (relative to the working directory); default: beside a
    # SQLite store's file (`<db>-outputs/`). Required with PostgreSQL (or `:memory:`) while
    # `keep` is on: replicas need one directory they all share.
    dir: str | None = None
    max_bytes: Count = 2 * 2**30  # per file; a bigger upstream file is not copied
    retention_seconds: Count = 7 * 86400  # copies older than this are deleted, and /content answers 404
    timeout_seconds: Positive = 300.0  # for one whole download


class MetricsSettings(_Config):
    """Prometheus metrics (`gateway.metrics`): where `GET /metrics` is served, if anywhere.

    - `admin` (default): on the main port, for keys with `admin = true` only;
    - `separate`: on their own listener at `host:port`, without authentication (bind it
      to an address only your Prometheus reaches);
    - `off`: not collected at all.

    Every replica exposes its own counters: scrape each one (they are not shared
    through the store)."""

    expose: Literal["admin", "separate", "off"] = "admin"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9464


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LoggingSettings(_Config):
    """What `vidgate serve` logs (`gateway.logging`); `vidgate serve --log-level` overrides `level`."""

    # Lines below this level cost a method call and nothing else: no context, no rendering.
    level: LogLevel = "info"


class ClusterSettings(_Config):
    """Several vidgate processes on one store divide the jobs by leases (`gateway.jobs.store`)."""

    instance_id: str | None = None  # default: hostname-pid-random, new on every start
    lease_seconds: Positive = 15.0  # a dead process's jobs are taken over this long after it stops renewing
    claim_interval_seconds: Positive = 2.0  # how often to renew held leases and look for unheld jobs
    max_jobs: Count = 10_000  # at most this many jobs driven by this process at once

    def __post_init__(self) -> None:
        if self.claim_interval_seconds * 2 >= self.lease_seconds:
            raise ValueError("claim_interval_seconds must be under half of lease_seconds, or leases lapse between renewals")


class ConsoleSettings(_Config):
    """The web console at `/console` (`gateway.console`): sign in with a vidgate key."""

    __secret_fields__: ClassVar[frozenset[str]] = frozenset({"session_secret"})

    enabled: bool = True
    # Signs session cookies and CSRF tokens; give every replica the same one (at least 32
    # characters). Default: random per process, so sessions end when it restarts.
    session_secret: Annotated[str, msgspec.Meta(min_length=32)] | None = None
    session_hours: Positive = 12.0


class Settings(_Config):
    keys: list[KeySettings]
    providers: dict[str, ProviderSettings]
    models: dict[str, ModelSettings] = {}
    routes: list[RouteSettings] = []  # tried in order; the first whose `when` holds decides
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    security: SecuritySettings = msgspec.field(default_factory=SecuritySettings)
    webhooks: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    jobs: JobSettings = msgspec.field(default_factory=JobSettings)
    outputs: OutputSettings = msgspec.field(default_factory=OutputSettings)
    cluster: ClusterSettings = msgspec.field(default_factory=ClusterSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate, convert and cross-check a TOML config file."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(source, f"can't read config file: {exc.strerror or exc}") from None
    return parse_settings(text, env=env, source=source)


def parse_settings(text: str, *, env: Mapping[str, str] | None = None, source: str = "<string>") -> Settings:
    """Like `load_settings`, from TOML text. `env` defaults to `os.environ`."""
    try:
        raw = msgspec.toml.decode(text.encode())
    except msgspec.DecodeError as exc:
        raise ConfigError(source, f"not valid TOML: {exc}") from None
    problems: list[str] = []
    raw = _interpolate(raw, os.environ if env is None else env, (), problems, lenient=False)
    if problems:
        raise ConfigError(source, problems)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(source, _explain(exc, raw, Settings)) from None
    problems = validate(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def validate(settings: Settings) -> list[str]:
    """Cross-section checks; an empty list means the settings are usable."""
    problems: list[str] = []
    providers = settings.providers
    if not providers:
        problems.append("providers: configure at least one provider")
    for name, p in providers.items():
        at = _format_path(("providers", name))
        if p.enabled and not p.secret:
            problems.append(f"{at}.secret: empty")
        desc = DESCRIPTORS.get(p.type)
        if desc is None:
            problems.append(f"{at}.type: unknown provider type {p.type!r} (known: {', '.join(DESCRIPTORS)})")
            continue
        rules = desc.accounts
        if rules is None and p.accounts:
            problems.append(f"{at}.accounts: {p.type} providers have no accounts")
        if rules is not None and p.accounts:
            for i, account in enumerate(p.accounts):
                problem = rules.problem(account.id, account.region)
                if problem is not None:
                    problems.append(f"{at}.accounts[{i}]: {problem}")
                if account.max_jobs > rules.max_jobs:
                    problems.append(f"{at}.accounts[{i}].max_jobs: {p.type} allows at most {rules.max_jobs} jobs per account")
        elif rules is not None:
            problems.append(f"{at}.accounts: a {p.type} provider needs at least one account")
        for model_id in p.prices:
            if model_id not in desc.models:
                problems.append(f"{at}.prices: {model_id!r} is not a {p.type} model id (known: {', '.join(desc.models)})")
    for model, m in settings.models.items():
        at = _format_path(("models", model))
        for name in m.providers:
            if name not in providers:
                problems.append(f"{at}.providers: {name!r} is not a configured provider")
        # `order` lists exactly the model's providers (ModelSettings.__post_init__), so it is covered.
    problems.extend(_validate_routes(settings))
    problems.extend(_validate_webhook_endpoints(settings))
    if settings.outputs.keep and not settings.outputs.dir and settings.store.outputs_dir(None) is None:
        problems.append(
            "outputs.dir: required when the store is not a SQLite file and outputs.keep is on: "
            "name a directory every replica shares (or set outputs.keep = false)"
        )
    if settings.models and settings.jobs.default_model not in settings.models:
        problems.append(f"jobs.default_model: {settings.jobs.default_model!r} is not a configured model")
    seen_names: dict[str, int] = {}
    seen_digests: dict[str, str] = {}
    for i, k in enumerate(settings.keys):
        if k.name in seen_names:
            problems.append(f"keys[{i}].name: duplicate key name {k.name!r} (also keys[{seen_names[k.name]}])")
        seen_names.setdefault(k.name, i)
        if (k.key is None) == (k.sha256 is None):
            problems.append(f"keys[{i}]: give exactly one of `key` or `sha256`")
            continue
        if k.digest in seen_digests:
            problems.append(f"keys[{i}]: same key as {seen_digests[k.digest]!r}")
        seen_digests.setdefault(k.digest, k.name)
        for name in k.providers or ():
            if name not in providers:
                problems.append(f"keys[{i}].providers: {name!r} is not a configured provider")
    return problems


def _validate_routes(settings: Settings) -> list[str]:
    problems: list[str] = []
    key_names = {k.name for k in settings.keys}
    tenants = {k.tenant for k in settings.keys}
    seen: dict[str, int] = {}
    for i, r in enumerate(settings.routes):
        at = f"routes[{i}]: route {r.name!r}"
        if r.name in seen:
            problems.append(f"{at}: duplicate route name (also routes[{seen[r.name]}])")
        seen.setdefault(r.name, i)
        named = {"split" if r.split is not None else "use": r.arms, "fallback": r.fallback or []}
        for field, names in named.items():
            for name in names:
                if name not in settings.providers:
                    problems.append(f"{at}: {field}: {name!r} is not a configured provider")
        # A key name or tenant nobody has is a typo: the rule would silently never match.
        for c in r.conditions:
            known = {"key": key_names, "tenant": tenants}.get(c.field)
            if known is None:
                continue
            for op, operand in c.ops:
                values = operand if op in ("in", "not_in") else [operand] if op in ("eq", "not") else []
                for value in sorted(values):
                    if value not in known:
                        problems.append(f"{at}: when.{c.field}: {value!r} is not a configured {'key name' if c.field == 'key' else 'tenant'}")
    return problems


def _validate_webhook_endpoints(settings: Settings) -> list[str]:
    problems: list[str] = []
    key_names = {k.name for k in settings.keys}
    tenants = {k.tenant for k in settings.keys}
    names: dict[str, int] = {}
    targets: dict[tuple[str, str, str], str] = {}
    for i, e in enumerate(settings.webhooks.endpoints):
        at = f"webhooks.endpoints[{i}]"
        if e.name in names:
            problems.append(f"{at}.name: duplicate endpoint name {e.name!r} (also webhooks.endpoints[{names[e.name]}])")
        names.setdefault(e.name, i)
        if e.key is not None and e.key not in key_names:
            problems.append(f"{at}.key: {e.key!r} is not a configured key name")
        if e.tenant is not None and e.tenant not in tenants:
            problems.append(f"{at}.tenant: {e.tenant!r} is not a configured tenant")
        # The same URL twice for one scope would receive every event twice.
        scope = ("key", e.key) if e.key is not None else ("tenant", str(e.tenant))
        target = (*scope, e.url)
        if target in targets:
            problems.append(f"{at}.url: endpoint {targets[target]!r} already sends this {scope[0]}'s events to the same URL")
        targets.setdefault(target, e.name)
    return problems


def describe(settings: Settings) -> str:
    """A human summary for `vidgate check-config`. Never includes a secret."""
    lines = [f"store: {redact_url(settings.store.url)}", f"server: {settings.server.host}:{settings.server.port}"]
    lines.append(f"  callbacks to: {settings.server.base_url}")
    lines.append("providers:")
    for name, p in settings.providers.items():
        state = "" if p.enabled else " (disabled)"
        desc = DESCRIPTORS.get(p.type)
        slots = sum(a.max_jobs for a in p.accounts) if p.accounts else p.max_concurrency or (desc.default_max_concurrency if desc else None)
        max_age = p.max_job_age_seconds or (desc.max_age_seconds if desc else None)
        lines.append(
            f"  {name}{state}: type={p.type} base_url={redact_url(p.base_url)} slots={slots} connections={p.max_connections} "
            f"timeout={p.timeout_seconds:g}s max_job_age={max_age:g}s"
        )
        for a in p.accounts:
            lines.append(f"    account {a.id} region={a.region} max_jobs={a.max_jobs}")
    lines.append(f"models (default {settings.jobs.default_model}):" if settings.models else "models: none configured")
    for model, m in settings.models.items():
        route = ", ".join(f"{name}: {m.providers[name]}" for name in m.provider_order)
        lines.append(f"  {model} -> {route}")
    lines.append("routes (first match wins):" if settings.routes else "routes: none (each model's provider order)")
    for r in settings.routes:
        lines.append(f"  {r.name}: {_describe_route(r)}")
    lines.append("keys:" if settings.keys else "keys: none (every request will be rejected)")
    for k in settings.keys:
        pins = "all" if k.providers is None else ", ".join(k.providers) or "none"
        lines.append(f"  {k.name}: tenant={k.tenant} admin={'yes' if k.admin else 'no'} providers={pins}")
    hooks = settings.webhooks
    job_urls = "job webhook_url signed" if hooks.secret else "job webhook_url only where an endpoint covers the caller"
    lines.append(f"webhooks: {job_urls}, up to {hooks.max_attempts} attempts")
    for e in hooks.endpoints:
        scope = f"key {e.key}" if e.key else f"tenant {e.tenant}"
        state = "" if e.enabled else " (disabled)"
        lines.append(f"  endpoint {e.name}: {redact_url(e.url)} for {scope}, {len(e.secrets)} secret(s){state}")
    outputs = settings.store.outputs_dir(settings.outputs.dir)
    lines.append(f"outputs: copies kept in {outputs}" if settings.outputs.keep else "outputs: no copies kept (upstream links only)")
    lines.append(_describe_metrics(settings))
    return "\n".join(lines)


def _describe_metrics(settings: Settings) -> str:
    m = settings.metrics
    if m.expose == "off":
        return "metrics: off"
    if m.expose == "separate":
        return f"metrics: GET http://{m.host}:{m.port}/metrics, no authentication (its own listener)"
    admins = [k.name for k in settings.keys if k.admin]
    who = f"admin keys ({', '.join(admins)})" if admins else "admin keys (none configured: unreachable until one is)"
    return f"metrics: GET /metrics on the main port for {who}"


def _describe_route(r: RouteSettings) -> str:
    when = ", ".join(f"{f}={v!r}" for f, v in r.when.items()) or "always"
    if r.split is not None:
        target = "split " + " / ".join(f"{arm} {w:g}" for arm, w in r.split.items())
        if r.sticky is not None:
            target += f" (sticky on {r.sticky})"
    else:
        target = " then ".join(r.arms)
    if r.fallback:
        target += ", fallback " + ", ".join(r.fallback)
    if r.deadline_seconds is not None:
        target += f", deadline {r.deadline_seconds:g}s"
    return f"when {when} -> {target}"


def redact_url(url: str) -> str:
    """The URL with any password in its userinfo replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    userinfo = f"{parts.username}:***" if parts.username else "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))


# ---------------------------------------------------------------------------
# Internals: ${ENV} interpolation and error paths
# ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}")
_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.S)


def _interpolate(value: Any, env: Mapping[str, str], path: tuple[str | int, ...], problems: list[str], *, lenient: bool) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string; `$$` is a literal `$`.

    `:-` follows the shell: the default applies when NAME is unset or empty. A disabled
    provider's table is `lenient`: an unset variable there becomes "" instead of an error,
    so turning a provider off doesn't require its credentials.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = (*path, k)
            quiet = lenient or (len(path) == 1 and path[0] == "providers" and isinstance(v, dict) and v.get("enabled") is False)
            out[k] = _interpolate(v, env, sub, problems, lenient=quiet)
        return out
    if isinstance(value, list):
        return [_interpolate(v, env, (*path, i), problems, lenient=lenient) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        var = _VAR.fullmatch(match.group(1))
        if var is None:
            problems.append(f"{_format_path(path)}: malformed placeholder {match.group(0)!r} (use ${{NAME}} or ${{NAME:-default}})")
            return ""
        name, default = var.group(1), var.group(2)
        found = env.get(name)
        if default is not None and not found:
            return default
        if found is None:
            if not lenient:
                problems.append(f"{_format_path(path)}: environment variable {name} is not set")
            return ""
        return found

    return _PLACEHOLDER.sub(replace, value)


_AT = re.compile(r"(?P<msg>.*) - at `\$(?P<path>[^`]*)`", re.S)
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|(\[\.\.\.\])")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>.+)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>.+)`")


def _explain(exc: msgspec.ValidationError, raw: Any, tp: Any) -> str:
    """Turn msgspec's message into `<path>: <what>`, resolving `[...]` dict keys to real names."""
    message, path = _locate(str(exc), raw, tp)
    if m := _UNKNOWN.fullmatch(message):
        return f"{_format_path((*path, m['field']))}: unknown key"
    if m := _MISSING.fullmatch(message):
        return f"{_format_path((*path, m['field']))}: required key is missing"
    return f"{_format_path(path)}: {message}" if path else message


def _locate(message: str, raw: Any, tp: Any) -> tuple[str, tuple[str | int, ...]]:
    m = _AT.fullmatch(message)
    if m is None:
        return message, ()
    path: list[str | int] = []
    value, typ = raw, tp
    for seg in _SEGMENT.finditer(m["path"]):
        field, index, unknown_key = seg.groups()
        if field is not None:
            path.append(field)
            value = value.get(field) if isinstance(value, dict) else None
            typ = _field_type(typ, field)
        elif index is not None:
            path.append(int(index))
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            typ = _item_type(typ, 0)
        else:
            value_type = _item_type(typ, 1)
            if isinstance(value, dict) and value_type is not None:
                # msgspec doesn't name dict keys in its paths: find the entry that fails on its own.
                for key, item in value.items():
                    try:
                        msgspec.convert(item, value_type, strict=False)
                    except msgspec.ValidationError as sub:
                        sub_message, sub_path = _locate(str(sub), item, value_type)
                        return sub_message, (*path, key, *sub_path)
            path.append(unknown_key)
            value = typ = None
    return m["msg"], tuple(path)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _field_type(tp: Any, name: str) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        for f in msgspec.structs.fields(tp):
            if f.name == name:
                return f.type
    return None


def _item_type(tp: Any, position: int) -> Any:
    """The element type of a list (position 0) or the value type of a dict (position 1)."""
    tp = _unwrap(tp)
    args = get_args(tp)
    if get_origin(tp) is dict and position == 1 and len(args) == 2:
        return args[1]
    if get_origin(tp) in (list, tuple, set, frozenset) and position == 0 and args:
        return args[0]
    return None


def _key(name: str) -> str:
    """A TOML key as written in a file: bare when it can be, quoted otherwise."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else msgspec.json.encode(name).decode()


def _format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for seg in path:
        if isinstance(seg, int) or seg == "[...]":  # "[...]": a dict key we could not resolve
            out += f"[{seg}]" if isinstance(seg, int) else seg
        else:
            out += f".{_key(seg)}" if out else _key(seg)
    return out or "<root>"


def _check_http_url(url: str, field: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field} must be an http(s) URL, got {redact_url(url)!r}")
