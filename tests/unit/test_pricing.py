"""`gateway.pricing`: one USD estimate per job, from config, credits, the adapter's table."""

from __future__ import annotations

import pytest

from gateway.pricing import Pricer, output_seconds
from gateway.settings import ConfigError, PriceSettings, ProviderSettings, parse_settings
from providers.base import Cost
from providers.registry import descriptor


def list_price(model_id: str, resolution: str | None, seconds: float | None) -> Cost | None:
    """A stand-in adapter table: $0.10/s for "listed" at any resolution, 5 s by default."""
    if model_id != "listed":
        return None
    usd = 0.1 * (5 if seconds is None else seconds)
    return Cost(amount=usd, unit="usd", usd_estimate=usd)


def pricer(prices: dict[str, PriceSettings] | None = None, usd_per_credit: float | None = None) -> Pricer:
    return Pricer(prices=prices or {}, usd_per_credit=usd_per_credit, estimate=list_price)


def test_credits_convert_at_the_configured_credit_price() -> None:
    cost = pricer(usd_per_credit=0.002).price(Cost(amount=125, unit="credits"), model_id="m", resolution=None, seconds=5)
    assert cost == Cost(amount=125, unit="credits", usd_estimate=0.25)


def test_credits_without_a_credit_price_stay_unpriced() -> None:
    cost = pricer().price(Cost(amount=125, unit="credits"), model_id="m", resolution=None, seconds=5)
    assert cost == Cost(amount=125, unit="credits")


def test_the_adapters_own_estimate_stands_unless_config_says_otherwise() -> None:
    reported = Cost(amount=108900, unit="tokens", usd_estimate=0.6)
    assert pricer().price(reported, model_id="m", resolution="720p", seconds=5) == reported
    per_million = {"m": PriceSettings(usd_per_million_tokens={"720p": 5.0})}
    assert pricer(per_million).price(reported, model_id="m", resolution="720p", seconds=5) == Cost(amount=108900, unit="tokens", usd_estimate=0.5445)
    # a table by resolution says nothing about another resolution
    assert pricer(per_million).price(reported, model_id="m", resolution="1080p", seconds=5) == reported


def test_a_configured_price_per_second_wins_and_prices_a_cost_nobody_reported() -> None:
    flat = {"m": PriceSettings(usd_per_second=0.15)}
    assert pricer(flat).price(Cost(amount=108900, unit="tokens"), model_id="m", resolution=None, seconds=5) == Cost(
        amount=108900, unit="tokens", usd_estimate=0.75
    )
    assert pricer(flat).price(None, model_id="m", resolution="720p", seconds=4) == Cost(amount=0.6, unit="usd", usd_estimate=0.6)
    # the upstream's default length is unknown here, so a per-second price needs the seconds
    assert pricer(flat).price(None, model_id="m", resolution="720p", seconds=None) is None


def test_the_list_price_fills_in_when_the_upstream_reported_nothing_convertible() -> None:
    assert pricer().price(None, model_id="listed", resolution=None, seconds=None) == Cost(amount=0.5, unit="usd", usd_estimate=0.5)
    assert pricer().price(Cost(amount=10, unit="tokens"), model_id="listed", resolution=None, seconds=8) == Cost(amount=10, unit="tokens", usd_estimate=0.8)
    assert pricer().price(Cost(amount=10, unit="tokens"), model_id="unlisted", resolution=None, seconds=8) == Cost(amount=10, unit="tokens")
    assert pricer().price(Cost(amount=0.3, unit="usd"), model_id="unlisted", resolution=None, seconds=8) == Cost(amount=0.3, unit="usd", usd_estimate=0.3)


def test_an_auto_length_is_not_priced_per_second_until_it_is_delivered() -> None:
    flat = {"listed": PriceSettings(usd_per_second=0.2)}
    assert pricer(flat).price(None, model_id="listed", resolution=None, seconds=None, seconds_known=False) is None
    seconds, known = output_seconds("auto", 7.0)
    assert pricer(flat).price(None, model_id="listed", resolution=None, seconds=seconds, seconds_known=known) == Cost(amount=1.4, unit="usd", usd_estimate=1.4)


@pytest.mark.parametrize(
    ("requested", "delivered", "expected"),
    [("5", None, (5.0, True)), ("5", 6.0, (6.0, True)), (None, None, (None, True)), ("auto", None, (None, False)), ("-1", None, (None, False))],
)
def test_output_seconds(requested: str | None, delivered: float | None, expected: tuple[float | None, bool]) -> None:
    assert output_seconds(requested, delivered) == expected


def test_the_credit_price_comes_from_config_over_the_package_default() -> None:
    useapi = descriptor("useapi")
    assert useapi.usd_per_credit is None  # no published price (UPSTREAMS 1.9)
    settings = ProviderSettings(type="useapi", base_url="http://x", secret="s", usd_per_credit=0.001)
    assert Pricer.of(settings, useapi, useapi.adapter()).usd_per_credit == 0.001


CONFIG = """
[[keys]]
name = "k"
tenant = "t"
key = "sk-k"

[providers.pt]
type = "powertokens"
base_url = "http://pt"
secret = "s"
prices = {{ {prices} }}
"""


def test_config_names_prices_by_the_providers_own_model_ids() -> None:
    parsed = parse_settings(CONFIG.format(prices='"dreamina-seedance-2-0-260128" = { usd_per_second = { "720p" = 0.15 } }'), env={})
    assert parsed.providers["pt"].prices["dreamina-seedance-2-0-260128"].usd_per_second == {"720p": 0.15}
    with pytest.raises(ConfigError, match=r"providers\.pt\.prices: 'seedance-2\.0' is not a powertokens model id"):
        parse_settings(CONFIG.format(prices='"seedance-2.0" = { usd_per_second = 0.15 }'), env={})
    with pytest.raises(ConfigError, match="give usd_per_second or usd_per_million_tokens"):
        parse_settings(CONFIG.format(prices='"dreamina-seedance-2-0-260128" = {}'), env={})
    with pytest.raises(ConfigError):
        parse_settings(CONFIG.format(prices='"dreamina-seedance-2-0-260128" = { usd_per_second = -1 }'), env={})
