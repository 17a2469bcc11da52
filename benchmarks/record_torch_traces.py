"""Record epoch traces from real PyTorch training runs on this machine's CPU, tracked by carbonkit.

Needs ``torch`` (the CPU build: ``pip install torch --index-url https://download.pytorch.org/whl/cpu``
or the project's framework environment). Each run is a real training loop tracked by
``carbonkit.Tracker`` with a run log; the epochs are read back from the log with
``carbonkit.load_run`` and written to ``benchmarks/data/torch_traces.json``, which
``bench_predictors.py`` reads (so the benchmark itself does not need torch).

The runs (a few seconds each, one thread for torch so that runs are comparable):

- ``mlp``: a 3-layer MLP on 8,192 random samples, 12 epochs.
- ``cnn``: a small convolutional net on 2,048 random 1x28x28 images, 10 epochs (the first epoch
  also builds oneDNN's kernels: a real warm-up).
- ``mlp_busier``: the MLP again, with a CPU-bound competing process started before epoch 5
  (the machine gets busier, as in a shared node).

Energy comes from whatever carbonkit finds on the machine; the JSON records each run's
methods (on a machine without RAPL, ``cpu_estimate``: estimated from utilisation and TDP).

Run: ``python benchmarks/record_torch_traces.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "torch_traces.json"


def _burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def _mlp() -> tuple[Any, Any, Any]:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    x = torch.randn(8192, 256)
    y = torch.randint(0, 10, (8192,))
    return model, x, y


def _cnn() -> tuple[Any, Any, Any]:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10),
    )
    x = torch.randn(2048, 1, 28, 28)
    y = torch.randint(0, 10, (2048,))
    return model, x, y


def record(name: str, build: Any, epochs: int, busier_from: int | None = None) -> dict[str, Any]:
    import torch

    import carbonkit

    torch.set_num_threads(1)
    model, x, y = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    competitor = None
    with tempfile.TemporaryDirectory() as logs:
        tracker = carbonkit.Tracker(epochs=epochs, log_dir=logs, quiet=True, interval_s=0.1, location="DK-DK2",
                                    http_client=_offline_client(), plugin_manager=_plugin_manager())
        for epoch in range(epochs):
            if busier_from is not None and epoch == busier_from:
                competitor = multiprocessing.Process(target=_burn, args=(time.time() + 600,), daemon=True)
                competitor.start()
            tracker.epoch_start()
            for i in range(0, len(x), 64):
                opt.zero_grad()
                loss = loss_fn(model(x[i : i + 64]), y[i : i + 64])
                loss.backward()
                opt.step()
            tracker.epoch_end()
        tracker.stop()
        if competitor is not None:
            competitor.terminate()
            competitor.join()
        (log,) = Path(logs).glob("*.jsonl")
        report = carbonkit.load_run(log)
    return {
        "name": name,
        "epochs": [{"duration_s": e.duration_s, "it_energy_kwh": e.it_energy_kwh} for e in report.epochs],
        "methods": report.methods,
        "sources": {k: list(c.sources) for k, c in report.components.items()},
        "busier_from_epoch": busier_from,
    }


def _plugin_manager() -> Any:
    """The workspace's hardware and static-intensity plugins, importable without installing them."""
    import importlib

    import carbonkit

    modules = []
    for folder, module in (("rapl", "carbonkit_rapl"), ("cpu_estimate", "carbonkit_cpu_estimate"),
                           ("intensity_static", "carbonkit_intensity_static")):
        sys.path.insert(0, str(HERE.parent / "plugins" / folder / "src"))
        modules.append(importlib.import_module(module))
    return carbonkit.make_plugin_manager(plugins=modules, entrypoints=False)


def _offline_client() -> Any:
    from carbonkit.testing import mock_http_client

    return mock_http_client()  # no request leaves the machine: the zone's static value prices it


def main() -> None:
    import torch

    import carbonkit

    runs = [
        record("mlp", _mlp, 12),
        record("cnn", _cnn, 10),
        record("mlp_busier", _mlp, 12, busier_from=4),
    ]
    data = {
        "recorded": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "carbonkit": carbonkit.__version__,
        "python": sys.version.split()[0],
        "note": "real PyTorch CPU training runs (one torch thread) tracked by carbonkit; epochs read back "
                "from the run logs with carbonkit.load_run",
        "runs": runs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    for run in runs:
        durations = ", ".join(f"{e['duration_s']:.2f}" for e in run["epochs"])
        print(f"{run['name']}: {run['methods']} epochs (s): {durations}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
