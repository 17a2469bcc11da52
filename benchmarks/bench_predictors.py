"""Prediction error of the adaptive predictor against the paper's linear one, after 1, 2 and 3 epochs.

``run()`` returns rows ``{"figure", "value", "unit", "note"}``; ``python benchmarks/bench_predictors.py``
prints them (with the errors after 5 and 10 epochs too, to show what the predictions learn).
The error is that of the predicted total IT energy of the run against the actual
total, in percent of the actual: ``|predicted / actual - 1|``, the mean over the traces of a kind.

Traces:

- synthetic (``carbonkit.testing.synthetic_trace``, 50 epochs of 60 s at 300 W): ``warmup`` (the
  first epoch at 60 % of the steady duration and power), ``steady``, ``noisy`` (duration and power
  each with a 5 % epoch-to-epoch spread; 200 seeds), ``drifting`` (each epoch 2 % longer than the
  one before), ``step`` (epochs twice as long from the fourth on);
- real: ``benchmarks/data/torch_traces.json``, recorded by ``record_torch_traces.py`` from short
  PyTorch CPU training runs tracked by carbonkit on the benchmark machine (the machine's own load,
  other processes included, is part of them).

It also gives the coverage of the adaptive predictor's 90 % interval on the noisy traces, and the
cost of reading ``tracker.over_budget`` next to that of an ``epoch_start()`` + ``epoch_end()``
pair (medians of 20,000 timed calls).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carbonkit.default_plugins.adaptive_predictor import AdaptivePredictor
from carbonkit.default_plugins.linear_predictor import LinearPredictor
from carbonkit.records import EpochRecord
from carbonkit.testing import epoch_trace, synthetic_trace

HERE = Path(__file__).resolve().parent
REAL = HERE / "data" / "torch_traces.json"
AFTER = (1, 2, 3)
#: Later points, to show what the predictions learn (a trend needs four epochs to be fitted).
LATER = (5, 10)
EPOCHS = 50
NOISY_SEEDS = 200


def error(predictor: Any, trace: Sequence[EpochRecord], k: int) -> float:
    actual = sum(e.it_energy_kwh for e in trace)
    predicted = predictor.predict(epochs=len(trace), completed=list(trace[:k])).it_energy_kwh
    return abs(predicted / actual - 1.0) * 100


def traces() -> list[tuple[str, list[list[EpochRecord]]]]:
    out: list[tuple[str, list[list[EpochRecord]]]] = [
        ("synthetic warm-up (first epoch at 60 %)", [synthetic_trace("warmup", EPOCHS)]),
        ("synthetic steady", [synthetic_trace("steady", EPOCHS)]),
        (f"synthetic noisy (5 % spread, {NOISY_SEEDS} seeds)",
         [synthetic_trace("noisy", EPOCHS, seed=s) for s in range(NOISY_SEEDS)]),
        ("synthetic drifting (+2 % per epoch)", [synthetic_trace("drifting", EPOCHS)]),
        ("synthetic step (2x from epoch 4)", [synthetic_trace("step", EPOCHS)]),
    ]
    if REAL.exists():
        data = json.loads(REAL.read_text())
        for run in data["runs"]:
            epochs = run["epochs"]
            trace = epoch_trace([e["duration_s"] for e in epochs],
                                [e["it_energy_kwh"] * 3.6e6 / e["duration_s"] for e in epochs])
            methods = ", ".join(f"{k} {v}" for k, v in run["methods"].items())
            out.append((f"real PyTorch CPU run '{run['name']}', {len(epochs)} epochs ({methods})", [trace]))
    return out


def run(repeats: int = 1) -> list[dict[str, Any]]:
    """Rows for ``benchmarks/run.py`` (``repeats`` is accepted for symmetry; the figures are exact)."""
    adaptive, linear = AdaptivePredictor(), LinearPredictor()
    rows = []
    for name, group in traces():
        points = [k for k in (*AFTER, *LATER) if k < len(group[0])]
        a = [statistics.mean(error(adaptive, t, k) for t in group) for k in points]
        lin = [statistics.mean(error(linear, t, k) for t in group) for k in points]
        after = "/".join(str(k) for k in points)
        note = (f"after {after} epochs: adaptive " + " / ".join(f"{v:.1f}" for v in a)
                + " %, linear " + " / ".join(f"{v:.1f}" for v in lin) + " %")
        rows.append({"figure": f"energy prediction error after 3 epochs, {name}", "value": round(a[2], 2), "unit": "%",
                     "note": note})
    hits = total = 0
    for seed in range(NOISY_SEEDS):
        trace = synthetic_trace("noisy", EPOCHS, seed=seed)
        actual = sum(e.it_energy_kwh for e in trace)
        for k in AFTER:
            p = adaptive.predict(epochs=EPOCHS, completed=trace[:k])
            assert p.it_energy_low_kwh is not None and p.it_energy_high_kwh is not None
            hits += p.it_energy_low_kwh <= actual <= p.it_energy_high_kwh
            total += 1
    rows.append({"figure": "adaptive 90 % interval: share of noisy runs whose actual energy it contains (1-3 epochs)",
                 "value": hits / total * 100, "unit": "%", "note": f"{total} predictions"})
    rows.append(over_budget_read())
    return rows


def over_budget_read(n: int = 20_000) -> dict[str, Any]:
    """The cost of reading ``tracker.over_budget`` in a training loop, next to an epoch_start() +
    epoch_end() pair: the median of ``n`` timed calls each, the sampler running."""
    import time

    import carbonkit

    tracker = carbonkit.Tracker(epochs=n + 1, budget_g=1e9, quiet=True, location="WORLD", provider=[], reporters=[],
                                sources=[carbonkit.SimulatedSource(watts=100.0)])
    clock = time.perf_counter
    reads, pairs = [], []
    for _ in range(n):
        a = clock()
        tracker.over_budget  # noqa: B018 - the read is what is measured
        b = clock()
        tracker.epoch_start()
        tracker.epoch_end()
        reads.append(b - a)
        pairs.append(clock() - b)
    tracker.stop()
    read, pair = statistics.median(reads) * 1e9, statistics.median(pairs) * 1e9
    return {"figure": "reading tracker.over_budget (a plain attribute, set by the sampler)", "value": read,
            "unit": "ns", "note": f"an epoch_start() + epoch_end() pair takes {pair:.0f} ns in the same loop"}


def main() -> None:
    for r in run():
        print(f"{r['figure']}: {r['value']:.2f} {r['unit']}  ({r['note']})")


if __name__ == "__main__":
    main()
