"""The whole run from a partial one: what a run stopped early would have used to the end.

Two methods, both linear in the work done (the rest of the run is taken to look like what was
measured):

- **epochs** (the log's planned epochs ``N``, ``n`` of them finished): the measured run plus
  ``R = N - n`` more epochs at the mean of the finished ones::

      energy = measured + R x mean(epoch energy)          (the same for CO2eq and duration)

  Work outside epochs (set-up before the first) is counted once, as measured.
- **progress** (a fraction ``p`` of the work done, as given): ``energy = measured / p``, and the
  same for CO2eq and duration. This is the arithmetic of Dodge et al. (2022, section 4): their
  6-billion-parameter transformer trained for 8 of the 60 days a full run takes (about 13 %),
  using 13.8 MWh, so ``(60 / 8) x 13.8 = 103.5`` MWh for the whole run. Note that ``p = 8 / 60 =
  0.1333``; ``13.8 / 0.13`` would give 106.2 MWh.

The interval (95 %): with two or more finished epochs, a prediction interval for the sum of the
``R`` epochs still to run, taking epochs as independent draws like the finished ones (their
mean ``m``, standard deviation ``s``, Student's t with ``n - 1`` degrees of freedom)::

    R x m  +/-  t x s x sqrt(R^2 / n + R)

(``R = n (1 / p - 1)`` with ``--progress``). With fewer than two epochs there is no spread to
measure, and no interval is given (said so). The interval covers epoch-to-epoch variation only:
not a change of power later in the run (evaluation, a larger batch), nor the intensity of times
not yet seen (the rest is priced at the mean intensity of what was measured).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from attrs import frozen

from ..errors import ConfigError
from ..records import Report, _Record

__all__ = ["Extrapolation", "extrapolate", "extrapolate_report", "parse_progress", "t_95"]

#: Two-sided 95 % quantiles of Student's t for 1 to 30 degrees of freedom.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def t_95(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t (the normal 1.96 beyond 30 degrees of freedom)."""
    if dof < 1:
        raise ValueError("at least one degree of freedom")
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def parse_progress(value: Any) -> float:
    """A fraction of the work done, in (0, 1]: ``0.13``, ``"13%"`` or ``"8/60"``.

    :raises ConfigError: naming the value and what is accepted.
    """
    what = f"--progress must be the fraction of the run done, in (0, 1]: 0.13, 13% or 8/60; got {value!r}"
    if isinstance(value, bool):
        raise ConfigError(what)
    try:
        if isinstance(value, str):
            text = value.strip()
            p = float(text[:-1]) / 100 if text.endswith("%") else float(Fraction(text))
        else:
            p = float(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ConfigError(what) from None
    if not math.isfinite(p) or not 0 < p <= 1:
        raise ConfigError(what)
    return p


@frozen(kw_only=True)
class Extrapolation(_Record):
    """A whole-run estimate from a partial run, next to what was measured.

    :param method: ``"epochs"`` or ``"progress"``.
    :param progress: The fraction of the work done.
    :param basis: How the fraction was found, in words.
    :param measured_*: What was measured.
    :param duration_s, energy_kwh, co2eq_g: The whole-run estimates (energy after PUE).
    :param energy_low_kwh, energy_high_kwh, co2eq_low_g, co2eq_high_g: The 95 % interval, or
        None when there is none.
    :param interval: How the interval was obtained, or why there is none.
    """

    method: str
    progress: float
    basis: str
    measured_duration_s: float
    measured_energy_kwh: float
    measured_co2eq_g: float
    duration_s: float
    energy_kwh: float
    co2eq_g: float
    energy_low_kwh: float | None = None
    energy_high_kwh: float | None = None
    co2eq_low_g: float | None = None
    co2eq_high_g: float | None = None
    interval: str = ""
    file: str | None = None

    @property
    def description(self) -> str:
        """One line on the method."""
        if self.method == "epochs":
            return f"measured + the remaining epochs at the mean of the finished ones ({self.basis})"
        return f"measured / progress ({self.basis}): linear in the work done"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, with :attr:`description`."""
        data = super().to_dict()
        data["description"] = self.description
        return data


def _half_width(values: Sequence[float], remaining: float) -> float | None:
    n = len(values)
    if n < 2:
        return 0.0 if n == 1 and remaining <= 0 else None
    if remaining <= 0:
        return 0.0
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t_95(n - 1) * s * math.sqrt(remaining * remaining / n + remaining)


def extrapolate(
    *,
    energy_kwh: float,
    progress: float,
    co2eq_g: float = 0.0,
    duration_s: float = 0.0,
    epoch_energies_kwh: Sequence[float] = (),
    epoch_co2eq_g: Sequence[float] = (),
    basis: str = "given",
) -> Extrapolation:
    """Scale measured totals by the work done (the ``progress`` method), with an interval when
    two or more epochs' figures are given.

    ``extrapolate(energy_kwh=13.8, progress=8 / 60)`` gives Dodge et al.'s 103.5 (MWh).
    """
    p = parse_progress(progress)
    for name, v in (("energy_kwh", energy_kwh), ("co2eq_g", co2eq_g), ("duration_s", duration_s)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
    n = len(epoch_energies_kwh)
    remaining = n * (1 / p - 1)
    he = _half_width(epoch_energies_kwh, remaining)
    hc = _half_width(epoch_co2eq_g, remaining) if len(epoch_co2eq_g) == n else None
    return _result("progress", p, basis, energy_kwh, co2eq_g, duration_s,
                   energy_kwh / p, co2eq_g / p, duration_s / p, he, hc, n, remaining)


def _result(
    method: str, p: float, basis: str, e: float, c: float, d: float, e_all: float, c_all: float, d_all: float,
    he: float | None, hc: float | None, n: int, remaining: float,
) -> Extrapolation:
    if he is None:
        why = (
            "no interval: fewer than two epochs measured, so there is no spread to measure"
            if n < 2 else "no interval"
        )
        interval = why
    else:
        interval = (
            f"95 % prediction interval for the {remaining:.4g} epochs still to run, from the spread of the {n} "
            f"finished (Student's t, {n - 1} degrees of freedom); epoch-to-epoch variation only"
        )
    return Extrapolation(
        method=method, progress=p, basis=basis,
        measured_duration_s=d, measured_energy_kwh=e, measured_co2eq_g=c,
        duration_s=d_all, energy_kwh=e_all, co2eq_g=c_all,
        energy_low_kwh=None if he is None else max(e, e_all - he),
        energy_high_kwh=None if he is None else e_all + he,
        co2eq_low_g=None if hc is None else max(c, c_all - hc),
        co2eq_high_g=None if hc is None else c_all + hc,
        interval=interval,
    )


def extrapolate_report(report: Report, progress: float | str | None = None, file: str | None = None) -> Extrapolation:
    """The whole run of ``report``: by ``progress`` when given, else by its planned epochs.

    :raises ConfigError: no progress given and the log has no planned epochs or no finished
        epoch, or more epochs finished than planned.
    """
    import attrs

    epochs = list(report.epochs)
    energies = [e.energy_kwh for e in epochs]
    grams = [e.co2eq_g for e in epochs]
    if progress is not None:
        p = parse_progress(progress)
        out = extrapolate(
            energy_kwh=report.energy_kwh, co2eq_g=report.co2eq_g, duration_s=report.duration_s, progress=p,
            epoch_energies_kwh=energies, epoch_co2eq_g=grams, basis=f"{100 * p:.4g}% done, as given",
        )
        return attrs.evolve(out, file=file)
    planned = report.epochs_planned
    n = len(epochs)
    if not planned:
        raise ConfigError(
            "the run log has no planned epochs (Tracker(epochs=N)): give the fraction done with --progress, e.g. 0.13"
        )
    if n == 0:
        raise ConfigError("no epoch of the run finished: give the fraction done with --progress")
    if n > planned:
        raise ConfigError(f"{n} epochs finished but {planned} were planned: give --progress instead")
    remaining = float(planned - n)
    mean_e, mean_c = sum(energies) / n, sum(grams) / n
    mean_d = sum(e.duration_s for e in epochs) / n
    out = _result(
        "epochs", n / planned, f"{n} of {planned} planned epochs finished", report.energy_kwh, report.co2eq_g,
        report.duration_s, report.energy_kwh + remaining * mean_e, report.co2eq_g + remaining * mean_c,
        report.duration_s + remaining * mean_d, _half_width(energies, remaining), _half_width(grams, remaining),
        n, remaining,
    )
    return attrs.evolve(out, file=file)
