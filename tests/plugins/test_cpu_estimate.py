"""Tests of the cpu_estimate plugin: TDP resolution, utilisation model, DRAM, settings, hook."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path
from typing import Any

import pluggy
import pytest

import carbonkit
import carbonkit.hookspecs
import carbonkit_cpu_estimate
from carbonkit import Config, ConfigError, Unavailable
from carbonkit_cpu_estimate import (
    DEFAULT_IDLE_FRACTION,
    DEFAULT_W_PER_CORE,
    DRAM_W_PER_GIB,
    CpuEstimate,
    CpuInfo,
    DramEstimate,
    Settings,
    TdpTable,
    build_sources,
    normalise_model,
    parse_flag,
    parse_idle_fraction,
    parse_tdp_w,
    resolve_tdp,
)

# The record psutil.cpu_times() returns on Linux (seconds summed over all CPUs).
scputimes = namedtuple("scputimes", "user nice system idle iowait irq softirq steal guest guest_nice")
svmem = namedtuple("svmem", "total available percent used free")
GIB = 2**30


class FakeCpuTimes:
    """Stands in for psutil.cpu_times: counters advance as if ``cpus`` CPUs ran at a load."""

    def __init__(self, cpus: int = 4, *, boot_busy: float = 100.0, boot_idle: float = 900.0) -> None:
        self.cpus = cpus
        self.values = dict.fromkeys(scputimes._fields, 0.0)
        self.values["user"] = boot_busy
        self.values["idle"] = boot_idle
        self.calls = 0

    def run(self, seconds: float, utilisation: float, *, steal: float = 0.0, guest: float = 0.0) -> None:
        cpu_s = seconds * self.cpus
        self.values["steal"] += cpu_s * steal
        busy = cpu_s * utilisation
        self.values["user"] += busy * 0.8  # guest time is counted inside user time on Linux
        self.values["guest"] += busy * 0.8 * guest
        self.values["system"] += busy * 0.2
        self.values["idle"] += cpu_s * (1.0 - utilisation - steal) * 0.9
        self.values["iowait"] += cpu_s * (1.0 - utilisation - steal) * 0.1

    def __call__(self) -> Any:
        self.calls += 1
        return scputimes(**self.values)


LINUX_VM_CPUINFO = """\
processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 26
model name	: AMD EPYC
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 2
flags		: fpu vme de pse tsc msr pae mce cx8 apic hypervisor lahf_lm avx512f

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 26
model name	: AMD EPYC
physical id	: 0
siblings	: 2
core id		: 1
cpu cores	: 2
flags		: fpu vme de pse tsc msr pae mce cx8 apic hypervisor lahf_lm avx512f
"""


def two_socket_cpuinfo(model: str) -> str:
    blocks = []
    for cpu in range(4):
        blocks.append(
            f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\n"
            f"physical id\t: {cpu // 2}\ncore id\t\t: {cpu % 2}\ncpu cores\t: 2\n"
            "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep\n"
        )
    return "\n".join(blocks)


def counts(cores: int, threads: int) -> Any:
    """Stands in for psutil.cpu_count: ``threads`` logical CPUs on ``cores`` physical cores."""

    def cpu_count(logical: bool = True) -> int:
        return threads if logical else cores

    return cpu_count


@pytest.fixture(scope="module")
def table() -> TdpTable:
    return TdpTable.load()


# --- model names and the table ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "row", "tdp_w"),
    [
        ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", "Intel Xeon E5-2686 v4", 145.0),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763", 280.0),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "Intel Core i7-8700K", 95.0),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "Intel Core i7-8700", 65.0),
        ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "Intel Xeon Platinum 8375C", 300.0),
        ("AMD Ryzen 9 5950X 16-Core Processor", "AMD Ryzen 9 5950X", 105.0),
        ("12th Gen Intel(R) Core(TM) i7-12700H", "Intel Core i7-12700H", 45.0),
        ("AMD Ryzen 7 7840U w/ Radeon 780M Graphics", "AMD Ryzen 7 7840U", 28.0),
        ("AMD Ryzen 7 5700G with Radeon Graphics", "AMD Ryzen 7 5700G", 65.0),
        ("Intel(R) Core(TM)2 Duo CPU     E8400  @ 3.00GHz", "Intel Core 2 Duo E8400", 65.0),
        ("AMD FX(tm)-8350 Eight-Core Processor", "AMD FX-8350", 125.0),
        ("Intel(R) Xeon(R) Gold 6238 CPU @ 2.10GHz", "Intel Xeon Gold 6238", 140.0),
        ("AMD Opteron(tm) Processor 6238", "AMD Opteron 6238", 115.0),
        ("AMD EPYC 7B12", "AMD EPYC 7B12", 240.0),
        ("Apple M1", "Apple M1", 10.0),
        ("AMD A10-7850K Radeon R7, 12 Compute Cores 4C+8G", "AMD A10-7850K", 95.0),
    ],
)
def test_table_matches_real_model_strings(table: TdpTable, model: str, row: str, tdp_w: float) -> None:
    """Model strings as /proc/cpuinfo and vendors print them find their table row."""
    match = table.lookup(model)
    assert match is not None
    assert (match.name, match.tdp_w) == (row, tdp_w)


@pytest.mark.parametrize(
    ("model", "row", "tdp_w"),
    [
        ("AMD Athlon(tm) X4 860K Quad Core Processor", "AMD Athlon 860K", 95.0),
        ("Intel(R) Pentium(R) Dual  CPU  T2060  @ 1.60GHz", "Intel Pentium Dual-Core T2060", 31.0),
    ],
)
def test_token_match_for_reworded_names(table: TdpTable, model: str, row: str, tdp_w: float) -> None:
    """Names worded differently from their row match on model number, vendor and family words."""
    match = table.lookup(model)
    assert match is not None
    assert not match.exact
    assert (match.name, match.tdp_w) == (row, tdp_w)


@pytest.mark.parametrize(
    "model",
    [
        "AMD EPYC 7B13",  # not in the table; must not take 7B12's figure
        "AMD EPYC",  # a hypervisor hiding the model
        "Intel(R) Xeon(R) CPU @ 2.20GHz",  # likewise
        "Apple M1 Pro",  # a bigger chip than the M1 row
        "Intel(R) Xeon(R) CPU E5-2686 @ 2.30GHz",  # v1 is not the v4 row
        "Intel(R) Xeon(R) Silver 6238 CPU",  # an Intel name never takes the Opteron 6238 row
        "ARMv8 Processor rev 0 (v8l)",  # an architecture, not a model
        "Neoverse-N1",
        "",
    ],
)
def test_no_false_positive(table: TdpTable, model: str) -> None:
    """Names the table does not hold get no row, even when a near neighbour exists."""
    assert table.lookup(model) is None


def test_normalisation() -> None:
    """Trademarks, frequency, core counts, generation and filler words are dropped."""
    assert normalise_model("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz") == "intel xeon e5 2686 v4"
    assert normalise_model("AMD EPYC 7763 64-Core Processor") == "amd epyc 7763"
    assert normalise_model("13th Gen Intel(R) Core(TM) i9-13900K") == "intel core i9 13900k"
    assert normalise_model("Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz") == "intel xeon e5 2680"
    assert normalise_model("AMD Ryzen 5 3500 Processor (OEM Only)") == "amd ryzen 5 3500"


def test_table_drops_bad_and_conflicting_rows() -> None:
    """Rows without a usable TDP, and alike names with different TDPs, are left out."""
    table = TdpTable.from_rows(
        [
            ("Intel Celeron 1000A", "27.29.5"),
            ("Intel Quark D1000", "0.0"),
            ("AMD Phenom II X4 945 (125W)", "125"),
            ("AMD Phenom II X4 945 (95W)", "95"),
            ("Intel Core i5-9400", "65.0"),
            ("ARMv8 Processor rev 0 (v8l)", "30"),
        ]
    )
    assert len(table) == 1
    assert len(table.skipped) == 4
    assert table.lookup("AMD Phenom(tm) II X4 945 Processor") is None
    assert table.lookup("Intel(R) Core(TM) i5-9400 CPU @ 2.90GHz") is not None


def test_token_match_tie_with_different_tdp_is_no_match() -> None:
    """Two equally specific rows with different TDPs make the match ambiguous: none."""
    table = TdpTable.from_rows([("Opteron 6238", "115"), ("Phenom 6238", "95")])
    assert table.lookup("AMD Opteron Phenom 6238") is None
    assert table.lookup("AMD Opteron(tm) Processor 6238").tdp_w == 115.0  # type: ignore[union-attr]


def test_shipped_table_is_loaded_once(table: TdpTable) -> None:
    """The shipped table holds the ~4,800 usable rows and is parsed once per process."""
    assert 4500 < len(table) < 4903
    assert TdpTable.load() is table


# --- machine description ------------------------------------------------------------------


def test_detect_this_kind_of_vm(tmp_path: Path, table: TdpTable) -> None:
    """A VM whose cpuinfo says only "AMD EPYC" gets the per-core default, not a guessed row."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(LINUX_VM_CPUINFO)
    cpu = CpuInfo.detect(cpuinfo=cpuinfo, system="Linux", cpu_count=counts(2, 2))
    assert cpu == CpuInfo(
        model_name="AMD EPYC", sockets=1, physical_cores=2, logical_cpus=2, virtual_machine=True
    )
    tdp_w, source = resolve_tdp(cpu, Settings(), table)
    assert tdp_w == 2 * DEFAULT_W_PER_CORE
    assert source == "default: 8 W per core x 2 cores"


