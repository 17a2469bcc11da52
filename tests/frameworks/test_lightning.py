"""The Lightning callback driving real ``lightning.Trainer.fit`` runs of a tiny model on the CPU."""

from __future__ import annotations

import csv

import pytest

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")

from frameworks.checks import (  # noqa: E402
    G_PER_KWH,
    PowerSwitch,
    check_report,
    check_stopped_by_budget,
    switched_kwargs,
)

from carbonkit import ConfigError  # noqa: E402
from carbonkit.integrations.lightning import CarbonkitCallback  # noqa: E402


class TinyModel(pl.LightningModule):
    """A linear regression; ``fail_at_epoch`` raises in that epoch's first step."""

    def __init__(self, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.fail_at_epoch = fail_at_epoch

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.fail_at_epoch:
            raise RuntimeError("simulated failure in training_step")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader(batches: int = 4) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8 * batches, 4, generator=gen)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def trainer(tmp_path, callbacks, **kwargs) -> pl.Trainer:
    from lightning.pytorch.loggers import CSVLogger

    kwargs.setdefault("max_epochs", 3)
    return pl.Trainer(
        accelerator="cpu", devices=1, callbacks=callbacks, logger=CSVLogger(tmp_path, name="run"),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        log_every_n_steps=1, **kwargs,
    )


class PowerOnAtEpoch(pl.Callback):
    """Turn the fake source on at the start of epoch ``epoch`` (0-based): the budget is exceeded
    during that epoch, never before."""

    def __init__(self, callback: CarbonkitCallback, switch: PowerSwitch, epoch: int = 1) -> None:
        self.callback, self.switch, self.epoch = callback, switch, epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            self.switch.turn_on(self.callback.tracker)


