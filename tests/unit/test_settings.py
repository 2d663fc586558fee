from __future__ import annotations

import hashlib
from pathlib import Path
from typing import get_args

import msgspec
import pytest

from gateway.settings import (
    ConfigError,
    KeySettings,
    ModelSettings,
    ProviderSettings,
    Settings,
    describe,
    load_settings,
    parse_settings,
    validate,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"
ENV = {
    "USEAPI_TOKEN": "useapi-token-SENTINEL1",
    "POWERTOKENS_API_KEY": "sk-powertokens-SENTINEL2",
    "VIDGATE_KEY": "vidgate-key-SENTINEL3",
}
SECRETS = list(ENV.values())

MINIMAL = """
[[keys]]
name = "app"
tenant = "acme"
key = "${VIDGATE_KEY}"

[providers.useapi]
type = "useapi"
base_url = "https://api.useapi.net/v1/dreamina"
secret = "${USEAPI_TOKEN}"

[[providers.useapi.accounts]]
id = "CA:user@example.com"
region = "CA"

[providers.powertokens]
type = "powertokens"
base_url = "https://api.powertokens.ai"
secret = "${POWERTOKENS_API_KEY}"
"""


def parse(text: str, env: dict[str, str] | None = None) -> Settings:
    return parse_settings(text, env=ENV if env is None else env, source="test.toml")


def error_of(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return info.value


# --- the example ------------------------------------------------------------


def test_example_config_loads_with_its_env_vars() -> None:
    settings = load_settings(EXAMPLE, env=ENV)

    assert set(settings.providers) == {"useapi", "powertokens", "modelark"}
    assert settings.providers["modelark"].enabled is False  # ships disabled until ARK_API_KEY is set
    useapi = settings.providers["useapi"]
    assert useapi.type == "useapi"
    assert useapi.secret == ENV["USEAPI_TOKEN"]
    assert [a.id for a in useapi.accounts] == ["CA:first@example.com", "US:second@example.com"]
    assert settings.providers["powertokens"].secret == ENV["POWERTOKENS_API_KEY"]
    assert list(settings.models) == ["seedance-2.0", "seedance-2.0-fast", "seedance-1.5-pro"]
    assert settings.models["seedance-2.0"].providers == {
        "useapi": "seedance-2.0",
        "powertokens": "dreamina-seedance-2-0-260128",
    }
    assert settings.models["seedance-1.5-pro"].providers["powertokens"] == "seedance-1-5-pro-251215"
    assert settings.models["seedance-2.0-fast"].provider_order == ["useapi", "powertokens"]
    assert settings.models["seedance-1.5-pro"].provider_order == ["powertokens", "useapi"]
    by_name = {k.name: k for k in settings.keys}
    assert by_name["app"].key == ENV["VIDGATE_KEY"]
    assert by_name["app"].digest == hashlib.sha256(ENV["VIDGATE_KEY"].encode()).hexdigest()
    assert by_name["ops"].key is None
    assert by_name["ops"].digest == hashlib.sha256(b"example-admin-key").hexdigest()
    assert by_name["ops"].admin
    assert settings.webhooks.secret is None  # ${VIDGATE_WEBHOOK_SECRET:-} with the variable unset
    assert settings.store.sqlite_path == "vidgate.db"
    assert validate(settings) == []


def test_example_config_needs_its_env_vars() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(EXAMPLE, env={})
    message = str(info.value)
    assert str(EXAMPLE) in message
    for var, path in [
        ("USEAPI_TOKEN", "providers.useapi.secret"),
        ("POWERTOKENS_API_KEY", "providers.powertokens.secret"),
        ("VIDGATE_KEY", "keys[0].key"),
    ]:
        assert f"{path}: environment variable {var} is not set" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="can't read config file"):
        load_settings(tmp_path / "absent.toml", env=ENV)


# --- interpolation ----------------------------------------------------------


def test_missing_env_var_names_variable_and_path() -> None:
    err = error_of(MINIMAL, env={"USEAPI_TOKEN": "u", "VIDGATE_KEY": "k"})
    assert err.source == "test.toml"
    assert err.problems == ["providers.powertokens.secret: environment variable POWERTOKENS_API_KEY is not set"]
    assert str(err).startswith("test.toml: ")


def test_default_applies_when_unset_or_empty_and_not_when_set() -> None:
    text = MINIMAL + '[store]\nurl = "${STORE_URL:-sqlite:///fallback.db}"\n'
    assert parse(text).store.url == "sqlite:///fallback.db"
    assert parse(text, {**ENV, "STORE_URL": ""}).store.url == "sqlite:///fallback.db"
    assert parse(text, {**ENV, "STORE_URL": "sqlite:////var/db/v.db"}).store.sqlite_path == "/var/db/v.db"


def test_interpolation_inside_longer_strings_and_dollar_escape() -> None:
    text = MINIMAL + '[server]\npublic_url = "https://${HOST:-gw.example.com}/v$$1"\n'
    assert parse(text).server.public_url == "https://gw.example.com/v$1"


def test_interpolated_numbers_are_converted() -> None:
    settings = parse(MINIMAL + '[server]\nport = "${PORT:-9100}"\n')
    assert settings.server.port == 9100
    assert settings.server.base_url == "http://127.0.0.1:9100"


def test_malformed_placeholder_is_rejected() -> None:
    err = error_of(MINIMAL.replace("${USEAPI_TOKEN}", "${not valid}"))
    assert "providers.useapi.secret: malformed placeholder" in str(err)


def test_disabled_provider_does_not_need_its_env_var() -> None:
    text = MINIMAL.replace('secret = "${POWERTOKENS_API_KEY}"', 'secret = "${POWERTOKENS_API_KEY}"\nenabled = false')
    settings = parse(text, {"USEAPI_TOKEN": "u", "VIDGATE_KEY": "k"})
    assert settings.providers["powertokens"].enabled is False


# --- structural errors ------------------------------------------------------


def test_unknown_key_at_nested_path_names_path_and_file() -> None:
    err = error_of(MINIMAL.replace('base_url = "https://api.useapi', 'bse_url = "https://api.useapi'))
    assert err.problems == ["providers.useapi.bse_url: unknown key"]
    assert "test.toml" in str(err)


def test_unknown_key_inside_quoted_model_name() -> None:
    err = error_of(MINIMAL + '[models."seedance-2.0"]\nproviders = { useapi = "seedance-2.0" }\nordr = []\n')
    assert err.problems == ['models."seedance-2.0".ordr: unknown key']


def test_unknown_top_level_section() -> None:
    assert error_of(MINIMAL + "[routingg]\n").problems == ["routingg: unknown key"]


def test_logging_level_defaults_to_info_and_takes_only_known_levels() -> None:
    assert parse(MINIMAL).logging.level == "info"
    assert parse(MINIMAL + '[logging]\nlevel = "warning"\n').logging.level == "warning"
    [problem] = error_of(MINIMAL + '[logging]\nlevel = "chatty"\n').problems
    assert problem.startswith("logging.level:") and "chatty" in problem, problem


def test_the_cli_offers_the_log_levels_the_config_takes() -> None:
    from gateway.cli import LOG_LEVELS
    from gateway.settings import LogLevel

    assert get_args(LogLevel) == LOG_LEVELS


def test_wrong_type_and_limit_name_their_path() -> None:
    err = error_of(MINIMAL.replace('region = "CA"', 'region = "CA"\nmax_jobs = 51'))
    assert err.problems == ["providers.useapi.accounts[0].max_jobs: useapi allows at most 50 jobs per account"]
    err = error_of(MINIMAL + '[models."seedance-2.0"]\nproviders = { useapi = 2 }\n')
    assert err.problems == ['models."seedance-2.0".providers.useapi: Expected `str`, got `int`']


def test_missing_required_key() -> None:
    err = error_of(MINIMAL.replace('tenant = "acme"\n', ""))
    assert err.problems == ["keys[0].tenant: required key is missing"]


def test_unknown_provider_type() -> None:
    err = error_of(MINIMAL.replace('type = "powertokens"', 'type = "sora"'))
    assert err.problems[0].startswith("providers.powertokens.type: ")
    assert "sora" in err.problems[0]


def test_invalid_toml_is_reported() -> None:
    assert "not valid TOML" in str(error_of(MINIMAL + "[server\n"))


# --- per-struct rules -------------------------------------------------------


def test_key_with_both_key_and_sha256_is_rejected() -> None:
    text = MINIMAL.replace('key = "${VIDGATE_KEY}"', f'key = "${{VIDGATE_KEY}}"\nsha256 = "{"a" * 64}"')
    err = error_of(text)
    assert err.problems == ["keys[0]: key 'app': give exactly one of `key` or `sha256`"]


def test_key_with_neither_or_bad_sha256_is_rejected() -> None:
    assert "exactly one of" in str(error_of(MINIMAL.replace('key = "${VIDGATE_KEY}"', "")))
    bad = MINIMAL.replace('key = "${VIDGATE_KEY}"', f'sha256 = "{"A" * 64}"')
    assert "64 lowercase hex" in str(error_of(bad))
    with pytest.raises(ValueError, match="exactly one"):
        KeySettings(name="a", tenant="t")


def test_account_id_must_match_region() -> None:
    err = error_of(MINIMAL.replace('region = "CA"', 'region = "US"'))
    assert err.problems[0].startswith("providers.useapi.accounts[0]: ")
    assert "differs" in err.problems[0]
    assert "account id must look like CA:user@example.com" in str(error_of(MINIMAL.replace('"CA:user@example.com"', '"user@example.com"')))


def test_model_order_must_list_its_providers() -> None:
    text = MINIMAL + '[models.m]\nproviders = { useapi = "a", powertokens = "b" }\norder = ["useapi"]\n'
    assert error_of(text).problems[0].startswith("models.m: `order` must list each")


def test_webhook_secret_format() -> None:
    assert "whsec_" in str(error_of(MINIMAL + '[webhooks]\nsecret = "plain"\n'))
    assert parse(MINIMAL + '[webhooks]\nsecret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5"\n').webhooks.secret


WHSEC_NEW = "whsec_bmV3LXNpZ25pbmcta2V5LVNFTlRJTkVMNQ=="
WHSEC_OLD = "whsec_b2xkLXNpZ25pbmcta2V5LVNFTlRJTkVMNg=="


def _endpoint(**fields: str | None) -> str:
    values: dict[str, str | None] = {"name": '"hook"', "url": '"https://hooks.example/in"', "secrets": f'["{WHSEC_NEW}"]', "tenant": '"acme"'}
    values.update(fields)
    return "\n[[webhooks.endpoints]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None)


def test_webhook_endpoints_parse_with_defaults() -> None:
    text = MINIMAL + "[webhooks]\nmax_age_seconds = 3600\n" + _endpoint(secrets=f'["{WHSEC_NEW}", "{WHSEC_OLD}"]')
    text += _endpoint(name='"app-failures"', tenant=None, key='"app"', events='["video.failed"]', enabled="false")
    webhooks = parse(text).webhooks
    assert webhooks.max_age_seconds == 3600
    hook, failures = webhooks.endpoints
    assert (hook.name, hook.url, hook.tenant, hook.key, hook.enabled) == ("hook", "https://hooks.example/in", "acme", None, True)
    assert hook.secrets == [WHSEC_NEW, WHSEC_OLD]
    assert hook.events == ["video.completed", "video.failed", "video.cancelled"]
    assert (failures.key, failures.tenant, failures.events, failures.enabled) == ("app", None, ["video.failed"], False)
    assert parse(MINIMAL).webhooks.max_age_seconds == 3 * 86400 and parse(MINIMAL).webhooks.endpoints == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"secrets": '["plain"]'}, "webhooks.endpoints[0]: endpoint 'hook': secrets[0] must look like whsec_<base64>"),
        ({"secrets": '["whsec_!!"]'}, "webhooks.endpoints[0]: endpoint 'hook': secrets[0] must be whsec_ followed by base64"),
        ({"secrets": "[]"}, "webhooks.endpoints[0]: endpoint 'hook': give at least one secret in `secrets`"),
        ({"url": '"ftp://hooks.example/in"'}, "webhooks.endpoints[0]: endpoint 'hook': url must be an http(s) URL, got 'ftp://hooks.example/in'"),
        ({"key": '"app"'}, "webhooks.endpoints[0]: endpoint 'hook': give exactly one of `tenant` or `key`"),
        ({"tenant": None}, "webhooks.endpoints[0]: endpoint 'hook': give exactly one of `tenant` or `key`"),
        ({"events": '["video.exploded"]'}, "webhooks.endpoints[0].events[0]: Invalid enum value 'video.exploded'"),
        ({"events": "[]"}, "webhooks.endpoints[0]: endpoint 'hook': `events` must not be empty (omit it for every event)"),
        ({"colour": '"red"'}, "webhooks.endpoints[0].colour: unknown key"),
    ],
)
def test_webhook_endpoint_fields_are_checked(fields: dict[str, str | None], problem: str) -> None:
    assert error_of(MINIMAL + _endpoint(**fields)).problems == [problem]


