"""One process of a two-process Hugging Face ``Trainer`` run on the CPU (gloo), started by
``torch.distributed.run`` from test_huggingface.py: ``python hf_distributed_run.py OUT STOP``.

Each process writes ``OUT/rank<N>``: the epochs it trained and whether it measured. With STOP=1,
the measuring process turns its fake source on at the start of the second epoch, over a tiny
energy budget with ``on_over_budget="stop"``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import transformers

from carbonkit.integrations.huggingface import CarbonkitCallback
from carbonkit.testing import FakeIntensity, FakePowerSource, mock_http_client, plugin_manager_for_tests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from frameworks.checks import PowerSwitch  # noqa: E402
from frameworks.test_huggingface import PowerOnAtEpoch, Tokens, tiny_bert  # noqa: E402


class PowerOnWhereMeasured(PowerOnAtEpoch):
    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.callback.tracker is not None:
            super().on_epoch_begin(args, state, control, **kwargs)


def main(out: Path, stop: bool) -> None:
    switch = PowerSwitch()
    if not stop:
        switch.watts = 100.0
    kwargs = dict(
        sources=[FakePowerSource(watts=switch)], provider=FakeIntensity(g_per_kwh=200.0), location="WORLD",
        interval_s=0.05, quiet=True, plugin_manager=plugin_manager_for_tests(), http_client=mock_http_client(),
        log_dir=out / "logs",
    )
    if stop:
        kwargs.update(budget_kwh=1e-9, on_over_budget="stop")
    cb = CarbonkitCallback(**kwargs)
    args = transformers.TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=2, num_train_epochs=4, report_to="none",
        save_strategy="no", use_cpu=True, disable_tqdm=True, ddp_backend="gloo", remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=Tokens(),
                                   callbacks=[PowerOnWhereMeasured(cb, switch, epoch=1), cb])
    trainer.train()
    rank = int(os.environ["RANK"])
    (out / f"rank{rank}").write_text(f"{round(trainer.state.epoch)} {int(cb.measuring)} {torch.distributed.get_world_size()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] == "1")
