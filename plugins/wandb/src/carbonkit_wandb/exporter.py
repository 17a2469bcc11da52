"""carbonkit plugin ``wandb``: a run's energy and CO2eq in the active Weights & Biases run.

Used when the program has a W&B run (``wandb.init()`` before ``carbonkit.Tracker()``); silent
otherwise, and W&B is never imported by carbonkit when the program did not import it.
``CARBONKIT_WANDB=0`` turns it off. Offline mode (``WANDB_MODE=offline``) works the same: what
is logged is synced later with the rest of the run.

**Steps.** carbonkit never moves the user's step: every ``run.log()`` it makes is
``commit=False``, so its values join the row the program commits next, and the carbonkit
metrics are plotted against their own axis, ``carbonkit/epoch`` (``run.define_metric``), not
against W&B's global step. A program that logs with explicit ``step=`` values keeps them.
If the program commits no row between two epochs, the later epoch's values replace the
earlier's in that row (the totals in the summary are still complete).

What it logs:

- after every epoch: ``carbonkit/epoch`` (the index), ``carbonkit/epoch_energy_kwh``,
  ``carbonkit/epoch_it_energy_kwh``, ``carbonkit/epoch_co2eq_g``, ``carbonkit/epoch_duration_s``;
- in the summary, at the end: ``carbonkit/energy_kwh``, ``carbonkit/it_energy_kwh``,
  ``carbonkit/co2eq_g``, ``carbonkit/duration_s``, ``carbonkit/intensity_g_per_kwh`` (and the
  prediction, ``carbonkit/predicted_co2eq_g``..., once made);
- in the run's config, under ``carbonkit``: the host, the job and the report's provenance
  (every value redacted);
- the report as an artifact of type ``carbonkit-report`` holding ``report.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from carbonkit import ReporterBase, Unavailable
from carbonkit._redact import redact_mapping
from carbonkit.exporting import BoundedSender, identify, provenance

from . import ENABLE_ENV

if TYPE_CHECKING:
    from carbonkit import EpochRecord, Prediction, Report, RunStart

__all__ = ["ENABLE_ENV", "WandbExporter", "offer"]

PLUGIN = "wandb"
#: Seconds ``close()`` waits for the report to reach W&B.
CLOSE_TIMEOUT_S = 8.0
STEP_METRIC = "carbonkit/epoch"


class WandbExporter(ReporterBase):
    """Logs one carbonkit run to the W&B run ``run``.

    :param run: A ``wandb`` run (``wandb.run``, or what ``wandb.init()`` returned).
    :param environ: The environment the run's identity is read from (tests pass their own).
    """

    name = PLUGIN

    def __init__(self, run: Any, environ: Mapping[str, str] | None = None) -> None:
        self.run = run
        self.environ = environ
        self.warn: Callable[[str], None] | None = None
        self._sender: BoundedSender | None = None
        self._config: dict[str, str] = {}

    def on_start(self, run: RunStart) -> None:
        self._sender = BoundedSender("Weights & Biases", self.warn)
        ident = identify(run, self.environ)
        self._config = {"host": ident.host, "job": ident.job, "zone": ident.zone}
        wb, config = self.run, dict(self._config)

        def start() -> None:
            wb.define_metric(STEP_METRIC, hidden=True)
            wb.define_metric("carbonkit/epoch_*", step_metric=STEP_METRIC)
            wb.config.update({"carbonkit": config}, allow_val_change=True)

        self._sender.submit("the metric definitions", start)

    def on_epoch(self, epoch: EpochRecord) -> None:
        self._log(f"the metrics of epoch {epoch.index}", {
            STEP_METRIC: epoch.index,
            "carbonkit/epoch_energy_kwh": epoch.energy_kwh,
            "carbonkit/epoch_it_energy_kwh": epoch.it_energy_kwh,
            "carbonkit/epoch_co2eq_g": epoch.co2eq_g,
            "carbonkit/epoch_duration_s": epoch.duration_s,
        })

    def on_prediction(self, prediction: Prediction) -> None:
        values: dict[str, float] = {"carbonkit/predicted_duration_s": prediction.duration_s}
        if prediction.energy_kwh is not None:
            values["carbonkit/predicted_energy_kwh"] = prediction.energy_kwh
        if prediction.co2eq_g is not None:
            values["carbonkit/predicted_co2eq_g"] = prediction.co2eq_g
        self._summary("the prediction", values)

    def on_report(self, report: Report) -> None:
        self._summary("the report's totals", {
            "carbonkit/energy_kwh": report.energy_kwh,
            "carbonkit/it_energy_kwh": report.it_energy_kwh,
            "carbonkit/co2eq_g": report.co2eq_g,
            "carbonkit/duration_s": report.duration_s,
            "carbonkit/intensity_g_per_kwh": report.intensity_g_per_kwh,
            "carbonkit/epochs": len(report.epochs),
        })
        config = {**self._config, **{k.removeprefix("carbonkit."): v for k, v in provenance(report).items()}}
        document = json.dumps(redact_mapping(report.to_dict()), indent=2)
        wb = self.run
        if self._sender is None:
            return

        def finish() -> None:
            import wandb

            wb.config.update({"carbonkit": config}, allow_val_change=True)
            artifact = wandb.Artifact(name=f"carbonkit-report-{wb.id}", type="carbonkit-report",
                                      description="carbonkit report (Report.to_dict())")
            with artifact.new_file("report.json", mode="w", encoding="utf-8") as f:
                f.write(document)
            wb.log_artifact(artifact)

        self._sender.submit("the report artifact", finish)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close(CLOSE_TIMEOUT_S)

    def _log(self, what: str, values: Mapping[str, float]) -> None:
        if self._sender is not None:
            wb, data = self.run, dict(values)
            self._sender.submit(what, lambda: wb.log(data, commit=False))

    def _summary(self, what: str, values: Mapping[str, float]) -> None:
        if self._sender is not None:
            wb, data = self.run, dict(values)
            self._sender.submit(what, lambda: wb.summary.update(data))


def offer() -> list[WandbExporter | Unavailable]:
    """Offer the exporter when the program has an active W&B run."""
    if (os.environ.get(ENABLE_ENV) or "").strip().lower() in ("0", "false", "no", "off"):
        return []
    wandb = sys.modules.get("wandb")
    if wandb is None:
        return []  # the program never imported wandb: it has no W&B run
    run = getattr(wandb, "run", None)
    if run is None:
        return [Unavailable(plugin=PLUGIN, reason="no active W&B run", hint="call wandb.init() before the tracker")]
    return [WandbExporter(run)]