def test_webhook_endpoints_are_cross_checked() -> None:
    text = MINIMAL + _endpoint() + _endpoint(tenant='"nobody"') + _endpoint(name='"by-key"', tenant=None, key='"ghost"')
    text += _endpoint(name='"again"')  # the same tenant and URL as "hook": every event would arrive twice
    problems = error_of(text).problems
    assert problems == [
        "webhooks.endpoints[1].name: duplicate endpoint name 'hook' (also webhooks.endpoints[0])",
        "webhooks.endpoints[1].tenant: 'nobody' is not a configured tenant",
        "webhooks.endpoints[2].key: 'ghost' is not a configured key name",
        "webhooks.endpoints[3].url: endpoint 'hook' already sends this tenant's events to the same URL",
    ]
    # A key endpoint and a tenant endpoint to one URL are different scopes: allowed.
    assert len(parse(MINIMAL + _endpoint() + _endpoint(name='"k"', tenant=None, key='"app"')).webhooks.endpoints) == 2


def test_webhook_endpoint_secrets_never_shown() -> None:
    settings = parse(MINIMAL + _endpoint(secrets=f'["{WHSEC_NEW}", "{WHSEC_OLD}"]'))
    for text in (repr(settings), str(settings.webhooks), describe(settings), repr(settings.webhooks.endpoints[0])):
        assert WHSEC_NEW not in text and WHSEC_OLD not in text and WHSEC_NEW[6:] not in text
    assert "secrets='***'" in repr(settings.webhooks.endpoints[0])