def test_two_sockets_double_the_table_tdp(tmp_path: Path, table: TdpTable) -> None:
    """Two physical ids: the table's per-package TDP is counted twice."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(two_socket_cpuinfo("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"))
    cpu = CpuInfo.detect(cpuinfo=cpuinfo, system="Linux", cpu_count=counts(40, 80))
    assert (cpu.sockets, cpu.virtual_machine) == (2, False)
    tdp_w, source = resolve_tdp(cpu, Settings(), table)
    assert tdp_w == 300.0
    assert source == "table: Intel Xeon Gold 6248 (150 W x 2 packages)"


def test_unreadable_cpuinfo_falls_back(tmp_path: Path) -> None:
    """Without a cpuinfo file the name comes from platform.processor(), one socket assumed."""
    cpu = CpuInfo.detect(cpuinfo=tmp_path / "missing", system="Linux", cpu_count=counts(4, 8))
    assert (cpu.sockets, cpu.physical_cores, cpu.logical_cpus) == (1, 4, 8)


def test_unknown_physical_count_uses_logical(tmp_path: Path) -> None:
    """When psutil cannot count physical cores, logical CPUs are used."""
    cpu = CpuInfo.detect(
        cpuinfo=tmp_path / "missing", system="Linux", cpu_count=lambda logical=True: 6 if logical else None
    )
    assert cpu.physical_cores == 6


def test_vm_caps_a_whole_processor_tdp(table: TdpTable) -> None:
    """A small VM on a big processor is capped at the per-core default for the cores it sees."""
    cpu = CpuInfo(
        model_name="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        physical_cores=1,
        logical_cpus=2,
        virtual_machine=True,
    )
    tdp_w, source = resolve_tdp(cpu, Settings(), table)
    assert tdp_w == DEFAULT_W_PER_CORE
    assert source.startswith(
        "table: Intel Xeon Platinum 8375C (300 W x 1 package), capped for a virtual machine"
    )
    bare = CpuInfo(model_name=cpu.model_name, physical_cores=1, logical_cpus=2)
    assert resolve_tdp(bare, Settings(), table)[0] == 300.0


def test_default_per_core(table: TdpTable) -> None:
    """An unknown model gets the per-core default times physical cores."""
    cpu = CpuInfo(model_name="Some Future CPU 9999", physical_cores=12, logical_cpus=24)
    assert resolve_tdp(cpu, Settings(), table) == (96.0, "default: 8 W per core x 12 cores")


def test_setting_wins_over_table(table: TdpTable) -> None:
    """A user TDP replaces the table, per package, and says so."""
    cpu = CpuInfo(
        model_name="AMD EPYC 7763 64-Core Processor", sockets=2, physical_cores=128, virtual_machine=True
    )
    settings = Settings(tdp_w=200.0, tdp_setting="CARBONKIT_CPU_TDP_W")
    assert resolve_tdp(cpu, settings, table) == (400.0, "CARBONKIT_CPU_TDP_W: 200 W x 2 packages")


# --- the utilisation model ----------------------------------------------------------------


def test_power_follows_the_linear_model() -> None:
    """Idle gives idle_fraction x TDP, full load gives TDP, half load half-way between."""
    times = FakeCpuTimes(cpus=4)
    source = CpuEstimate(tdp_w=100.0, tdp_source="test", cpu_times=times)
    assert source.idle_w == pytest.approx(100.0 * DEFAULT_IDLE_FRACTION)
    for utilisation, watts in ((0.0, 25.0), (1.0, 100.0), (0.5, 62.5), (0.2, 40.0)):
        times.run(1.0, utilisation)
        assert source.read() == pytest.approx([watts])
        assert source.utilisation == pytest.approx(utilisation)


def test_twice_the_tdp_gives_twice_the_power(tmp_path: Path) -> None:
    """With CARBONKIT_CPU_TDP_W doubled, the estimate doubles at the same utilisation."""
    cpu = CpuInfo(model_name="AMD EPYC", physical_cores=2, logical_cpus=2)
    readings = []
    for tdp in ("65", "130"):
        times = FakeCpuTimes(cpus=2)
        (source,) = build_sources(Config(), cpu, environ={"CARBONKIT_CPU_TDP_W": tdp}, cpu_times=times)
        assert source.tdp_source == f"CARBONKIT_CPU_TDP_W: {tdp} W x 1 package"
        times.run(2.0, 0.7)
        readings.append(source.read()[0])
    assert readings[1] == pytest.approx(2 * readings[0])
    assert readings[0] == pytest.approx(65 * (0.25 + 0.75 * 0.7))


def test_first_reading_uses_the_average_since_boot() -> None:
    """Before a window closes, the busy fraction since boot is used; then the window's own."""
    times = FakeCpuTimes(cpus=2, boot_busy=300.0, boot_idle=700.0)
    source = CpuEstimate(tdp_w=80.0, tdp_source="test", cpu_times=times)
    assert source.read() == pytest.approx([80.0 * (0.25 + 0.75 * 0.3)])
    times.run(0.1, 1.0)  # 0.2 CPU-seconds: too short a window, previous value kept
    assert source.utilisation == pytest.approx(0.3)
    source.read()
    assert source.utilisation == pytest.approx(0.3)
    times.run(0.2, 1.0)  # the window now holds 0.6 CPU-seconds, all busy
    assert source.read() == pytest.approx([80.0])


