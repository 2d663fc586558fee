"""Costs in one currency: a USD estimate on every job whose price is known.

An upstream reports a job's cost in its own unit (credits of some account, billed tokens,
dollars), and an adapter fills `usd_estimate` where its provider package has a published
price table. `Pricer.price` settles the estimate for any provider, in this order:

1. your price from config (`[providers.x.prices."<model id>"]`), per output second or per
   million billed tokens: a negotiated or unpublished price beats the list price;
2. credits at `usd_per_credit` (config, else the provider package's published figure);
3. the adapter's own estimate, as it reported it;
4. a cost already in USD;
5. the adapter's list-price estimate for the request (`Adapter.estimate_cost`), when the
   upstream reported no cost at all, or one in a unit nothing above converts.

The engine calls it on each upstream answer before the lifecycle sees it, so the pure
lifecycle keeps recording `up.cost` as it did and knows nothing of prices. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from gateway.settings import PriceSettings, ProviderSettings
from providers.base import Adapter, Cost
from providers.descriptor import ProviderDescriptor

Estimate = Callable[[str, str | None, float | None], Cost | None]


@dataclass(frozen=True)
class Pricer:
    """One provider's prices: the configured ones, its credit price and its adapter's table."""

    prices: Mapping[str, PriceSettings]  # upstream model id -> configured price
    usd_per_credit: float | None
    estimate: Estimate  # the adapter's list price for a request: (model id, resolution, seconds)

    @classmethod
    def of(cls, settings: ProviderSettings, descriptor: ProviderDescriptor, adapter: Adapter) -> Pricer:
        credit = settings.usd_per_credit if settings.usd_per_credit is not None else descriptor.usd_per_credit
        return cls(prices=settings.prices, usd_per_credit=credit, estimate=adapter.estimate_cost)

    def price(self, cost: Cost | None, *, model_id: str, resolution: str | None, seconds: float | None, seconds_known: bool = True) -> Cost | None:
        """`cost` with `usd_estimate` filled where a price is known (or a USD cost where the
        upstream reported none). `seconds` is the output's length, None for the upstream's
        default; `seconds_known=False` means the upstream chooses it ("auto") and it is not
        known yet, so nothing per second can be priced."""
        configured = self.prices.get(model_id)
        if configured is not None:
            usd = _configured(configured, cost, resolution, seconds if seconds_known else None)
            if usd is not None:
                return _with_usd(cost, usd)
        if cost is not None:
            if cost.unit == "credits" and self.usd_per_credit is not None:
                return _with_usd(cost, cost.amount * self.usd_per_credit)
            if cost.usd_estimate is not None:
                return cost
            if cost.unit == "usd":
                return _with_usd(cost, cost.amount)
        if not seconds_known:
            return cost
        listed = self.estimate(model_id, resolution, seconds)
        if listed is None or listed.usd_estimate is None:
            return cost
        return _with_usd(cost, listed.usd_estimate)


def _configured(price: PriceSettings, cost: Cost | None, resolution: str | None, seconds: float | None) -> float | None:
    per_second = _rate(price.usd_per_second, resolution)
    if per_second is not None and seconds is not None and seconds > 0:
        return per_second * seconds
    per_million = _rate(price.usd_per_million_tokens, resolution)
    if per_million is not None and cost is not None and cost.unit == "tokens":
        return cost.amount * per_million / 1_000_000
    return None


def _rate(rate: float | dict[str, float] | None, resolution: str | None) -> float | None:
    if rate is None or isinstance(rate, float | int):
        return rate
    return rate.get(resolution) if resolution is not None else None


def _with_usd(cost: Cost | None, usd: float) -> Cost | None:
    if not math.isfinite(usd) or usd < 0:
        return cost
    usd = round(usd, 6)
    if cost is None:
        return Cost(amount=usd, unit="usd", usd_estimate=usd)
    return msgspec.structs.replace(cost, usd_estimate=usd)


def output_seconds(requested: str | None, delivered: float | None) -> tuple[float | None, bool]:
    """The length to price: (seconds, known). The delivered length wins; a request without
    one means the upstream's default (None, known to the adapter); "auto" is unknown."""
    if delivered is not None and delivered > 0:
        return float(delivered), True
    if requested is None:
        return None, True
    try:
        seconds = float(requested)
    except ValueError:
        return None, False
    return (seconds, True) if math.isfinite(seconds) and seconds > 0 else (None, False)
