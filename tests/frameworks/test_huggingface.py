"""The Hugging Face callback driving real ``transformers.Trainer.train`` runs on the CPU: a
two-layer BERT built from a config with tiny dimensions, on synthetic data (nothing downloaded)."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from frameworks.checks import (  # noqa: E402
    PowerSwitch,
    check_report,
    check_stopped_by_budget,
    switched_kwargs,
)

from carbonkit.integrations.huggingface import CarbonkitCallback  # noqa: E402

FIGURES = ("carbonkit/energy_kwh", "carbonkit/co2eq_g")


class Tokens(torch.utils.data.Dataset):
    """``n`` random sequences of 8 tokens with a binary label."""

    def __init__(self, n: int = 16) -> None:
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (n, 8), generator=gen)
        self.labels = torch.randint(0, 2, (n,), generator=gen)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": self.labels[i]}


class FailingModel(torch.nn.Module):
    """Wraps a model; raises in the forward pass once ``fail_after`` steps have run."""

    def __init__(self, model, fail_after: int) -> None:
        super().__init__()
        self.model = model
        self.fail_after = fail_after
        self.calls = 0

    def forward(self, **batch):
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("simulated failure in forward")
        return self.model(**batch)


def tiny_bert():
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
        max_position_embeddings=16, num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def make_trainer(tmp_path, callbacks, model=None, **args):
    args.setdefault("num_train_epochs", 3)
    training_args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, report_to="none", save_strategy="no",
        logging_strategy="steps", logging_steps=3, use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        **args,
    )
    return transformers.Trainer(model=model or tiny_bert(), args=training_args, train_dataset=Tokens(),
                                callbacks=callbacks)


class PowerOnAtEpoch(transformers.TrainerCallback):
    def __init__(self, callback, switch: PowerSwitch, epoch: int = 1) -> None:
        self.callback, self.switch, self.epoch, self.seen = callback, switch, epoch, 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.seen == self.epoch:
            self.switch.turn_on(self.callback.tracker)
        self.seen += 1


class RecordLogs(transformers.TrainerCallback):
    """Keep every ``logs`` dict ``on_log`` receives (as a reporting integration would)."""

    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def test_epochs_and_figures_reach_the_report_and_the_log_history(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    recorder = RecordLogs()
    trainer = make_trainer(tmp_path, [recorder, cb], num_train_epochs=3)  # the recorder before ours
    trainer.train()

    report = cb.report
    check_report(report, epochs=3)  # 16 samples, 4 a batch: 4 steps an epoch, 3 epochs
    assert trainer.state.epoch == 3 and report.epochs_planned == 3
    assert cb.tracker.report is not None
    history = trainer.state.log_history
    ours = [h for h in history if "carbonkit/energy_kwh" in h and "loss" not in h and "train_loss" not in h]
    assert len(ours) == 3 + 1  # one at each epoch's end, and the totals at the end
    assert [h["epoch"] for h in ours[:3]] == [1.0, 2.0, 3.0]
    energies = [h["carbonkit/energy_kwh"] for h in ours]
    assert energies == sorted(energies)
    assert ours[-1]["carbonkit/energy_kwh"] == pytest.approx(report.energy_kwh, rel=1e-9)
    assert ours[-1]["carbonkit/co2eq_g"] == pytest.approx(report.co2eq_g, rel=1e-9)
    # The trainer's own log lines (loss every 3 steps) carry the figures so far too.
    losses = [h for h in history if "loss" in h]
    assert losses and all(set(FIGURES) <= set(h) for h in losses)
    # Logged through Trainer.log: a callback listed before this one got them too, once an epoch.
    seen = [entry for entry in recorder.logs if set(FIGURES) <= set(entry)]
    assert [entry["epoch"] for entry in seen] == [1.0, 2.0, 3.0]


def test_planned_epochs_come_from_max_steps(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    trainer = make_trainer(tmp_path, [cb], num_train_epochs=10, max_steps=6)  # 4 steps an epoch
    trainer.train()
    assert cb.report.epochs_planned == 2
    check_report(cb.report, epochs=2)
    assert trainer.state.global_step == 6


def test_a_tiny_budget_with_stop_ends_training_at_the_end_of_the_epoch(tmp_path, tracker_kwargs):
    switch = PowerSwitch()
    cb = CarbonkitCallback(budget_kwh=1e-9, on_over_budget="stop", **switched_kwargs(tracker_kwargs, switch))
    trainer = make_trainer(tmp_path, [PowerOnAtEpoch(cb, switch, epoch=1), cb], num_train_epochs=5)
    trainer.train()
    assert trainer.state.epoch == 2  # epoch 2 of 5 was the last
    check_stopped_by_budget(cb.report, epochs=2)


def test_an_exception_mid_training_still_gives_a_report_through_the_with_block(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    trainer = make_trainer(tmp_path, [cb], model=FailingModel(tiny_bert(), fail_after=6), num_train_epochs=3)
    with pytest.raises(RuntimeError, match="simulated failure"), cb:
        trainer.train()
    check_report(cb.report, epochs=1)  # 4 steps an epoch: the failure is in the second epoch
    assert cb.tracker.report is not None
    assert any("training ended by an exception (RuntimeError)" in w for w in cb.report.warnings)


def test_reading_the_report_after_an_exception_stops_the_tracker(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    trainer = make_trainer(tmp_path, [cb], model=FailingModel(tiny_bert(), fail_after=6), num_train_epochs=3)
    with pytest.raises(RuntimeError, match="simulated failure"):
        trainer.train()
    report = cb.report  # the loop is gone: the callback stops the tracker now
    check_report(report, epochs=1)
    assert cb.tracker.report is not None
    assert any("training ended by an exception before the Hugging Face trainer's end" in w for w in report.warnings)


def test_a_watch_thread_stops_the_tracker_once_an_exception_left_the_loop(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    trainer = make_trainer(tmp_path, [cb], model=FailingModel(tiny_bert(), fail_after=6), num_train_epochs=3)
    with pytest.raises(RuntimeError, match="simulated failure"):
        trainer.train()
    assert cb._run.finished.wait(60)  # nobody read the report: the watch thread stopped the tracker
    assert cb.tracker.report is not None
    check_report(cb.report, epochs=1)


def test_the_next_train_stops_a_run_that_ended_by_an_exception(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    failing = make_trainer(tmp_path, [cb], model=FailingModel(tiny_bert(), fail_after=2), num_train_epochs=1)
    with pytest.raises(RuntimeError):
        failing.train()
    first = cb.tracker
    make_trainer(tmp_path, [cb], num_train_epochs=1).train()
    assert first.report is not None  # stopped when the next training started
    check_report(cb.report, epochs=1)


def test_a_process_that_is_not_its_hosts_local_main_process_does_not_measure(tmp_path, tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    trainer = make_trainer(tmp_path, [cb], num_train_epochs=1)
    trainer.is_local_process_zero = lambda: False  # as on local rank 1 of a distributed launch
    trainer.train()
    assert not cb.measuring and cb.tracker is None and cb.report is None
    assert not any("carbonkit/energy_kwh" in h for h in trainer.state.log_history)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [False, True], ids=["plain", "budget-stop"])
def test_two_processes_on_one_host_measure_once_and_stop_together(tmp_path, stop):
    """A real two-process launch (torch.distributed.run, gloo on the CPU): only the local main
    process writes a run log, and a budget exceeded there stops both at the same epoch."""
    import subprocess
    import sys
    from pathlib import Path

    from carbonkit import load_run

    script = Path(__file__).with_name("hf_distributed_run.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARBONKIT_", "LOCAL_RANK", "RANK", "WORLD_SIZE"))}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(tmp_path), "1" if stop else "0"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    epochs = 2 if stop else 4
    assert (tmp_path / "rank0").read_text() == f"{epochs} 1 2"
    assert (tmp_path / "rank1").read_text() == f"{epochs} 0 2"  # trained, did not measure
    runs = sorted((tmp_path / "logs").glob("*.jsonl"))
    assert len(runs) == 1  # one host, one tracker
    report = load_run(runs[0])
    assert len(report.epochs) == epochs
    if stop:
        check_stopped_by_budget(report, epochs=2)