def test_steal_is_not_busy_and_guest_not_counted_twice() -> None:
    """Time stolen by the hypervisor is not the VM's work; guest time is inside user time."""
    times = FakeCpuTimes(cpus=4)
    source = CpuEstimate(tdp_w=100.0, tdp_source="test", idle_fraction=0.0, cpu_times=times)
    times.run(1.0, 0.5, steal=0.2, guest=0.5)
    assert source.read() == pytest.approx([50.0])


def test_counters_going_back_restart_the_window() -> None:
    """Counters that decrease do not give a negative or huge utilisation."""
    times = FakeCpuTimes(cpus=2)
    source = CpuEstimate(tdp_w=100.0, tdp_source="test", cpu_times=times)
    times.run(1.0, 0.5)
    assert source.read() == pytest.approx([62.5])
    times.values["idle"] -= 500.0
    assert source.read() == pytest.approx([62.5])
    times.run(1.0, 1.0)
    assert source.read() == pytest.approx([100.0])


def test_read_is_cheap() -> None:
    """A reading makes one cpu_times call and never sleeps."""
    times = FakeCpuTimes()
    source = CpuEstimate(tdp_w=50.0, tdp_source="test", cpu_times=times)
    before = times.calls
    source.read()
    assert times.calls == before + 1


def test_real_psutil_reading_is_in_range() -> None:
    """With the real psutil, the estimate lies between idle power and TDP."""
    source = CpuEstimate(tdp_w=40.0, tdp_source="test")
    (watts,) = source.read()
    assert 10.0 <= watts <= 40.0
    assert source.devices() == ["cpu"]
    source.close()