def metrics_rows(trainer_: pl.Trainer) -> list[dict[str, str]]:
    with open(f"{trainer_.logger.log_dir}/metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_epochs_and_figures_reach_the_report_and_the_logger(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    assert cb.tracker is None and cb.report is None  # nothing runs before training starts
    t = trainer(tmp_path, [cb], max_epochs=3)
    t.fit(TinyModel(), loader())

    report = cb.report
    check_report(report, epochs=t.current_epoch)
    assert t.current_epoch == 3
    assert report.epochs_planned == 3  # read from max_epochs
    assert report.co2eq_g == pytest.approx(report.energy_kwh * G_PER_KWH, rel=1e-6)
    assert cb.tracker.report is not None  # the tracker was stopped
    # The figures so far were logged at every epoch end, and the totals when training ended.
    assert "carbonkit/energy_kwh" in t.logged_metrics
    rows = [r for r in metrics_rows(t) if r.get("carbonkit/energy_kwh")]
    energies = [float(r["carbonkit/energy_kwh"]) for r in rows]
    assert len(energies) == 3 + 1
    assert energies == sorted(energies)
    assert energies[-1] == pytest.approx(report.energy_kwh, rel=1e-9)
    assert float(rows[-1]["carbonkit/co2eq_g"]) == pytest.approx(report.co2eq_g, rel=1e-9)


def test_planned_epochs_come_from_max_steps_when_it_ends_training_first(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    t = trainer(tmp_path, [cb], max_epochs=10, max_steps=6)  # 4 steps per epoch: 2 epochs
    t.fit(TinyModel(), loader(batches=4))
    assert cb.report.epochs_planned == 2
    check_report(cb.report, epochs=t.current_epoch)
    assert t.current_epoch == 2


def test_planned_epochs_leave_out_those_done_before_a_resume(tmp_path, tracker_kwargs):
    first = trainer(tmp_path, [], max_epochs=2)
    first.fit(TinyModel(), loader())
    first.save_checkpoint(tmp_path / "two.ckpt")
    cb = CarbonkitCallback(**tracker_kwargs)
    t = trainer(tmp_path, [cb], max_epochs=5)
    t.fit(TinyModel(), loader(), ckpt_path=tmp_path / "two.ckpt")
    assert cb.report.epochs_planned == 3
    check_report(cb.report, epochs=3)
    assert t.current_epoch == 5


def test_given_epochs_win_over_the_trainer(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(7, **tracker_kwargs)  # positional, as Tracker(7)
    trainer(tmp_path, [cb], max_epochs=2).fit(TinyModel(), loader())
    assert cb.report.epochs_planned == 7
    assert len(cb.report.epochs) == 2


def test_a_tiny_budget_with_stop_ends_training_at_the_end_of_the_epoch(tmp_path, tracker_kwargs):
    switch = PowerSwitch()
    cb = CarbonkitCallback(budget_kwh=1e-9, on_over_budget="stop", **switched_kwargs(tracker_kwargs, switch))
    t = trainer(tmp_path, [PowerOnAtEpoch(cb, switch, epoch=1), cb], max_epochs=5)
    t.fit(TinyModel(), loader())

    assert t.current_epoch == 2  # epoch 2 of 5 was the last: over budget during it
    check_stopped_by_budget(cb.report, epochs=2)


def test_a_budget_that_only_warns_lets_training_run_on(tmp_path, tracker_kwargs):
    switch = PowerSwitch()
    cb = CarbonkitCallback(budget_kwh=1e-9, **switched_kwargs(tracker_kwargs, switch))
    t = trainer(tmp_path, [PowerOnAtEpoch(cb, switch, epoch=1), cb], max_epochs=3)
    t.fit(TinyModel(), loader())
    assert t.current_epoch == 3
    assert cb.report.budget.exceeded is not None and not cb.report.budget.stopped


def test_an_exception_mid_training_stops_the_tracker_and_gives_a_report(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    t = trainer(tmp_path, [cb], max_epochs=5)
    with pytest.raises(RuntimeError, match="simulated failure"):
        t.fit(TinyModel(fail_at_epoch=2), loader())
    report = cb.report
    check_report(report, epochs=2)  # two epochs finished; the third failed in its first step
    assert cb.tracker.report is not None
    assert any("training ended by an exception (RuntimeError)" in w for w in report.warnings)
    assert not any("simulated failure" in w for w in report.warnings)  # the message is not recorded


def test_a_second_fit_gets_a_tracker_of_its_own(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    trainer(tmp_path, [cb], max_epochs=1).fit(TinyModel(), loader())
    first_tracker, first = cb.tracker, cb.report
    trainer(tmp_path, [cb], max_epochs=2).fit(TinyModel(), loader())
    assert cb.tracker is not first_tracker
    assert len(first.epochs) == 1 and len(cb.report.epochs) == 2


def test_bad_arguments_are_refused_when_the_callback_is_made():
    with pytest.raises(ConfigError, match="'budget'.*Tracker does not take"):
        CarbonkitCallback(budget=3)
    with pytest.raises(ConfigError, match="pue"):
        CarbonkitCallback(pue=9)
    with pytest.raises(ConfigError, match="on_over_budget='halt'"):
        CarbonkitCallback(on_over_budget="halt")
    with pytest.raises(ConfigError, match="predict_after"):
        CarbonkitCallback(epochs=2, predict_after=3)
    with pytest.raises(ConfigError, match="takes the Tracker arguments"):
        CarbonkitCallback(3, epochs=4)  # epochs given twice


def test_the_same_callback_works_with_the_pytorch_lightning_package_name(tmp_path, tracker_kwargs):
    ptl = pytest.importorskip("pytorch_lightning")
    from carbonkit.integrations.pytorch_lightning import CarbonkitCallback as PTLCallback

    assert PTLCallback is CarbonkitCallback
    assert isinstance(CarbonkitCallback(), pl.Callback) and isinstance(CarbonkitCallback(), ptl.Callback)

    class Model(ptl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    cb = PTLCallback(**tracker_kwargs)
    t = ptl.Trainer(accelerator="cpu", devices=1, max_epochs=2, callbacks=[cb], logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    t.fit(Model(), loader())
    check_report(cb.report, epochs=2)
    assert cb.report.epochs_planned == 2


class PowerOnWhereMeasured(pl.Callback):
    """Turn the fake source on at the start of epoch ``epoch`` in the process that measures."""

    def __init__(self, callback: CarbonkitCallback, switch: PowerSwitch, epoch: int = 1) -> None:
        self.callback, self.switch, self.epoch = callback, switch, epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch and self.callback.tracker is not None:
            self.switch.turn_on(self.callback.tracker)


class RecordEpochs(pl.Callback):
    """Write, from every process, the epochs it trained and whether it measured."""

    def __init__(self, callback: CarbonkitCallback, folder) -> None:
        self.callback, self.folder = callback, folder

    def on_train_end(self, trainer, pl_module):
        (self.folder / f"rank{trainer.global_rank}").write_text(
            f"{trainer.current_epoch} {int(self.callback.measuring)}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("stop", [False, True], ids=["plain", "budget-stop"])
def test_two_processes_on_one_host_measure_once_and_stop_together(tmp_path, tracker_kwargs, stop):
    """DDP with two CPU processes (gloo, forked): only local rank 0 writes a run log, and a budget
    exceeded there stops both processes at the same epoch."""
    from carbonkit import load_run

    switch = PowerSwitch()
    logs = tmp_path / "logs"
    kwargs = {**switched_kwargs(tracker_kwargs, switch), "reporters": None, "log_dir": logs}
    if stop:
        kwargs.update(budget_kwh=1e-9, on_over_budget="stop")
    else:
        switch.watts = 100.0
    cb = CarbonkitCallback(**kwargs)
    extra = [PowerOnWhereMeasured(cb, switch, epoch=1)] if stop else []
    t = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_fork", max_epochs=4, logger=False,
                   callbacks=[*extra, cb, RecordEpochs(cb, tmp_path)], enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False)
    t.fit(TinyModel(), loader())

    epochs = 2 if stop else 4
    assert (tmp_path / "rank0").read_text() == f"{epochs} 1"
    assert (tmp_path / "rank1").read_text() == f"{epochs} 0"  # trained, did not measure
    runs = sorted(logs.glob("*.jsonl"))
    assert len(runs) == 1  # one host, one tracker
    report = load_run(runs[0])
    assert len(report.epochs) == epochs
    if stop:
        check_stopped_by_budget(report, epochs=2)
