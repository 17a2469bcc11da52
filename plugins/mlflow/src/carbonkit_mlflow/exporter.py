"""carbonkit plugin ``mlflow``: a run's energy and CO2eq in the active MLflow run.

Used when the program has an MLflow run when the tracker starts (``mlflow.start_run()`` before
``carbonkit.Tracker()``); silent otherwise, and MLflow is never imported by carbonkit when the
program did not import it. What it logs, to the MLflow run:

- after every epoch, metrics with the epoch's index as ``step``: ``carbonkit.epoch.energy_kwh``,
  ``carbonkit.epoch.it_energy_kwh``, ``carbonkit.epoch.co2eq_g``, ``carbonkit.epoch.duration_s``;
- after the prediction (step = epochs it is based on): ``carbonkit.predicted.co2eq_g``,
  ``carbonkit.predicted.energy_kwh``, ``carbonkit.predicted.duration_s``;
- at the end (step = number of epochs): ``carbonkit.energy_kwh``, ``carbonkit.it_energy_kwh``,
  ``carbonkit.co2eq_g``, ``carbonkit.duration_s``, ``carbonkit.intensity_g_per_kwh``;
- tags: ``carbonkit.host``, ``carbonkit.job`` at the start; the report's provenance
  (``carbonkit.location``, ``carbonkit.methods``, ``carbonkit.intensity.used``...) at the end,
  every value redacted;
- the report as the artifact ``carbonkit/report.json`` (``Report.to_dict()``).

Which MLflow run: ``CARBONKIT_MLFLOW_RUN_ID`` when set, else the active run of the thread that
started it (MLflow's active run is per thread; the tracker's threads look it up), else
``MLFLOW_RUN_ID``. ``CARBONKIT_MLFLOW=0`` turns the plugin off. Calls go through
``MlflowClient`` with the run id, from a thread of the exporter's own: a tracking server that is
slow or down costs one warning, never the training loop.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from carbonkit import ReporterBase, Unavailable
from carbonkit._redact import redact_mapping
from carbonkit.exporting import BoundedSender, identify, provenance

from . import ENABLE_ENV, RUN_ID_ENV

if TYPE_CHECKING:
    from carbonkit import EpochRecord, Prediction, Report, RunStart

__all__ = ["ENABLE_ENV", "RUN_ID_ENV", "MlflowExporter", "active_run_id", "offer"]

PLUGIN = "mlflow"
#: Seconds ``close()`` waits for the report to reach MLflow.
CLOSE_TIMEOUT_S = 8.0
ARTIFACT = "carbonkit/report.json"


def active_run_id() -> tuple[str | None, str]:
    """Return the id of the program's active MLflow run, and how it was found (or why not).

    MLflow keeps the active run per thread and the tracker calls plugins from threads of its
    own, so every thread's active run is looked at: exactly one run (possibly active in several
    threads) is an answer; several different ones are not.
    """
    import mlflow

    run = mlflow.active_run()
    if run is not None:
        return run.info.run_id, "the active run"
    ids: set[str] = set()
    try:
        from mlflow.tracking import fluent

        for stack in fluent._active_run_stack.get_all_thread_values().values():
            if stack:
                ids.add(stack[-1].info.run_id)
    except Exception:  # noqa: BLE001 - another MLflow version: fall through to the variable
        ids = set()
    if len(ids) == 1:
        return ids.pop(), "the active run"
    if len(ids) > 1:
        return None, f"{len(ids)} MLflow runs are active in different threads; set {RUN_ID_ENV} to choose one"
    env_id = (os.environ.get("MLFLOW_RUN_ID") or "").strip()
    if env_id:
        return env_id, "MLFLOW_RUN_ID"
    return None, "no active MLflow run"


class MlflowExporter(ReporterBase):
    """Logs one carbonkit run to the MLflow run ``run_id`` on ``tracking_uri``.

    :param run_id: The MLflow run.
    :param tracking_uri: The tracking URI (None: MLflow's current one).
    :param environ: The environment the run's identity is read from (tests pass their own).
    """

    name = PLUGIN

    def __init__(self, run_id: str, tracking_uri: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.environ = environ
        self.warn: Callable[[str], None] | None = None
        self._client: Any = None
        self._sender: BoundedSender | None = None
        self._epochs = 0

    def on_start(self, run: RunStart) -> None:
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        self._sender = BoundedSender(f"MLflow (run {self.run_id})", self.warn)
        ident = identify(run, self.environ)
        self._tags("the start tags", {"carbonkit.host": ident.host, "carbonkit.job": ident.job,
                                      "carbonkit.zone": ident.zone})

    def on_epoch(self, epoch: EpochRecord) -> None:
        self._epochs = max(self._epochs, epoch.index + 1)
        self._metrics(f"the metrics of epoch {epoch.index}", epoch.index, {
            "carbonkit.epoch.energy_kwh": epoch.energy_kwh,
            "carbonkit.epoch.it_energy_kwh": epoch.it_energy_kwh,
            "carbonkit.epoch.co2eq_g": epoch.co2eq_g,
            "carbonkit.epoch.duration_s": epoch.duration_s,
        })

    def on_prediction(self, prediction: Prediction) -> None:
        values = {"carbonkit.predicted.duration_s": prediction.duration_s}
        if prediction.energy_kwh is not None:
            values["carbonkit.predicted.energy_kwh"] = prediction.energy_kwh
        if prediction.co2eq_g is not None:
            values["carbonkit.predicted.co2eq_g"] = prediction.co2eq_g
        self._metrics("the prediction", prediction.based_on, values)

    def on_report(self, report: Report) -> None:
        self._metrics("the report's totals", max(self._epochs, len(report.epochs)), {
            "carbonkit.energy_kwh": report.energy_kwh,
            "carbonkit.it_energy_kwh": report.it_energy_kwh,
            "carbonkit.co2eq_g": report.co2eq_g,
            "carbonkit.duration_s": report.duration_s,
            "carbonkit.intensity_g_per_kwh": report.intensity_g_per_kwh,
        })
        self._tags("the provenance tags", provenance(report))
        document = redact_mapping(report.to_dict())
        client, run_id = self._client, self.run_id
        if self._sender is not None:
            self._sender.submit(f"the artifact {ARTIFACT}", lambda: client.log_dict(run_id, document, ARTIFACT))

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close(CLOSE_TIMEOUT_S)

    def _metrics(self, what: str, step: int, values: Mapping[str, float]) -> None:
        if self._sender is None:
            return
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now_ms, step) for key, value in values.items()]
        client, run_id = self._client, self.run_id
        self._sender.submit(what, lambda: client.log_batch(run_id, metrics=metrics, synchronous=True))

    def _tags(self, what: str, tags: Mapping[str, str]) -> None:
        if self._sender is None:
            return
        from mlflow.entities import RunTag

        entities = [RunTag(key, value) for key, value in tags.items()]
        client, run_id = self._client, self.run_id
        self._sender.submit(what, lambda: client.log_batch(run_id, tags=entities, synchronous=True))


def offer() -> list[MlflowExporter | Unavailable]:
    """Offer the exporter when the program has an active MLflow run (or names one)."""
    env = os.environ
    switch = (env.get(ENABLE_ENV) or "").strip().lower()
    if switch in ("0", "false", "no", "off"):
        return []
    explicit = (env.get(RUN_ID_ENV) or "").strip()
    if "mlflow" not in sys.modules and not explicit:
        return []  # the program never imported MLflow: it has no MLflow run
    try:
        import mlflow
    except ImportError:
        if explicit:
            return [Unavailable(plugin=PLUGIN, reason=f"{RUN_ID_ENV} is set but MLflow is not installed",
                                hint="pip install carbonkit-mlflow", warn=True)]
        return []
    if explicit:
        run_id, how = explicit, RUN_ID_ENV
    else:
        found, how = active_run_id()
        if found is None:
            return [Unavailable(plugin=PLUGIN, reason=how, hint="start the MLflow run before the tracker",
                                warn=how.startswith(tuple("0123456789")))]
        run_id = found
    return [MlflowExporter(run_id, tracking_uri=mlflow.get_tracking_uri())]