def test_sources_satisfy_the_protocol() -> None:
    """Both estimates are PowerSources: estimated power, named cpu_estimate:<component>."""
    cpu = CpuEstimate(tdp_w=50.0, tdp_source="test", cpu_times=FakeCpuTimes())
    dram = DramEstimate(virtual_memory=lambda: svmem(16 * GIB, 8 * GIB, 50.0, 8 * GIB, 8 * GIB))
    for source, component in ((cpu, "cpu"), (dram, "dram")):
        assert isinstance(source, carbonkit.PowerSource)
        assert source.name == f"cpu_estimate:{component}"
        assert (source.component, source.method, source.kind) == (component, "estimated", "power")


def test_each_source_exposes_a_sensible_max_power_w() -> None:
    """max_power_w is 1.5 x the model's largest output: TDP at full load, all memory in use for DRAM;
    no reading of the model reaches it, so only a faulty source would be rejected."""
    times = FakeCpuTimes(cpus=2)
    cpu = CpuEstimate(tdp_w=120.0, tdp_source="test", cpu_times=times)
    dram = DramEstimate(virtual_memory=lambda: svmem(64 * GIB, 0, 100.0, 64 * GIB, 0))
    assert cpu.max_power_w == pytest.approx(180.0)
    assert dram.max_power_w == pytest.approx(64 * DRAM_W_PER_GIB * 1.5)
    times.run(2.0, 1.0)  # full load: the model's largest reading
    (cpu_w,), (dram_w,) = cpu.read(), dram.read()
    assert cpu_w == pytest.approx(120.0) and cpu_w < cpu.max_power_w
    assert dram_w == pytest.approx(64 * DRAM_W_PER_GIB) and dram_w < dram.max_power_w
    # The ceiling follows the TDP that was resolved (here the user's setting, per package x 2).
    two_sockets = CpuInfo(model_name="AMD EPYC", sockets=2, physical_cores=8, logical_cpus=16)
    (source,) = build_sources(Config(), two_sockets, environ={"CARBONKIT_CPU_TDP_W": "95"}, cpu_times=times)
    assert source.max_power_w == pytest.approx(2 * 95.0 * 1.5)


