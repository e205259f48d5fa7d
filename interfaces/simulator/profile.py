"""The traffic profile: who does what, how often, and the shape of the simulated day.

Every figure here is a documented default (docs/capacity.md quotes them); `Profile` is frozen
so a run's report can state the profile it ran.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

LUNCH_SHAPE = (
    # local hour -> share of the peak hour's traffic (the lunch peak is 1.0)
    (7, 0.25),
    (8, 0.45),
    (9, 0.35),
    (10, 0.35),
    (11, 0.7),
    (12, 1.0),
    (13, 0.85),
    (14, 0.45),
    (15, 0.3),
    (16, 0.3),
    (17, 0.45),
    (18, 0.55),
    (19, 0.4),
    (20, 0.2),
)
"""An office-and-gym day: breakfast, a lunch peak, an after-work bump. Hours not listed are
closed (no customers; fridges still report)."""


@dataclass(frozen=True)
class Profile:
    """What one customer session does, and what fridges, kitchen and operators do meanwhile."""

    menu_reads_per_order: int = 10
    """Reads a customer makes for each order attempt: the mix below, in this order."""
    read_mix: dict[str, int] = field(
        default_factory=lambda: {"city_venues": 1, "city_menu": 2, "venue_menu": 6, "stock": 1}
    )
    retry_share: float = 0.05
    """Orders sent twice with the same Idempotency-Key (a phone that lost the answer)."""
    cancel_share: float = 0.08
    no_show_share: float = 0.07
    """The rest pick their meals up."""
    two_meals_share: float = 0.2
    two_units_share: float = 0.15
    walk_minutes: tuple[float, float] = (2.0, 20.0)
    """Simulated minutes between the order and the customer at the fridge."""
    status_polls: int = 6
    """GET /orders/{id} a customer makes at most, waiting for ready_for_pickup."""
    counts_per_order: float = 2.8
    """Count reports per app order, at each fridge over the day: a fridge reports every 5
    minutes (12 an hour, 168 over 14 open hours) and sells about 60 app orders a day. A run
    keeps this ratio whatever its rate, so counts stay the share of traffic they are."""
    walk_ups_per_order: float = 0.3
    """Units bought at the fridge without the app, for each app order there: a count finds
    them missing, fewer than the app's sales explain."""
    reserved_walk_up_share: float = 0.02
    """Of those, the ones where the walk-up buyer took a meal an order holds."""
    late_report_share: float = 0.05
    duplicate_report_share: float = 0.05
    reprice_every_minutes: float = 120.0
    refill_hour: int = 14
    """The kitchen's second delivery of the day (the first is before opening)."""
    stock_per_expected_order: float = 1.5
    """Units delivered per order the day's shape expects at a fridge (some sell out)."""
    day_opens: int = 7
    day_closes: int = 21
    flat: bool = False
    """Every open hour at the peak rate (for measuring what a deployment sustains)."""

    @property
    def requests_per_order(self) -> float:
        """Customer requests per session, on average: reads, the order, its repeat, polls,
        and the pickup or cancel."""
        return self.menu_reads_per_order + 1 + self.retry_share + 2 + 1

    def shape(self, hour: float) -> float:
        """The share of the peak rate at simulated local `hour` (fractional)."""
        for start, share in LUNCH_SHAPE:
            if start <= hour < start + 1:
                return 1.0 if self.flat else share
        return 0.0

    def mean_shape(self) -> float:
        shares = [1.0 if self.flat else share for _, share in LUNCH_SHAPE]
        return sum(shares) / (self.day_closes - self.day_opens)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": dict(LUNCH_SHAPE)}


@dataclass(frozen=True)
class Day:
    """The simulated day squeezed into `seconds` of real time."""

    profile: Profile
    seconds: float

    @property
    def hours(self) -> int:
        return self.profile.day_closes - self.profile.day_opens

    def hour_at(self, elapsed: float) -> float:
        return self.profile.day_opens + self.hours * min(max(elapsed / self.seconds, 0.0), 1.0)

    def real_seconds(self, minutes: float) -> float:
        """Real seconds that `minutes` of the simulated day take."""
        return self.seconds * minutes / (60.0 * self.hours)

    def clock(self, elapsed: float) -> str:
        hour = self.hour_at(elapsed)
        return f"{int(hour):02d}:{int((hour % 1) * 60):02d}"

    def sessions_per_second(self, elapsed: float, peak_rate: float) -> float:
        return (
            peak_rate * self.profile.shape(self.hour_at(elapsed)) / self.profile.requests_per_order
        )

    def arrivals(self, peak_rate: float, rng: Any) -> list[float]:
        """Customer arrival times (real seconds from the start): a Poisson process whose
        intensity follows the day's shape (thinning of the peak-rate process)."""
        top = peak_rate / self.profile.requests_per_order
        times: list[float] = []
        t = 0.0
        if top <= 0:
            return times
        while True:
            t += -math.log(1.0 - rng.random()) / top
            if t >= self.seconds:
                return times
            if rng.random() * top < self.sessions_per_second(t, peak_rate):
                times.append(t)

    def expected_sessions(self, peak_rate: float) -> float:
        return (
            self.seconds * peak_rate * self.profile.mean_shape() / self.profile.requests_per_order
        )