def test_webhook_max_age_must_be_positive() -> None:
    assert error_of(MINIMAL + "[webhooks]\nmax_age_seconds = 0\n").problems == ["webhooks.max_age_seconds: Expected `float` > 0.0"]


def test_base_url_must_be_http() -> None:
    err = error_of(MINIMAL.replace("https://api.powertokens.ai", "api.powertokens.ai"))
    assert err.problems[0].startswith("providers.powertokens: base_url must be an http(s) URL")


# --- cross-checks -----------------------------------------------------------


def test_model_referencing_unknown_provider_is_rejected() -> None:
    err = error_of(MINIMAL + '[models."seedance-2.0"]\nproviders = { useapi = "seedance-2.0", fal = "x" }\n')
    assert err.problems == ["models.\"seedance-2.0\".providers: 'fal' is not a configured provider"]


def test_cross_checks_collect_every_problem() -> None:
    text = (
        MINIMAL.replace('[[providers.useapi.accounts]]\nid = "CA:user@example.com"\nregion = "CA"\n', "")
        + '[[keys]]\nname = "app"\ntenant = "other"\nkey = "another"\nproviders = ["nope"]\n'
        + '[models.m]\nproviders = { useapi = "a" }\n'
    )
    problems = error_of(text).problems
    assert "providers.useapi.accounts: a useapi provider needs at least one account" in problems
    assert "keys[1].name: duplicate key name 'app' (also keys[0])" in problems
    assert "keys[1].providers: 'nope' is not a configured provider" in problems
    assert "jobs.default_model: 'seedance-2.0' is not a configured model" in problems


