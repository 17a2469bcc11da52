"""The default predictor: learns from every epoch, leaves warm-up epochs out, follows a trend.

The Carbontracker paper predicts once, after the first epoch, as planned epochs x that epoch.
First epochs are often shorter and lighter than the rest (data loading warms caches, kernels are
compiled, learning-rate warm-up), and a machine that gets busier makes later epochs longer. This
predictor, made again after every epoch, predicts the whole run as

    what the completed epochs took + what the remaining epochs will take,

estimating the remaining epochs from the completed ones in three steps, for duration and IT
energy separately (``docs/predictions.md`` has the details and the figures):

1. **Warm-up.** A first epoch that differs from the median of the epochs after it by more than
   20 % (or three times their own spread, if larger) is left out of the estimate, then the next,
   up to three epochs and never more than half of those completed.
2. **Level or trend.** With four or more epochs left, a straight line is fitted to them
   (least squares over the last ten); when its slope is clearly not noise (t > 6) the remaining
   epochs follow the line. Otherwise they take a weighted mean in which each epoch counts half
   as much as one three epochs newer (over the last 60), so a machine that got busier is
   followed within a few epochs while noise is still averaged out.
3. **Interval.** A 90 % prediction interval (Student's t) for the remaining epochs' sum, from
   the spread of the epochs used: the remaining epochs vary like those, and their mean is only
   known as well as those epochs tell it. With a single epoch used there is no spread to
   measure: a 25 % epoch-to-epoch spread is assumed, and the interval says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from attrs import frozen

from ..hookspecs import hookimpl
from ..records import EpochRecord, Prediction

__all__ = [
    "ASSUMED_CV",
    "HALF_LIFE_EPOCHS",
    "LEVEL_WINDOW",
    "MAX_WARMUP",
    "TREND_MIN_EPOCHS",
    "TREND_T",
    "WARMUP_TOLERANCE",
    "AdaptivePredictor",
    "Estimate",
    "estimate_remaining",
    "t_quantile_95",
    "warmup_epochs",
]

#: A first epoch further than this (relative) from the median of the later ones is warm-up.
WARMUP_TOLERANCE = 0.20
#: At most this many leading epochs are left out as warm-up.
MAX_WARMUP = 3
#: An epoch counts half as much as one this many epochs newer in the level estimate.
HALF_LIFE_EPOCHS = 3.0
#: A fitted trend is followed when its slope is this many standard errors from zero.
TREND_T = 6.0
#: The trend is fitted to at most this many of the latest epochs.
TREND_WINDOW = 10
#: The level, its spread and the interval use at most this many of the latest epochs (an epoch
#: 60 back weighs a millionth of the latest): the cost of a prediction does not grow with the run.
LEVEL_WINDOW = 60
#: A trend is fitted only to at least this many epochs.
TREND_MIN_EPOCHS = 4
#: Epoch-to-epoch spread (coefficient of variation) assumed when one epoch gives none.
ASSUMED_CV = 0.25
#: Confidence of the interval.
CONFIDENCE = 0.90

# Student's t, 0.95 quantile (two-sided 90 %), by degrees of freedom; 1.645 beyond 120.
_T95 = {
    1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833,
    10: 1.812, 12: 1.782, 15: 1.753, 20: 1.725, 25: 1.708, 30: 1.697, 40: 1.684, 60: 1.671,
    120: 1.658,
}


def t_quantile_95(df: int) -> float:
    """The 0.95 quantile of Student's t with ``df`` degrees of freedom (the table's next lower df)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df > 120:
        return 1.645
    return _T95[max(k for k in _T95 if k <= df)]


@frozen
class Estimate:
    """The remaining epochs' sum of one quantity: a point and a 90 % interval, and how."""

    total: float
    low: float
    high: float
    method: str


def warmup_epochs(durations: Sequence[float], energies: Sequence[float]) -> int:
    """Return how many leading epochs look like warm-up (see the module docstring)."""
    n = len(durations)
    w = 0
    while w < MAX_WARMUP and w + 1 <= n // 2:
        later_d = durations[w + 1 : w + 6]
        later_e = energies[w + 1 : w + 6]
        if _deviates(durations[w], later_d) or _deviates(energies[w], later_e):
            w += 1
        else:
            break
    return w


