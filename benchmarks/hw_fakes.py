"""Twelve devices for the sampler benchmark: the real plugins on faithful fakes.

4 RAPL counters (2 packages, each with DRAM) on a powercap tree laid out as the kernel lays it
out, read by the real ``rapl`` plugin; 8 GPUs on the fake NVML module the ``nvml`` tests use,
read by the real ``nvml`` plugin.
"""

from __future__ import annotations

from pathlib import Path

from fake_pynvml import FakeGpu, FakePynvml
from test_rapl import FakePowercap

import carbonkit
import carbonkit_rapl
from carbonkit_nvml import NvmlSource


def twelve_devices(tmp: Path) -> tuple[list, FakePynvml]:
    tree = FakePowercap(tmp)
    tree.control("intel-rapl")
    for pkg in (0, 1):
        tree.zone(f"intel-rapl:{pkg}", f"package-{pkg}")
        tree.zone(f"intel-rapl:{pkg}:0", "core")
        tree.zone(f"intel-rapl:{pkg}:1", "dram")
    rapl = [s for s in carbonkit_rapl.probe(tree.root) if not isinstance(s, carbonkit.Unavailable)]
    nvml = FakePynvml([FakeGpu(uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000", power_w=250.0) for i in range(8)])
    gpus = [s for s in NvmlSource.discover(carbonkit.Config(), nvml=nvml, environ={}) if not isinstance(s, carbonkit.Unavailable)]
    return rapl + gpus, nvml
