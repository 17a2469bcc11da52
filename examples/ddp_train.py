"""A data-parallel training job tracked by carbonkit: run it with torchrun (or srun).

    torchrun --standalone --nproc-per-node=4 examples/ddp_train.py

Every rank creates a tracker. On each host the first one to start measures the host's devices
and the others only record their epochs; ``stop()`` on global rank 0 returns the job's total
over every host (``docs/distributed.md``). It runs on CPUs with the gloo back end (set
``DDP_BACKEND=nccl`` on GPUs).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

import carbonkit

EPOCHS = int(os.environ.get("DEMO_EPOCHS", "3"))
STEPS = int(os.environ.get("DEMO_STEPS", "200"))


def main() -> None:
    if "RANK" not in os.environ and "SLURM_PROCID" in os.environ:  # started by srun, not torchrun
        os.environ.update(RANK=os.environ["SLURM_PROCID"], LOCAL_RANK=os.environ["SLURM_LOCALID"],
                          WORLD_SIZE=os.environ["SLURM_NTASKS"])  # MASTER_ADDR/PORT: set in the batch script
    dist.init_process_group(os.environ.get("DDP_BACKEND", "gloo"))
    rank = dist.get_rank()
    torch.manual_seed(rank)
    model = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 1)))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    tracker = carbonkit.Tracker(epochs=EPOCHS, quiet=rank != 0)  # one console: rank 0's
    for _ in range(EPOCHS):
        tracker.epoch_start()
        for _ in range(STEPS):
            x = torch.randn(64, 256)
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()  # gradients are all-reduced: every rank takes each step together
            opt.step()
        tracker.epoch_end()
    report = tracker.stop(timeout_s=30)
    if rank == 0:
        print(f"job {report.job}: {report.energy_kwh * 3.6e6:.1f} J, {report.co2eq_g:.3g} g CO2eq over "
              f"{len(report.hosts)} host(s), made from the {report.job_total}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
