"""Carbon-aware scheduling: when to run a job, and when to pause it.

The two algorithms of Dodge et al. (2022), "Measuring the Carbon Intensity of AI in Cloud
Instances", section 6, planned on an intensity forecast (or a historical series), plus their
evaluation over history (the paper's tables 4 to 13) and a pause policy for training loops.

- :func:`flexible_start`: start the job at the time, within the next ``window``, that minimises
  its emissions; once started it runs to completion.
- :func:`pause_and_resume`: run the job during the cleanest parts of ``[now, now + window +
  duration)``, pausing in between; with ``min_run``, every run lasts at least that long.
- :func:`evaluate`: the mean saving of both over many start times of a history, and the pauses
  per hour of Pause and Resume, as an :class:`EvaluationTable`.
- :class:`PausePolicy`: inside a training loop, whether to sleep now and for how long.
- :func:`plan_from_providers`, :func:`wait_for_best_start`: plan on the forecast of the intensity
  providers, and sleep until the planned start (cancellable with Ctrl-C).

Conventions (see ``docs/scheduling.md``):

- An intensity series is a step function: each value holds from its time until the next time;
  the last value holds until the series' ``end`` (its sample's ``period_s``, else the median
  spacing). Times are timezone-aware, or numbers of seconds since the Unix epoch (UTC).
- A job has a duration (seconds of running time) and an energy: ``energy_kwh`` in total (default
  1 kWh, spread evenly over the running time), or a ``profile`` of kWh per equal interval of its
  running time. Emissions are the integral of power x intensity over the intervals it runs in,
  in grams CO2eq; ``g_per_kwh`` is emissions / energy. The saving is relative to running from
  ``now`` straight through, so it does not depend on the energy.
- A forecast shorter than ``window + duration`` is planned within what is known: the plan says
  so in ``truncated`` and ``warnings``. If it does not even cover the job, the plan is "start now"
  and the emissions beyond the forecast hold its last value (also said in ``warnings``).

Everything here is pure computation on numpy arrays except :func:`plan_from_providers` (which
asks the intensity providers) and the waiting functions (which sleep, through an injectable
``sleep`` and ``clock``).

The package's modules, one concern each (everything public is imported from here):

- ``durations``: parsing and formatting durations and windows;
- ``series``: the intensity series as a step function of time;
- ``plans``: the plan record and what both planners share;
- ``flexible``: Flexible Start;
- ``pause_resume``: Pause and Resume;
- ``evaluation``: both algorithms evaluated over a history;
- ``forecast``: planning on the intensity providers' forecast;
- ``history``: the providers' past values and series files, for re-pricing measured runs;
- ``waiting``: sleeping until the planned start;
- ``policy``: pausing inside a training loop.
"""

from __future__ import annotations

# Names imported "as" themselves are re-exported though not in __all__, as they were importable
# from the single module this package replaces: type aliases, constants, and two private helpers
# the tests check directly.
from .durations import DurationLike as DurationLike
from .durations import format_duration, parse_duration, parse_window
from .evaluation import EvaluationCell, EvaluationTable, evaluate
from .evaluation import _pr_batch as _pr_batch
from .evaluation import _sliding_min as _sliding_min
from .flexible import flexible_start
from .forecast import (
    NoForecastError,
    ProviderForecast,
    forecast_from_providers,
    plan_from_providers,
    plan_start_within,
)
from .history import ProviderHistory, history_from_providers
from .pause_resume import pause_and_resume
from .plans import ALGORITHMS, SchedulePlan
from .plans import BACKFILL_S as BACKFILL_S
from .plans import DEFAULT_STEP_S as DEFAULT_STEP_S
from .policy import ForecastLike as ForecastLike
from .policy import PauseDecision, PauseOutcome, PausePolicy
from .series import IntensitySeries
from .series import SeriesLike as SeriesLike
from .series import as_series as as_series
from .waiting import WaitResult, wait_for_best_start

__all__ = [
    "ALGORITHMS",
    "EvaluationCell",
    "EvaluationTable",
    "IntensitySeries",
    "NoForecastError",
    "PauseDecision",
    "PauseOutcome",
    "PausePolicy",
    "ProviderHistory",
    "ProviderForecast",
    "SchedulePlan",
    "WaitResult",
    "evaluate",
    "flexible_start",
    "forecast_from_providers",
    "history_from_providers",
    "format_duration",
    "parse_duration",
    "parse_window",
    "pause_and_resume",
    "plan_from_providers",
    "plan_start_within",
    "wait_for_best_start",
]