def test_validate_checks_settings_built_in_code() -> None:
    settings = Settings(
        keys=[KeySettings(name="a", tenant="t", key="k1"), KeySettings(name="b", tenant="t", key="k1")],
        providers={"pt": ProviderSettings(type="powertokens", base_url="https://pt.example", secret="s")},
        models={"m": ModelSettings(providers={"pt": "x", "gone": "y"})},
    )
    problems = validate(settings)
    assert "models.m.providers: 'gone' is not a configured provider" in problems
    assert "keys[1]: same key as 'a'" in problems
    assert "jobs.default_model: 'seedance-2.0' is not a configured model" in problems


# --- secrets never shown ----------------------------------------------------


def test_secrets_absent_from_repr_str_and_describe() -> None:
    env = {**ENV, "VIDGATE_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNpZ25pbmcta2V5LVNFTlRJTkVMNA=="}
    settings = load_settings(EXAMPLE, env=env)
    assert settings.webhooks.secret == env["VIDGATE_WEBHOOK_SECRET"]
    shown = [repr(settings), str(settings), describe(settings), repr(settings.providers["useapi"]), repr(settings.keys[0])]
    for text in shown:
        for secret in [*SECRETS, env["VIDGATE_WEBHOOK_SECRET"], "c2VjcmV0"]:
            assert secret not in text
    assert "secret='***'" in repr(settings.providers["useapi"])
    assert "key='***'" in repr(settings.keys[0])
    assert "secret='***'" in repr(settings.webhooks)