def _deviates(value: float, later: Sequence[float]) -> bool:
    med = _median(later)
    if med <= 0:
        return False
    tolerance = WARMUP_TOLERANCE
    if len(later) >= 3:
        mad = _median([abs(x - med) for x in later])
        tolerance = max(tolerance, 3 * 1.4826 * mad / med)
    return abs(value / med - 1.0) > tolerance


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def estimate_remaining(
    values: Sequence[float],
    first_index: int,
    remaining: int,
    *,
    half_life: float | None = HALF_LIFE_EPOCHS,
    trend: bool = True,
) -> Estimate:
    """Estimate the sum of the next ``remaining`` values of a series and a 90 % interval.

    :param values: The epochs used (warm-up already left out), oldest first.
    :param first_index: Epoch number of ``values[0]`` (so a trend continues at the right place).
    :param remaining: How many epochs are left.
    :param half_life: Epochs over which an epoch's weight halves; None weighs all equally.
    :param trend: Whether a clear trend is followed.
    """
    k = len(values)
    if remaining <= 0:
        return Estimate(0.0, 0.0, 0.0, "no epochs left")
    if k == 0:
        raise ValueError("no epochs to estimate from")
    end = first_index + k  # epoch number of the first remaining epoch
    future = range(end, end + remaining)
    if trend and k >= TREND_MIN_EPOCHS:
        fitted = _trend(values[-TREND_WINDOW:], first_index + max(k - TREND_WINDOW, 0), future)
        if fitted is not None:
            return fitted
    if half_life is not None and k > LEVEL_WINDOW:
        values = values[-LEVEL_WINDOW:]
        k = LEVEL_WINDOW
    weights = [1.0 if half_life is None else 0.5 ** ((k - 1 - i) / half_life) for i in range(k)]
    sw = sum(weights)
    level = sum(w * v for w, v in zip(weights, values)) / sw
    total = level * remaining
    if k == 1:
        sd = ASSUMED_CV * abs(values[0])
        t = 1.645
        k_eff = 1.0
        how = (f"{CONFIDENCE:.0%} interval from an assumed {ASSUMED_CV:.0%} epoch-to-epoch spread "
               "(one epoch: no spread to measure)")
    else:
        mean = sum(values) / k
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
        t = t_quantile_95(k - 1)
        k_eff = sw * sw / sum(w * w for w in weights)
        how = f"{CONFIDENCE:.0%} t-interval from the spread of {k} epochs"  # k >= 2
    half = t * sd * math.sqrt(remaining + remaining * remaining / k_eff)
    kind = "mean" if half_life is None else "recent-weighted mean"
    return Estimate(total, max(total - half, 0.0), total + half, f"{kind} of {k} epoch(s); {how}")


def _trend(values: Sequence[float], first_index: int, future: range) -> Estimate | None:
    """A straight line through ``values`` extended over ``future``; None when its slope is noise."""
    k = len(values)
    xs = [first_index + i for i in range(k)]
    mx = sum(xs) / k
    my = sum(values) / k
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, values)) / sxx
    intercept = my - slope * mx
    resid = [y - (intercept + slope * x) for x, y in zip(xs, values)]
    s = math.sqrt(sum(r * r for r in resid) / (k - 2))
    se = s / math.sqrt(sxx)
    scale = max(abs(my), 1e-300)
    if abs(slope) <= 1e-9 * scale / max(k, 1):  # flat
        return None
    if se > 0 and abs(slope) / se <= TREND_T:
        return None
    floor = 0.1 * max(intercept + slope * xs[-1], 0.0)  # a falling line never predicts epochs of nothing
    total = sum(max(intercept + slope * j, floor) for j in future)
    r = len(future)
    sum_dev = sum(j - mx for j in future)
    half = t_quantile_95(k - 2) * s * math.sqrt(r + r * r / k + sum_dev * sum_dev / sxx)
    how = f"{CONFIDENCE:.0%} t-interval from the residuals of the fit"
    return Estimate(total, max(total - half, 0.0), total + half, f"trend fitted to {k} epochs; {how}")


@frozen
class AdaptivePredictor:
    """Predict the run from all completed epochs: warm-up left out, recent epochs weighted, trends followed."""

    name: str = "adaptive"

    def predict(self, *, epochs: int, completed: Sequence[EpochRecord]) -> Prediction:
        if not completed:
            raise ValueError("the adaptive predictor needs at least one completed epoch")
        n = len(completed)
        durations = [e.duration_s for e in completed]
        energies = [e.it_energy_kwh for e in completed]
        remaining = max(epochs - n, 0)
        w = warmup_epochs(durations, energies)
        d = estimate_remaining(durations[w:], w, remaining)
        e = estimate_remaining(energies[w:], w, remaining)
        done_d = sum(durations)
        done_e = sum(energies)
        warm = f"first {w} epoch(s) left out as warm-up; " if w else ""
        how = e.method if e.method == d.method else f"energy: {e.method}; duration: {d.method}"
        return Prediction(
            epochs=max(epochs, n),
            based_on=n,
            duration_s=done_d + d.total,
            it_energy_kwh=done_e + e.total,
            predictor=self.name,
            duration_low_s=done_d + d.low,
            duration_high_s=done_d + d.high,
            it_energy_low_kwh=done_e + e.low,
            it_energy_high_kwh=done_e + e.high,
            interval=f"{warm}{how}" if remaining else "no epochs left: actual",
        )


@hookimpl(trylast=True)
def register_predictors() -> list[AdaptivePredictor]:
    return [AdaptivePredictor()]