# --- DRAM ---------------------------------------------------------------------------------


def test_dram_estimate_per_gib_in_use() -> None:
    """DRAM power is 0.3725 W per GiB of memory in use (total - available)."""
    memory = svmem(total=64 * GIB, available=48 * GIB, percent=25.0, used=14 * GIB, free=40 * GIB)
    source = DramEstimate(virtual_memory=lambda: memory)
    assert source.devices() == ["dram"]
    assert source.read() == pytest.approx([16 * DRAM_W_PER_GIB])
    assert source.read()[0] == pytest.approx(5.96)


def test_dram_is_opt_in() -> None:
    """DRAM is estimated only when asked for, by option or variable."""
    cpu = CpuInfo(model_name="AMD EPYC", physical_cores=2, logical_cpus=2)
    assert [s.name for s in build_sources(Config(), cpu, environ={})] == ["cpu_estimate:cpu"]
    on = build_sources(Config(), cpu, environ={"CARBONKIT_CPU_ESTIMATE_DRAM": "1"})
    assert [s.name for s in on] == ["cpu_estimate:cpu", "cpu_estimate:dram"]
    off = build_sources(
        Config(options={"cpu_estimate.dram": False}), cpu, environ={"CARBONKIT_CPU_ESTIMATE_DRAM": "1"}
    )
    assert [s.name for s in off] == ["cpu_estimate:cpu"]


# --- settings and bad input ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-5", "0", "nan", "inf", "", "95 kW", True, -1.0, None])
def test_bad_tdp_value_is_refused(value: Any) -> None:
    """A TDP that is not a positive number of watts raises ConfigError naming the setting."""
    with pytest.raises(
        ConfigError, match=r"CARBONKIT_CPU_TDP_W=.* is not valid: expected .* positive number of watts"
    ):
        parse_tdp_w(value)


@pytest.mark.parametrize(("value", "watts"), [("95", 95.0), (" 95 W ", 95.0), ("12.5w", 12.5), (150, 150.0)])
def test_good_tdp_values(value: Any, watts: float) -> None:
    """Numbers, with or without a trailing W, are accepted."""
    assert parse_tdp_w(value) == watts


