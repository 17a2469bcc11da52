"""carbonkit plugin ``prometheus``: a run's energy and CO2eq for Prometheus, scraped or pushed.

Used only when configured (otherwise it offers nothing and imports nothing):

- ``CARBONKIT_PROMETHEUS_PORT``: serve ``/metrics`` on this port (``0``: a free port, see
  :func:`endpoints`), on ``CARBONKIT_PROMETHEUS_ADDRESS`` (default ``0.0.0.0``, every interface,
  as a pod's scrape needs; ``127.0.0.1`` keeps it local). The endpoint belongs to the process:
  a second tracker in the same process reuses it, and the figures of finished runs stay
  scrapable until the process exits, so a scrape after the run still sees its final values.
- ``CARBONKIT_PROMETHEUS_PUSHGATEWAY``: the URL of a Prometheus Pushgateway; the run's metrics
  are pushed (grouping key ``job`` and ``host``) at the start, after every epoch and at the end,
  each push bounded by :data:`PUSH_TIMEOUT_S`, from a thread of the exporter's own.

Metric names follow Prometheus conventions (``carbonkit_`` prefix, base units, ``_total`` for
counters); the table is in the README. Every series has the labels ``host``, ``job`` and
``zone``; component and device series add ``component``, ``device`` and ``method``. Metrics
live in a private ``CollectorRegistry``: the application's default registry is never touched.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from carbonkit import ReporterBase, Unavailable
from carbonkit._redact import redact_text
from carbonkit.exporting import Board, BoundedSender, RunFigures, RunIdentity, identify

from . import ADDRESS_ENV, PORT_ENV, PUSHGATEWAY_ENV

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from carbonkit import EpochRecord, IntensitySample, Prediction, Report, RunStart

__all__ = [
    "ADDRESS_ENV",
    "PORT_ENV",
    "PUSHGATEWAY_ENV",
    "PUSH_TIMEOUT_S",
    "PrometheusExporter",
    "endpoints",
    "offer",
]

_logger = logging.getLogger(__name__)

PLUGIN = "prometheus"
#: Seconds one push to the gateway may take (connect and answer).
PUSH_TIMEOUT_S = 5.0
#: Seconds ``close()`` waits for the last push.
CLOSE_TIMEOUT_S = 8.0
_RUN = ("host", "job", "zone")
_DEVICE = ("component", "device", "method", "host", "job", "zone")
_COMPONENT = ("component", "method", "host", "job", "zone")

# One endpoint (and its board of runs) per (address, port) for the whole process: trackers come
# and go. Pushes read a board of their own, each push only its run's identity.
_PUSH_BOARD = Board()
_LOCK = threading.Lock()
_ENDPOINTS: dict[tuple[str, int], _Endpoint] = {}


class _Collector:
    """Yields the board's figures as metric families at each scrape or push."""

    def __init__(self, board: Board, only: RunIdentity | None = None) -> None:
        self.board = board
        self.only = only

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        def counter(name: str, doc: str, labels: Sequence[str], unit: str = "") -> Any:
            return CounterMetricFamily(name, doc, labels=labels, unit=unit)

        def gauge(name: str, doc: str, labels: Sequence[str], unit: str = "") -> Any:
            return GaugeMetricFamily(name, doc, labels=labels, unit=unit)

        energy = counter("carbonkit_energy_joules", "Energy of the run including PUE (finished epochs while it "
                         "runs, the report's total at the end)", _RUN, "joules")
        it_energy = counter("carbonkit_it_energy_joules", "Energy of the devices before PUE (finished epochs while "
                            "it runs, the report's total at the end)", _RUN, "joules")
        co2 = gauge("carbonkit_co2eq_grams", "Grams CO2eq emitted by the run so far (finished epochs, priced when "
                    "they ended, while it runs; the report's total, re-priced, at the end)", _RUN, "grams")
        epochs = counter("carbonkit_epochs", "Finished epochs", _RUN)
        component = counter("carbonkit_component_energy_joules", "Energy of each component including PUE, "
                            "from the report at the end of the run", _COMPONENT, "joules")
        component_it = counter("carbonkit_component_it_energy_joules", "Energy of each component before PUE, "
                               "from the report at the end of the run", _COMPONENT, "joules")
        device = counter("carbonkit_device_energy_joules", "Machine-wide energy of each device before PUE and "
                         "attribution, integrated from the samples as they arrive", _DEVICE, "joules")
        power = gauge("carbonkit_device_power_watts", "Latest power of each device", _DEVICE, "watts")
        intensity = gauge("carbonkit_grid_intensity_grams_per_kilowatt_hour", "Carbon intensity of electricity in "
                          "force (grams CO2eq per kWh), by kind: live, forecast or average", (*_RUN, "kind"))
        pue = gauge("carbonkit_pue_ratio", "Power usage effectiveness applied to the run", _RUN)
        p_energy = gauge("carbonkit_predicted_energy_joules", "Predicted energy of the whole run including PUE",
                         _RUN, "joules")
        p_co2 = gauge("carbonkit_predicted_co2eq_grams", "Predicted grams CO2eq of the whole run", _RUN, "grams")
        p_time = gauge("carbonkit_predicted_duration_seconds", "Predicted duration of the whole run", _RUN,
                       "seconds")
        active = gauge("carbonkit_run_active", "1 while a run with these labels is measuring, else 0", _RUN)
        for ident, fig, is_active in self.board.runs():
            if self.only is not None and ident != self.only:
                continue
            run = [ident.host, ident.job, ident.zone]
            energy.add_metric(run, fig["energy_j"])
            it_energy.add_metric(run, fig["it_energy_j"])
            co2.add_metric(run, fig["co2eq_g"])
            epochs.add_metric(run, fig["epochs"])
            pue.add_metric(run, fig["pue"])
            active.add_metric(run, 1.0 if is_active else 0.0)
            for (comp, method), (e, it) in sorted(fig["components"].items()):
                component.add_metric([comp, method, *run], e)
                component_it.add_metric([comp, method, *run], it)
            for (comp, dev, method), joules in sorted(fig["devices"].items()):
                device.add_metric([comp, dev, method, *run], joules)
            for (comp, dev, method), watts in sorted(fig["power_w"].items()):
                power.add_metric([comp, dev, method, *run], watts)
            if fig["intensity"] is not None:
                intensity.add_metric([*run, fig["intensity"][1]], fig["intensity"][0])
            if fig["prediction"] is not None:
                p_energy.add_metric(run, fig["prediction"][0])
                p_co2.add_metric(run, fig["prediction"][1])
                p_time.add_metric(run, fig["prediction"][2])
        yield from (energy, it_energy, co2, epochs, component, component_it, device, power, intensity, pue,
                    p_energy, p_co2, p_time, active)


