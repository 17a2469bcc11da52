"""One rank of a test job: started by torchrun (``python -m torch.distributed.run``) or directly.

The host's hardware is simulated as each real rank of a job would see it: a fake NVML
(``tests/plugins/fake_pynvml.py``) injected as ``pynvml`` whose GPUs are the host's (the same
UUIDs in every process of a host, energy counters that advance with the machine's monotonic
clock, so every process reads the same machine-wide counter), and a powercap tree
(``CARBONKIT_RAPL_ROOT``) made by the test. The tracker is built from the installed plugins,
exactly as in a user's job.

Arguments (environment): ``CK_TEST_OUT`` folder for the results; ``CK_TEST_GPUS`` GPUs per
host; ``CK_TEST_SCENARIO``: ``normal``, ``late-local-zero`` (local rank 0 creates its tracker
only after every other rank of its host has), ``missing`` (rank 1 never calls ``stop()``) or
``logs`` (no process group: the job total comes from the run logs) or ``rank0-only`` (only rank 0
creates a tracker).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path


def fake_nvml(host: str, count: int) -> object:
    spec = importlib.util.spec_from_file_location(
        "carbonkit_tests_fake_pynvml", Path(__file__).parents[1] / "plugins" / "fake_pynvml.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)

    class HostNvml(module.FakePynvml):  # type: ignore[name-defined,misc]
        """The host's GPUs: counters advance with the machine's clock, seen alike by every process."""

        def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
            now = time.monotonic()
            if now > self.time_s:
                self.advance(now - self.time_s)
            return int(super().nvmlDeviceGetTotalEnergyConsumption(handle))

    gpus = [
        module.FakeGpu(name="NVIDIA H100 80GB HBM3", uuid=f"GPU-{i}-{host}-0000-0000-0000-00000000000{i}",
                       power_w=100.0 * (i + 1))
        for i in range(count)
    ]
    fake = HostNvml(gpus)
    fake.time_s = time.monotonic()
    return fake


def main() -> None:
    out = Path(os.environ["CK_TEST_OUT"])
    scenario = os.environ.get("CK_TEST_SCENARIO", "normal")
    host = os.environ.get("CARBONKIT_HOST", "host")
    sys.modules["pynvml"] = fake_nvml(host, int(os.environ.get("CK_TEST_GPUS", "2")))

    import carbonkit

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dist = None
    if scenario != "logs":
        import torch.distributed as dist

        dist.init_process_group("gloo")
    if scenario == "late-local-zero" and local_rank == 0 and dist is not None:
        dist.barrier()  # every other rank of the job has its tracker: local rank 0 comes last
    if scenario == "rank0-only" and rank != 0:
        assert dist is not None
        dist.barrier()  # rank 0 has its tracker
        dist.barrier()  # rank 0 has stopped
        dist.destroy_process_group()
        return
    tracker = carbonkit.Tracker(epochs=2, quiet=True, interval_s=0.05, functional_unit="sample")
    tracker.add_units(10)  # the samples this rank processed
    if scenario == "rank0-only":
        assert dist is not None
        dist.barrier()
        report = tracker.stop(timeout_s=float(os.environ.get("CK_TEST_STOP_TIMEOUT", "10")))
        (out / "job.json").write_text(json.dumps(report.to_dict()))
        dist.barrier()
        dist.destroy_process_group()
        return
    if scenario == "late-local-zero" and local_rank != 0 and dist is not None:
        dist.barrier()
    if dist is not None:
        dist.barrier()  # every rank has its tracker
    for _ in range(2):
        tracker.epoch_start()
        if dist is not None:
            dist.barrier()  # a training step every rank takes part in
        tracker.epoch_end()
    (out / f"role-{rank}.json").write_text(json.dumps({"rank": rank, "host": host, "role": tracker.role}))
    if scenario == "missing" and rank == 1:
        if dist is not None:
            dist.barrier()
        os._exit(0)  # dies without stop(): its figures never reach rank 0
    if dist is not None:
        if scenario == "missing":
            dist.barrier()
        if rank != 0:
            report = tracker.stop()
            (out / f"local-{rank}.json").write_text(json.dumps(report.to_dict()))
            dist.barrier()  # rank 0 stops after every other rank (a deterministic order for the test)
        else:
            if scenario != "missing":
                dist.barrier()
            began = time.monotonic()
            report = tracker.stop(timeout_s=float(os.environ.get("CK_TEST_STOP_TIMEOUT", "10")))
            took = time.monotonic() - began
            (out / "job.json").write_text(json.dumps(report.to_dict()))
            (out / "local-0.json").write_text(json.dumps(tracker.local_report.to_dict()))  # type: ignore[union-attr]
            (out / "stop-0.json").write_text(json.dumps({"took_s": took}))
        if scenario != "missing":
            dist.destroy_process_group()
        return
    # No process group: rank 0 stops when the test says every other rank has finished.
    if rank != 0:
        report = tracker.stop()
        (out / f"local-{rank}.json").write_text(json.dumps(report.to_dict()))
        return
    print("ready", flush=True)
    sys.stdin.readline()
    report = tracker.stop()
    (out / "job.json").write_text(json.dumps(report.to_dict()))
    (out / "local-0.json").write_text(json.dumps(tracker.local_report.to_dict()))  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