def test_bad_values_at_construction() -> None:
    """The sources refuse a non-positive TDP or an idle fraction outside 0-1."""
    with pytest.raises(ConfigError, match="tdp_w must be a positive number of watts, got 0"):
        CpuEstimate(tdp_w=0, tdp_source="test", cpu_times=FakeCpuTimes())
    with pytest.raises(ConfigError, match=r"idle_fraction must be a number from 0 to 1, got 1\.5"):
        CpuEstimate(tdp_w=10, tdp_source="test", idle_fraction=1.5, cpu_times=FakeCpuTimes())
    with pytest.raises(ConfigError, match="w_per_gib"):
        DramEstimate(w_per_gib=-1.0)
    with pytest.raises(ConfigError, match="CARBONKIT_CPU_ESTIMATE_IDLE_FRACTION='2'"):
        parse_idle_fraction("2")
    with pytest.raises(ConfigError, match="CARBONKIT_CPU_ESTIMATE_DRAM='maybe'"):
        parse_flag("maybe")


def test_settings_option_wins_over_environment() -> None:
    """config.options settings take precedence over CARBONKIT_* variables."""
    environ = {
        "CARBONKIT_CPU_TDP_W": "95",
        "CARBONKIT_CPU_ESTIMATE_IDLE_FRACTION": "0.1",
        "CARBONKIT_CPU_ESTIMATE_DRAM": "yes",
    }
    assert Settings.from_config(Config(), environ) == Settings(
        tdp_w=95.0, tdp_setting="CARBONKIT_CPU_TDP_W", idle_fraction=0.1, dram=True
    )
    config = Config(options={"cpu_estimate.tdp_w": 120, "cpu_estimate.idle_fraction": 0.3})
    settings = Settings.from_config(config, environ)
    assert (settings.tdp_w, settings.tdp_setting, settings.idle_fraction) == (
        120.0,
        "option cpu_estimate.tdp_w",
        0.3,
    )


def test_bad_setting_gives_a_warning_note() -> None:
    """A bad CARBONKIT_CPU_TDP_W gives no source and a warn=True note, not an exception."""
    cpu = CpuInfo(model_name="AMD EPYC", physical_cores=2, logical_cpus=2)
    (note,) = build_sources(Config(), cpu, environ={"CARBONKIT_CPU_TDP_W": "ninety"})
    assert isinstance(note, Unavailable)
    assert note.warn is True
    assert note.plugin == "cpu_estimate"
    assert "CARBONKIT_CPU_TDP_W='ninety' is not valid" in note.reason


def test_hook_register_power_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook, called through pluggy, estimates this machine's CPU with its settings."""
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(carbonkit.hookspecs)
    pm.register(carbonkit_cpu_estimate, name="cpu_estimate")
    pm.check_pending()
    monkeypatch.setenv("CARBONKIT_CPU_TDP_W", "42")
    monkeypatch.delenv("CARBONKIT_CPU_ESTIMATE_DRAM", raising=False)
    (result,) = pm.hook.register_power_sources(config=Config())
    (source,) = result
    assert isinstance(source, CpuEstimate)
    sockets = CpuInfo.detect().sockets
    assert source.tdp_w == 42.0 * sockets
    assert source.tdp_source.startswith("CARBONKIT_CPU_TDP_W: 42 W")
    assert source.model_name == CpuInfo.detect().model_name
    assert source.idle_w * (1 - 1e-9) <= source.read()[0] <= source.tdp_w
    monkeypatch.delenv("CARBONKIT_CPU_TDP_W")
    (result,) = pm.hook.register_power_sources(config=Config(options={"cpu_estimate.dram": "1"}))
    assert [s.name for s in result] == ["cpu_estimate:cpu", "cpu_estimate:dram"]
    assert result[0].tdp_source.startswith(("table: ", "default: "))


def test_for_model_answers_as_the_whole_table_does(table: TdpTable) -> None:
    """The quick partial table a run builds gives the same match as the whole table, for the
    shipped names themselves (every 5th), as /proc/cpuinfo would print them, and for near misses."""
    from carbonkit_cpu_estimate._tdp import _shipped_rows

    names = [name for name, _, _ in _shipped_rows()[::5]]
    names += [f"{name} CPU @ 2.10GHz" for name in names[::10]]
    names += ["AMD EPYC 7B13", "AMD EPYC", "Apple M1 Pro", "Intel(R) Xeon(R) CPU E5-2686 @ 2.30GHz",
              "Intel(R) Core(TM)2 Duo CPU     E8400  @ 3.00GHz", "AMD Athlon(tm) X4 860K Quad Core Processor", ""]
    for name in names:
        assert TdpTable.for_model(name).lookup(name) == table.lookup(name), name