class _Endpoint:
    """A ``/metrics`` server of this process, on a private registry."""

    def __init__(self, address: str, port: int) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        self.registry = CollectorRegistry(auto_describe=False)
        self.board = Board()  # only the runs served here: two ports never show one run twice
        self.registry.register(_Collector(self.board))
        self.server, self.thread = start_http_server(port, addr=address, registry=self.registry)
        self.address = address
        self.port = int(self.server.server_address[1])
        _logger.info("carbonkit: Prometheus metrics on http://%s:%d/metrics", address, self.port)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "") else self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/metrics"


def endpoints() -> list[str]:
    """Return the URL of every ``/metrics`` endpoint this process serves (to find a port 0)."""
    with _LOCK:
        return [e.url for e in _ENDPOINTS.values()]


def _endpoint(address: str, port: int) -> _Endpoint:
    with _LOCK:
        found = _ENDPOINTS.get((address, port))
        if found is None:
            found = _Endpoint(address, port)
            _ENDPOINTS[(address, port)] = found
            if port == 0:
                _ENDPOINTS[(address, found.port)] = found
        return found


class PrometheusExporter(ReporterBase):
    """Feeds the process's Prometheus board with one run, and pushes it when a gateway is set.

    :param endpoint: The ``/metrics`` endpoint serving this run (None: none).
    :param gateway: The Pushgateway URL (None: no push).
    :param environ: The environment the run's identity is read from (tests pass their own).
    """

    name = PLUGIN

    def __init__(self, endpoint: _Endpoint | None = None, gateway: str | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.endpoint_url = endpoint.url if endpoint is not None else None
        self.gateway = gateway
        self.environ = environ
        self.warn: Callable[[str], None] | None = None
        self.identity: RunIdentity | None = None
        self._figures: RunFigures | None = None
        self._sender: BoundedSender | None = None
        self._push_registry: CollectorRegistry | None = None

    def on_start(self, run: RunStart) -> None:
        self.identity = identify(run, self.environ)
        self._figures = RunFigures(self.identity, run)
        for board in self._boards():
            board.add(self._figures)
        if self.gateway is not None:
            from prometheus_client import CollectorRegistry

            self._push_registry = CollectorRegistry(auto_describe=False)
            self._push_registry.register(_Collector(_PUSH_BOARD, only=self.identity))
            self._sender = BoundedSender(f"the Prometheus push gateway {redact_text(self.gateway)}", self.warn,
                                         latest_only=True)
            self._push("the first push")

    def on_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None:
        if self._figures is not None:
            self._figures.add_sample(t_s, readings)

    def on_intensity(self, sample: IntensitySample) -> None:
        if self._figures is not None:
            self._figures.set_intensity(sample)

    def on_epoch(self, epoch: EpochRecord) -> None:
        if self._figures is not None:
            self._figures.add_epoch(epoch)
            self._push(f"the push after epoch {epoch.index}")

    def on_prediction(self, prediction: Prediction) -> None:
        if self._figures is not None:
            self._figures.set_prediction(prediction)

    def on_report(self, report: Report) -> None:
        if self._figures is not None:
            self._figures.set_report(report)
            self._push("the final push")

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close(CLOSE_TIMEOUT_S)
        if self._figures is not None:
            for board in self._boards():
                board.retire(self._figures)

    def _boards(self) -> list[Board]:
        boards = [self.endpoint.board] if self.endpoint is not None else []
        return boards + ([_PUSH_BOARD] if self.gateway is not None else [])

    def _push(self, what: str) -> None:
        if self._sender is None or self._push_registry is None or self.identity is None:
            return
        from prometheus_client import push_to_gateway

        registry, ident = self._push_registry, self.identity
        assert self.gateway is not None
        gateway, handler = _gateway_and_handler(self.gateway)

        def push() -> None:
            push_to_gateway(gateway, job=ident.job, registry=registry, grouping_key={"host": ident.host},
                            timeout=PUSH_TIMEOUT_S, handler=handler)

        self._sender.submit(what, push)


def _gateway_and_handler(url: str) -> tuple[str, Callable[..., Callable[[], None]]]:
    """Split ``user:password@`` off the gateway URL into HTTP basic authentication."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    from prometheus_client.exposition import basic_auth_handler, default_handler

    parts = urlsplit(url)
    if parts.username is None:
        return url, default_handler
    user, password = unquote(parts.username), unquote(parts.password or "")
    netloc = parts.hostname or ""
    netloc = f"[{netloc}]" if ":" in netloc else netloc
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                data: bytes) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)

    return bare, handler


def _port(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ValueError(f"{PORT_ENV}={text!r} is not a port: use a whole number from 1 to 65535 (0: any free port)")
    return int(value)


def _local_rank(env: Mapping[str, str]) -> int:
    for name in ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"):
        value = (env.get(name) or "").strip()
        if value.isdigit():
            return int(value)
    return 0


def offer() -> list[PrometheusExporter | Unavailable]:
    """Offer the exporter when ``CARBONKIT_PROMETHEUS_PORT`` or ``..._PUSHGATEWAY`` is set; else nothing."""
    env = os.environ
    port_text = (env.get(PORT_ENV) or "").strip()
    gateway = (env.get(PUSHGATEWAY_ENV) or "").strip() or None
    if not port_text and gateway is None:
        return []
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return [Unavailable(plugin=PLUGIN, reason="prometheus_client is not installed",
                            hint="pip install carbonkit-prometheus (it brings prometheus-client)", warn=True)]
    if gateway is not None and not gateway.lower().startswith(("http://", "https://")):
        return [Unavailable(plugin=PLUGIN, reason=f"{PUSHGATEWAY_ENV}={redact_text(gateway)!r} is not an http(s) URL",
                            hint="e.g. http://pushgateway.monitoring:9091", warn=True)]
    endpoint = None
    if port_text:
        try:
            port = _port(port_text)
        except ValueError as exc:
            return [Unavailable(plugin=PLUGIN, reason=str(exc), warn=True)]
        address = (env.get(ADDRESS_ENV) or "").strip() or "0.0.0.0"
        try:
            endpoint = _endpoint(address, port)
        except OSError as exc:
            rank = _local_rank(env)
            if rank > 0 and gateway is None:  # another process of this job on this host serves it
                return [Unavailable(plugin=PLUGIN, reason=f"port {port} is taken (local rank {rank}: another "
                                    "process of the job serves the host's endpoint)")]
            return [Unavailable(plugin=PLUGIN, reason=f"cannot serve /metrics on {address}:{port}: {exc}",
                                hint=f"choose a free port in {PORT_ENV}, or set it for one process per host",
                                warn=True)]
    return [PrometheusExporter(endpoint=endpoint, gateway=gateway)]
