"""carbonkit's benchmarks, with the peers measured side by side in the same run.

Run with ``make bench``. Prints one table and writes it, with the machine, date and versions, to
``docs/benchmarks.md``. Every figure is a median over repeated runs; every comparison with a
peer is measured in the same run, interleaved round by round, and given as a ratio.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "plugins"))

import peers  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = 3 if QUICK else 5
ROWS: list[dict] = []


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def row(group: str, figure: str, value: float, unit: str, *, target: str = "", note: str = "") -> None:
    ROWS.append({"group": group, "figure": figure, "value": value, "unit": unit, "target": target, "note": note})


def median(values: list[float]) -> float:
    return statistics.median(values)


def py(code: str, *, env: dict | None = None, cwd: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, check=True, timeout=300
    )
    return out.stdout


# -- 1. hot path ------------------------------------------------------------------------------

CK_HOT = """
import json, sys, time, carbonkit
from carbonkit.testing import FakePowerSource
n = int(sys.argv[1])
t = carbonkit.Tracker(epochs=n + 1, quiet=True, location="SE-SE3", interval_s=1.0, reporters=[],
                      sources=[FakePowerSource(watts=[100.0] * 12)])
time.sleep(1.5)
samples = []
start, end = t.epoch_start, t.epoch_end
clock = time.perf_counter
for _ in range(n):
    a = clock(); start(); end(); samples.append(clock() - a)
