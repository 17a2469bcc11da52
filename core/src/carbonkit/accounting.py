"""Energy and carbon accounting: the public names of the engine behind every carbonkit figure.

A live run, :func:`carbonkit.load_run` and the reports (``carbonkit report --html`` redraws a
run's cumulative energy and CO2eq from its log) all account the same way, with the objects
named here:

- :class:`Accountant` takes the raw readings tick by tick (cumulative joules of ``kind:
  energy`` sources, watts of ``kind: power`` sources, integrated with the trapezoid rule) and
  keeps, in memory bounded by the run's minutes and epochs, the energy per device, per
  component and per accounting interval (``bucket_s`` seconds of wall-clock time, aligned to
  UTC). Build it with ``Accountant.for_sources(header["sources"], header["start_unix"],
  header["bucket_s"])`` from a run log's header; ``add(t, readings, shares)`` adds one tick;
  ``buckets()`` returns ``(interval index, joules)`` for every interval the run touched.
- :class:`IntensityTimeline` holds a run's intensity samples; ``at(unix_time)`` returns the
  sample in force then and its provider: a live value whose period covers it, else a forecast
  covering it, else the latest live value of the last hour, else a yearly average.
- :func:`carbon` prices ``(interval index, joules)`` pairs: each interval's energy times the PUE
  times the intensity in force in its middle. It returns the grams CO2eq, the kWh priced (after
  PUE) and, per intensity source used, the kWh and grams it priced.

Units: joules in, kWh out (:data:`J_PER_KWH` joules per kWh); times are seconds since the run
started (``t``) or unix seconds (``start_unix``, :meth:`IntensityTimeline.at`).

This module is a stable seam over the core's private ``carbonkit._accounting``: what is named
here keeps its meaning; anything else in the private module may change.
"""

from __future__ import annotations

from ._accounting import BUCKET_S, J_PER_KWH, STALE_LIVE_S, Accountant, IntensityTimeline, carbon, utc_from_unix

__all__ = [
    "BUCKET_S",
    "J_PER_KWH",
    "STALE_LIVE_S",
    "Accountant",
    "IntensityTimeline",
    "carbon",
    "utc_from_unix",
]