def test_rich_repr_masks_secrets_too() -> None:
    fields = dict(load_settings(EXAMPLE, env=ENV).providers["useapi"].__rich_repr__())
    assert repr(fields["secret"]) == "'***'"


def test_store_password_is_masked() -> None:
    settings = parse(MINIMAL + '[store]\nurl = "postgresql://vid:hunter2@db.internal/vidgate"\n[outputs]\ndir = "/srv/vidgate/outputs"\n')
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in describe(settings)
    assert "postgresql://vid:***@db.internal/vidgate" in describe(settings)


def test_describe_lists_providers_models_in_order_keys_and_store() -> None:
    text = describe(load_settings(EXAMPLE, env=ENV))
    assert "store: sqlite:///vidgate.db" in text
    assert "useapi: type=useapi base_url=https://api.useapi.net/v1/dreamina slots=15 connections=32" in text  # its two accounts: 10 + 5
    assert "account CA:first@example.com region=CA max_jobs=10" in text
    assert "seedance-1.5-pro -> powertokens: seedance-1-5-pro-251215, useapi: seedance-1.5-pro" in text
    assert "app: tenant=acme admin=no providers=all" in text
    assert "ops: tenant=acme admin=yes providers=useapi, powertokens" in text


def test_settings_round_trip_through_builtins() -> None:
    # settings built in code (the demo) and settings from TOML are the same type
    settings = load_settings(EXAMPLE, env=ENV)
    again = msgspec.convert(msgspec.to_builtins(settings), Settings)
    assert again == settings


def test_outputs_default_beside_the_sqlite_file_relative_or_absolute() -> None:
    absolute = parse(MINIMAL + '[store]\nurl = "sqlite:////var/lib/vidgate/vidgate.db"\n')
    assert absolute.store.sqlite_path == "/var/lib/vidgate/vidgate.db"
    assert absolute.store.outputs_dir(absolute.outputs.dir) == "/var/lib/vidgate/vidgate-outputs"
    relative = parse(MINIMAL + '[store]\nurl = "sqlite:///data/vidgate.db"\n')
    assert relative.store.outputs_dir(relative.outputs.dir) == "data/vidgate-outputs"


def test_postgresql_with_kept_outputs_needs_an_outputs_dir_and_says_so() -> None:
    with pytest.raises(ConfigError) as err:
        parse(MINIMAL + '[store]\nurl = "postgresql://vid@db/vidgate"\n')
    assert "outputs.dir: required when the store is not a SQLite file" in str(err.value)
    shared = parse(MINIMAL + '[store]\nurl = "postgresql://vid@db/vidgate"\n[outputs]\ndir = "/mnt/shared/outputs"\n')
    assert "outputs: copies kept in /mnt/shared/outputs" in describe(shared)
    no_copies = parse(MINIMAL + '[store]\nurl = "postgresql://vid@db/vidgate"\n[outputs]\nkeep = false\n')
    assert "outputs: no copies kept" in describe(no_copies)


def test_metrics_section_defaults_to_admin_keys_and_check_config_says_who_may_read() -> None:
    settings = parse(MINIMAL)
    assert settings.metrics.expose == "admin"
    assert "metrics: GET /metrics on the main port for admin keys (none configured" in describe(settings)
    separate = parse(MINIMAL + '[metrics]\nexpose = "separate"\nhost = "0.0.0.0"\nport = 9100\n')
    assert "metrics: GET http://0.0.0.0:9100/metrics, no authentication" in describe(separate)
    assert "metrics: off" in describe(parse(MINIMAL + '[metrics]\nexpose = "off"\n'))
    with pytest.raises(ConfigError) as err:
        parse(MINIMAL + '[metrics]\nexpose = "public"\n')
    assert "metrics.expose" in str(err.value)