t.stop()
samples.sort()
print(json.dumps({"us_per_pair": samples[len(samples) // 2] * 1e6}))
"""


def hot_path() -> None:
    log("1. hot path ...")
    ck, ct, cc = [], [], []
    for _ in range(ROUNDS):
        ck.append(json.loads(subprocess.run([sys.executable, "-c", CK_HOT, "20000"], capture_output=True, text=True, check=True).stdout)["us_per_pair"])
        ct.append(peers.run("carbontracker", "hot_path", "300")["us_per_pair"])
        with tempfile.TemporaryDirectory() as d:
            cc.append(peers.run("codecarbon", "hot_path", "300", cwd=d)["us_per_pair"])
    k = median(ck)
    row("hot path", "epoch_start + epoch_end, carbonkit (sampler running, 12 devices)", k, "us/pair", target="<= 5")
    row("hot path", "carbontracker 2.4.7", median(ct), "us/pair", note=f"carbonkit is {median(ct) / k:.0f}x faster")
    row("hot path", "codecarbon 3.3.2 (start_task + stop_task)", median(cc), "us/pair", note=f"carbonkit is {median(cc) / k:.0f}x faster")


# -- 2. sampler ---------------------------------------------------------------------------------

def sampler() -> None:
    """CPU time of one sampler tick with 4 RAPL counters (fake powercap) and 8 GPUs (fake NVML)."""
    log("2. sampler ...")
    import hw_fakes

    import carbonkit
    import carbonkit.testing

    per_tick = []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as d:
            sources, fake_nvml = hw_fakes.twelve_devices(Path(d))
            assert sum(len(s.devices()) for s in sources) == 12, [s.devices() for s in sources]
            with tempfile.TemporaryDirectory() as logs:
                t = carbonkit.Tracker(
                    sources=sources, quiet=True, location="SE-SE3", interval_s=300, log_dir=logs,
                    reporters=None, plugin_manager=carbonkit.testing.plugin_manager_for_tests(),
                    http_client=carbonkit.testing.mock_http_client(),
                )
                time.sleep(0.2)  # the run log is open, the intensity thread has answered
                t._wake = threading.Event()  # park the sampler thread (300 s): the ticks are driven here
                n = 2000
                gc.disable()
                a = time.thread_time()
                for _ in range(n):
                    fake_nvml.advance(0.001)
                    now = t._clock() - t._t0
                    t._tick(now)
                per_tick.append((time.thread_time() - a) / n)
                gc.enable()
                t.stop()
    us = median(per_tick) * 1e6
    row("sampler", "CPU time per sample, 4 RAPL counters + 8 GPUs, run log on", us, "us/sample")
    row("sampler", "share of one core at the default 1 s interval", us / 1e6 * 100, "%", target="<= 0.01")


# -- 3. fixed cost per run ------------------------------------------------------------------------

CK_FIXED = """
import json, time, carbonkit
t = carbonkit.Tracker(quiet=True, location="SE-SE3")
first = time.time()
t.stop()
print(json.dumps({"first_sample_unix": first}))
"""


def _wall(argv: list[str], cwd: str | None = None) -> tuple[float, dict]:
    a = time.time()
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=cwd, timeout=300)
    total = time.time() - a
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    data = json.loads(lines[-1]) if lines else {}
    if "first_sample_unix" in data:
        data["to_first_sample_s"] = data["first_sample_unix"] - a
    return total, data


def fixed_cost() -> None:
    log("3. fixed cost per run ...")
    base, ck_total, ck_first, ct_total, ct_first, cc_total, cc_first = [], [], [], [], [], [], []
    env_note = "no network: intensity from the static table"
    for _ in range(ROUNDS):
        base.append(_wall([sys.executable, "-c", "pass"])[0])
        total, data = _wall([sys.executable, "-c", CK_FIXED])
        ck_total.append(total)
        ck_first.append(data["to_first_sample_s"])
        for peer, tot, first in (("carbontracker", ct_total, ct_first), ("codecarbon", cc_total, cc_first)):
            with tempfile.TemporaryDirectory() as d:
                total, data = _wall([str(peers.python_of(peer)), "-c", peers.SCRIPTS[(peer, "fixed")]], cwd=d)
            tot.append(total)
            first.append(data["to_first_sample_s"])
    b = median(base)
    k = median(ck_total) - b
    t_ct, t_cc = median(ct_total) - b, median(cc_total) - b
    better = min(t_ct, t_cc)
    row("fixed cost", "carbonkit: process start to first sample", median(ck_first) * 1e3, "ms")
    row("fixed cost", "carbonkit: whole tracked run minus `python -c pass`", k * 1e3, "ms",
        target=f"<= 1/4 of the better peer ({better / 4 * 1e3:.0f} ms)", note=env_note)
    row("fixed cost", "carbontracker: start to tracker ready / whole run", median(ct_first) * 1e3, "ms",
        note=f"whole run {t_ct * 1e3:.0f} ms; carbonkit {t_ct / k:.1f}x less")
    row("fixed cost", "codecarbon: start to first measurement / whole run", median(cc_first) * 1e3, "ms",
        note=f"whole run {t_cc * 1e3:.0f} ms; carbonkit {t_cc / k:.1f}x less")


# -- 3b. Tracker() + stop() around a 0.5 s run ----------------------------------------------------

CK_AROUND = """
import json, sys, time
import carbonkit
clock = time.perf_counter
a = clock()
t = carbonkit.Tracker(quiet=True, location=sys.argv[1])
b = clock()
time.sleep(0.5)
c = clock()
t.stop()
d = clock()
print(json.dumps({"beyond_run_s": (b - a) + (d - c)}))
"""


def around_run() -> None:
    """What tracking adds to a 0.5 s run, after ``import``: the constructor (plugin discovery, the
    first reading, threads) plus ``stop()``. Offline: DK's live API cannot be reached, so the run
    is priced at DK's static value and nothing may wait for the network."""
    log("3b. Tracker() + stop() around a 0.5 s run ...")
    ck: dict[str, list[float]] = {"DK": [], "SE-SE3": [], "WORLD": []}
    ct: list[float] = []
    cc: list[float] = []
    for _ in range(ROUNDS):
        for zone, values in ck.items():
            values.append(json.loads(py(CK_AROUND.replace("sys.argv[1]", repr(zone))).splitlines()[-1])["beyond_run_s"])
        for peer, values in (("carbontracker", ct), ("codecarbon", cc)):
            with tempfile.TemporaryDirectory() as d:
                out = subprocess.run([str(peers.python_of(peer)), "-c", peers.SCRIPTS[(peer, "around")]], cwd=d,
                                     capture_output=True, text=True, check=True, timeout=300)
            values.append(json.loads(out.stdout.splitlines()[-1])["beyond_run_s"])
    better = min(median(ct), median(cc))
    for zone, values in ck.items():
        row("around a 0.5 s run", f"carbonkit, location={zone}, network down: Tracker() + stop()", median(values) * 1e3,
            "ms", target="<= 150", note=f"{better / median(values):.0f}x less than the better peer")
    row("around a 0.5 s run", "carbontracker: constructor + epoch + stop()", median(ct) * 1e3, "ms")
    row("around a 0.5 s run", "codecarbon: constructor + start() + stop()", median(cc) * 1e3, "ms")


def location_probe() -> None:
    """What finding the location costs a machine outside any cloud (the resolve_location hook of
    carbonkit-location, run when no location is given): nothing listens at the metadata
    addresses, or they swallow the request and never answer, or this machine's real network."""
    log("3c. finding the location outside any cloud ...")
    import carbonkit_location
    from carbonkit.http import default_http_client

    sys.path.insert(0, str(ROOT / "tests"))
    from metadata_standins import Blackhole, refused_url

    client = default_http_client()  # built before the clock starts (the core builds its own once)
    cases: dict[str, list[float]] = {"connection refused": [], "endpoints that never answer": [], "this machine": []}
    try:
        with Blackhole() as hole:
            settings = {
                "connection refused": {f"CARBONKIT_{c}_METADATA_URL": refused_url() for c in ("AWS", "GCP", "AZURE")},
                "endpoints that never answer": {f"CARBONKIT_{c}_METADATA_URL": hole.url for c in ("AWS", "GCP", "AZURE")},
                "this machine": {},
            }
            for _ in range(ROUNDS):
                for case, values in cases.items():
                    started = time.perf_counter()
                    carbonkit_location.find_location(client, settings[case])
                    values.append(time.perf_counter() - started)
                hole.connections()
    except OSError as exc:  # a machine without a loopback interface
        log(f"   skipped: {exc}")
        return
    finally:
        client.close()
    for case, values in cases.items():
        row("finding the location", f"carbonkit-location outside any cloud: {case}", median(values) * 1e3, "ms",
            target="<= 550", note="the probes stop waiting at their overall deadline, 0.5 s")


# -- 4. import time -----------------------------------------------------------------------------

def import_time() -> None:
    log("4. import time ...")
    base, ck, ct, cc = [], [], [], []
    for _ in range(ROUNDS * 2):
        base.append(_wall([sys.executable, "-c", "pass"])[0])
        ck.append(_wall([sys.executable, "-c", "import carbonkit"])[0])
        ct.append(_wall([str(peers.python_of("carbontracker")), "-c", peers.SCRIPTS[("carbontracker", "import")]])[0])
        cc.append(_wall([str(peers.python_of("codecarbon")), "-c", peers.SCRIPTS[("codecarbon", "import")]])[0])
    b = median(base)
    k = median(ck) - b
    row("import", "import carbonkit", k * 1e3, "ms", target="<= 50")
    row("import", "import carbontracker.tracker", (median(ct) - b) * 1e3, "ms", note=f"{(median(ct) - b) / k:.0f}x carbonkit")
    row("import", "import codecarbon", (median(cc) - b) * 1e3, "ms", note=f"{(median(cc) - b) / k:.0f}x carbonkit")


# -- 5. end to end -------------------------------------------------------------------------------

E2E = """
import json, sys, threading, time
import numpy as np
track = sys.argv[1] == "1"
if track:
    import carbonkit
    import carbonkit.testing
    t = carbonkit.Tracker(epochs=10, quiet=True, location="SE-SE3", log_dir=sys.argv[2])
rng = np.random.default_rng(0)
x = rng.normal(size=(512, 512))
wall = time.perf_counter(); main_cpu = time.thread_time(); proc_cpu = time.process_time()
for epoch in range(10):
    if track: t.epoch_start()
    for _ in range(40):
        x = np.tanh(x @ x.T / 512.0)
    if track: t.epoch_end()
wall = time.perf_counter() - wall; main_cpu = time.thread_time() - main_cpu
if track: t.stop()
others = time.process_time() - proc_cpu - main_cpu
print(json.dumps({"wall": wall, "main_cpu": main_cpu, "other_cpu": others}))
"""


def end_to_end() -> None:
    log("5. end to end ...")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with_, without = [], []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as d:
            without.append(json.loads(py(E2E.replace("sys.argv[1]", "'0'").replace("sys.argv[2]", repr(d)), env=env)))
            with_.append(json.loads(py(E2E.replace("sys.argv[1]", "'1'").replace("sys.argv[2]", repr(d)), env=env)))
    share = median([w["other_cpu"] / w["main_cpu"] * 100 for w in with_])
    slow = (median([w["wall"] for w in with_]) / median([w["wall"] for w in without]) - 1) * 100
    row("end to end", "tracker threads' CPU time / workload CPU time (CPU estimate + run log)", share, "%",
        note=f"wall-clock difference {slow:+.1f}% (noise here is about +-2%)")


# -- 6. memory -------------------------------------------------------------------------------

def memory() -> None:
    """RSS added by a simulated 7-day run at 1 s with 12 devices, driven with a fake clock."""
    log("6. memory (7 simulated days) ...")
    code = textwrap.dedent(
        """
        import json, time, psutil, gc
        from datetime import datetime, timedelta, timezone
        import carbonkit
        from carbonkit.testing import FakePowerSource
        from carbonkit.records import IntensitySample
        proc = psutil.Process()
        t = carbonkit.Tracker(epochs=168, quiet=True, location="SE-SE3", interval_s=300, reporters=[],
                              sources=[FakePowerSource(watts=[100.0] * 4, name="f:a"), FakePowerSource(watts=[50.0] * 8, name="f:b", component="gpu")])
        time.sleep(0.3)
        import threading
        t._wake = threading.Event()  # park the sampler thread (300 s): this benchmark drives the ticks itself
        gc.collect()
        before = proc.memory_info().rss
        start = datetime.now(timezone.utc)
        seconds = 7 * 24 * 3600
        for s in range(1, seconds + 1):
            if s % 3600 == 1:
                t.epoch_start()
            if s % 900 == 0:  # an intensity fetch: current value and a 48 h forecast at 5 minutes
                now = start + timedelta(seconds=s)
                t._post("sample", (IntensitySample(time=now, g_per_kwh=100.0 + s % 97, zone="DK-DK2", source="bench", kind="live", period_s=300), "bench"))
                for k in range(576):
                    when = now + timedelta(minutes=5 * k)
                    t._post("sample", (IntensitySample(time=when, g_per_kwh=120.0, zone="DK-DK2", source="bench", kind="forecast", period_s=300), "bench"))
            if s % 3600 == 0:
                t.epoch_end()
            t._tick(float(s))
        gc.collect()
        after = proc.memory_info().rss
        report = t.stop()
        print(json.dumps({"added_mb": (after - before) / 2**20, "epochs": len(report.epochs), "kwh": report.it_energy_kwh}))
        """
    )
    a = time.time()
    out = json.loads(py(code).splitlines()[-1])
    row("memory", "RSS added by a simulated 7-day run, 1 s samples, 12 devices, hourly epochs, 15-min forecasts", out["added_mb"], "MB",
        target="<= 50", note=f"{out['epochs']} epochs; simulated in {time.time() - a:.0f} s")


# -- 7. run logs ----------------------------------------------------------------------------------

def run_logs() -> None:
    log("7. run logs (1,000) ...")
    import carbonkit
    import carbonkit.testing
    from carbonkit.testing import FakeIntensity, FakePowerSource

    with tempfile.TemporaryDirectory() as d:
        # One real run log (60 samples, 5 epochs, final report), copied 1,000 times.
        t = carbonkit.Tracker(
            epochs=5, sources=[FakePowerSource(watts=[100.0, 50.0])], provider=FakeIntensity(), quiet=True,
            location="XX", log_dir=d, interval_s=300, plugin_manager=carbonkit.testing.plugin_manager_for_tests(),
        )
        time.sleep(0.2)  # the sampler thread has opened the log and the intensity has arrived
        t._wake = threading.Event()  # park the sampler thread (300 s): the ticks are driven here
        for s in range(1, 61):
            if s % 12 == 1:
                t.epoch_start()
            if s % 12 == 0:
                t.epoch_end()
            t._tick(s * 0.01)
        t.stop()
        (src,) = Path(d).glob("*.jsonl")
        text = src.read_text()
        lines = text.splitlines(keepends=True)
        folder = Path(d) / "many"
        folder.mkdir()
        host = json.loads(lines[0])["host"]

        def copy(i: int, body: str) -> str:
            # One run per node of a cluster: copies of one log on one host would all overlap in
            # time, which report flags pair by pair (quadratic, and not what a project looks like).
            return body.replace(f'"host":"{host}"', f'"host":"node{i:04d}"')

        for i in range(1000):
            (folder / f"run{i:04d}.jsonl").write_text(copy(i, text))
        killed = Path(d) / "killed"
        killed.mkdir()
        for i in range(1000):
            (killed / f"run{i:04d}.jsonl").write_text(copy(i, "".join(lines[:-1])))
        from carbonkit.reports.aggregate import aggregate, load_runs

        done, recomputed, full = [], [], []
        for _ in range(ROUNDS):
            a = time.perf_counter()
            runs, notes = load_runs([folder])
            result = aggregate(runs, group_by=["host", "tag:example"])
            done.append(time.perf_counter() - a)
            assert len(runs) == 1000 and result.total.co2eq_g > 0, notes
            a = time.perf_counter()
            runs, notes = load_runs([killed])
            result = aggregate(runs)
            recomputed.append(time.perf_counter() - a)
            assert len(runs) == 1000 and result.total.co2eq_g > 0, notes
            a = time.perf_counter()
            total = sum(carbonkit.load_run(p).co2eq_g for p in sorted(folder.glob("*.jsonl")))
            full.append(time.perf_counter() - a)
            assert total > 0
    row("run logs", "load and aggregate 1,000 completed run logs (carbonkit report's path)", median(done), "s",
        note=f"{len(lines)} lines each; the final report is read from the last line")
    row("run logs", "load and aggregate 1,000 killed run logs (recomputed from raw readings)", median(recomputed), "s")
    row("run logs", "carbonkit.load_run on 1,000 completed logs, every line parsed", median(full), "s")


# -- output ---------------------------------------------------------------------------------------

def table() -> str:
    out = ["| group | figure | value | unit | target | note |", "| --- | --- | ---: | --- | --- | --- |"]
    for r in ROWS:
        v = r["value"]
        value = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        out.append(f"| {r['group']} | {r['figure']} | {value} | {r['unit']} | {r['target']} | {r['note']} |")
    return "\n".join(out)


def machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    import psutil

    return f"{model}, {os.cpu_count()} logical CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}"


def main() -> None:
    started = time.time()
    # Users run carbonkit with its bytecode cached; a machine that disables the cache would time the
    # compiler instead (each figure's first round warms the cache, the median is taken).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    versions = peers.ensure_installed(log)
    import carbonkit
    import carbonkit.testing

    figures = [hot_path, sampler, fixed_cost, around_run, location_probe, import_time, end_to_end, memory, run_logs]
    only = os.environ.get("BENCH_ONLY")
    for figure in figures:
        if only and figure.__name__ not in only.split(","):
            continue
        figure()
    extra = []
    try:
        if only and "scheduling" not in only.split(","):
            raise ImportError
        import bench_scheduling

        log("8. scheduling ...")
        extra = bench_scheduling.run(ROUNDS)
    except ImportError:
        pass
    for r in extra:
        row("scheduling", r["figure"], r["value"], r["unit"], note=r.get("note", ""))
    if not only or "predictors" in only.split(","):
        import bench_predictors

        log("9. predictors ...")
        for r in bench_predictors.run(ROUNDS):
            row("predictors", r["figure"], r["value"], r["unit"], note=r.get("note", ""))
    text = table()
    print(text)
    header = textwrap.dedent(
        f"""\
        # Benchmarks

        Produced by `make bench` (`benchmarks/run.py`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, in
        {time.time() - started:.0f} s. Machine: {machine()}. Python {platform.python_version()}, carbonkit
        {carbonkit.__version__}, carbontracker {versions['carbontracker']}, codecarbon {versions['codecarbon']} (each
        installed from the package index into its own environment by the benchmark). Every figure is the
        median of {ROUNDS} runs; peers are measured in the same run, interleaved round by round.

        How each figure is taken:
        1. Hot path: the median time of one `epoch_start()` + `epoch_end()` pair while the sampler runs
           (carbonkit: 20,000 pairs, 12 simulated devices; peers: 300 pairs, codecarbon's task API).
        2. Sampler: the CPU time (`time.thread_time`) of one sampler tick (read every source, account,
           resolve epochs, write the run-log line), over 2,000 ticks, with the real `rapl` plugin on a fake
           powercap tree (4 counters) and the real `nvml` plugin on a fake NVML module (8 GPUs).
        3. Fixed cost: wall time of a whole `python -c` run that builds a tracker and stops it, minus
           `python -c pass`; and the time from process start to the first sample (carbonkit reads its first
           sample in the constructor).
        3b. Around a 0.5 s run: in a fresh process, after `import`, the time `Tracker()` and `stop()` add to
           a 0.5 s run (plugin discovery, the first reading and the threads included; no network, so a
           live API such as DK's cannot answer and nothing may wait for it); for the peers, their
           constructor, start and stop around the same 0.5 s.
        4. Import: `python -c "import X"` minus `python -c pass`.
        5. End to end: 10 epochs of a CPU-bound numpy loop (one BLAS thread, about 5 s in all), tracked with the plugins this
           machine offers; the CPU time of every thread but the training thread, over the training thread's.
        6. Memory: resident memory added by a 7-day run at 1 s with 12 devices, hourly epochs and an intensity
           fetch (a live value and a 48-hour forecast at 5 minutes) every 15 minutes, the sampler driven by a
           fake clock.
        7. Run logs: 1,000 copies of one run log (60 samples, 5 epochs), each on its own host, read and
           aggregated as `carbonkit report` does (counting each device once per job and host), and
           `carbonkit.load_run` on each, summed.
        8. Scheduling: `benchmarks/bench_scheduling.py` (its docstring says how).
        9. Predictors: `benchmarks/bench_predictors.py`: the error of the predicted total energy,
           `|predicted / actual - 1|`, after 1, 2 and 3 epochs (5 and 10 in the note), of the default
           `adaptive` predictor and the paper's `linear` one, on synthetic traces
           (`carbonkit.testing.synthetic_trace`, 50 epochs) and on traces of real PyTorch CPU training runs
           recorded on this machine by `benchmarks/record_torch_traces.py` (`benchmarks/data/torch_traces.json`;
           energy as carbonkit measured or estimated it there, the machine's other load included); and the
           cost of reading `tracker.over_budget` next to an `epoch_start()` + `epoch_end()` pair (medians
           of 20,000 timed calls, the sampler running).

        Peers run without network: carbontracker's IP geolocation fails at once as it would offline, and
        codecarbon runs as `OfflineEmissionsTracker`.

        """
    )
    (ROOT / "docs" / "benchmarks.md").write_text(header + text + "\n")
    log(f"wrote docs/benchmarks.md in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
