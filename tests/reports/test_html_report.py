"""carbonkit report --html: a self-contained page, escaped strings, plots; checked in a real headless Chromium.

The browser tests need Chromium (``tests/install_test_tools.sh`` installs Debian's package).
Without it they fail when ``CI`` is set and are skipped otherwise. Chromium is driven through the
DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON),
so no websocket library is needed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from carbonkit.cli import main
from carbonkit.reports.aggregate import aggregate, load_runs, read_run
from carbonkit.reports.html import render_html, write_html
from carbonkit.reports.series import Envelope, run_series
from carbonkit.reports.svg import nice_ticks

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "project"
RANK0 = PROJECT / "train-vision-rank0.jsonl"
KILLED = PROJECT / "finetune-nlp-killed.jsonl"
EVIL = "<script>alert(1)</script>"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
]


def evil_log(tmp_path: Path) -> Path:
    """The killed fixture with markup in a device name, a tag, the host and a warning."""
    lines = KILLED.read_text().splitlines()
    head = json.loads(lines[0])
    head["sources"][0]["devices"] = [f"cpu {EVIL}"]
    head["tags"] = {"project": EVIL, 'quote"attr': "x' onload='alert(2)"}
    head["host"] = "<b>node</b>"
    body = [line for line in lines[1:-1]] + [json.dumps({"type": "warning", "message": f"device {EVIL} lost"})]
    path = tmp_path / "evil.jsonl"
    path.write_text("\n".join([json.dumps(head), *body]) + "\n")
    return path


# -- the page as text --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> str:
    runs, notes = load_runs([PROJECT])
    return render_html(aggregate(runs, group_by=["tag:project"], notes=notes))


def test_page_references_nothing_outside_itself(page):
    """No script, no src/href/url(), no @import; a CSP forbids every external resource."""
    assert "<script" not in page.lower()
    assert not re.search(r"\b(src|href|xlink:href|action|srcset)\s*=", page)
    assert "url(" not in page and "@import" not in page
    assert 'http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;' in page
    assert page.count("<svg") >= 10


def test_page_holds_summary_statement_provenance_and_plots(page):
    """The summary, the statement, a provenance table per run and each kind of plot are on the page."""
    for text in (
        "Carbon impact statement", "The experiments reported here used", "Provenance", "Power per device",
        "Carbon intensity", "Cumulative energy", "Cumulative CO2eq", "Energy per epoch",
        "prediction against actual", "CO2eq by tag:project", "fixture_dk &gt; constant:world",
        "duplicate: not counted in the totals", "incomplete: killed or still running",
    ):
        assert text in page, text


def test_strings_from_logs_are_escaped(tmp_path):
    """Markup in device names, tags, hosts and warnings is written as text, also inside SVG and attributes."""
    runs, _ = load_runs([evil_log(tmp_path)])
    html = render_html(aggregate(runs))
    assert "<script" not in html and "<b>node" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onload='" not in html and "x&#x27; onload=&#x27;alert(2)" in html


def test_cli_writes_the_page(tmp_path, capsys):
    """--html OUT writes the page and still prints the table; with --json the JSON stays the last line."""
    out = tmp_path / "report.html"
    assert main(["report", str(PROJECT), "--html", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["total"]["co2eq_g"] > 0
    assert out.read_text().startswith("<!DOCTYPE html>") and str(out) in captured.err


# -- series and chart helpers --------------------------------------------------------------------


def test_series_follow_the_raw_samples_and_end_at_the_report():
    """Energy-counter power is dJ/dt; the cumulative energy and CO2eq curves end at the report's figures."""
    run = read_run(RANK0)
    s = run_series(run)
    gpu0 = s.power_w["fixture_gpu:energy / gpu0 Fixture GPU 80GB (GPU-0000aaaa)"]
    assert max(v for _, v in gpu0) == pytest.approx(250.0) and min(v for _, v in gpu0) == pytest.approx(60.0)
    cpu = s.power_w["fixture_cpu:package / package-0"]
    assert {round(v) for _, v in cpu} <= {42, 65, 66, 67}
    assert s.energy_kwh[-1][1] == pytest.approx(run.report.energy_kwh, rel=1e-9)
    assert s.co2eq_g[-1][1] == pytest.approx(run.report.co2eq_g, rel=1e-9)
    assert set(s.intensity) == {("fixture_dk", "live"), ("fixture_dk", "forecast")}
    assert all(0 <= t0 < t1 <= s.duration_s for segs in s.intensity.values() for t0, t1, _ in segs)


def test_envelope_is_bounded_and_keeps_the_extremes():
    """A million points fold into at most 2 x max_bins bins; a one-sample spike survives."""
    env = Envelope(max_bins=100)
    for i in range(200_000):
        env.add(i * 0.5, 10.0 if i != 123_456 else 999.0)
    pts = env.envelope()
    assert len(env.bins) <= 200 and len(pts) <= 400
    assert max(v for _, v in pts) == 999.0 and min(v for _, v in pts) == 10.0
    assert [t for t, _ in pts] == sorted(t for t, _ in pts)


def test_nice_ticks_cover_the_range():
    """Ticks are 1, 2 or 5 times a power of ten and reach past the data's maximum."""
    assert nice_ticks(0, 69.55) == [0, 20, 40, 60, 80]
    assert nice_ticks(0, 0.00047)[-1] >= 0.00047


# -- a real browser ------------------------------------------------------------------------------


def chromium() -> str:
    """The Chromium binary, or fail (CI) / skip (locally) saying how to install it."""
    found = os.environ.get("CARBONKIT_TEST_CHROMIUM") or next(
        (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None
    )
    if found:
        return found
    reason = "Chromium is not installed: run tests/install_test_tools.sh (Debian: apt-get install chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


# A tiny launcher: put the two pipe ends on fds 3 and 4, where Chromium expects them.
_LAUNCH = (
    "import os, sys\n"
    "r, w = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Move the child's ends above the standard fds so dup2 onto 3 and 4 cannot clobber them.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        args = [*FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(child_r), str(child_w), binary, *args],
            pass_fds=(child_r, child_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(child_r)
        os.close(child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"Chromium did not answer in time; events so far: {self.events[-5:]}")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise AssertionError("Chromium closed the DevTools pipe")
            self._buf += chunk
        message, _, self._buf = self._buf.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def open(self, path: Path) -> dict:
        """Load ``path``; return the console messages, errors, requests and a DOM probe."""
        self.events = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        url = path.resolve().as_uri()
        self.call("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._recv(deadline))
        probe = self.call(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify({scripts: document.querySelectorAll('script').length,"
                " svgs: document.querySelectorAll('svg').length, text: document.body.innerText,"
                " title: document.title})",
                "returnByValue": True,
            },
            session=session,
        )
        events = [e for e in self.events if e.get("sessionId") == session]
        self.call("Target.closeTarget", {"targetId": target})
        return {
            "url": url,
            "dom": json.loads(probe["result"]["value"]),
            "console": [e["params"] for e in events if e.get("method") == "Runtime.consoleAPICalled"],
            "exceptions": [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"],
            "log_errors": [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"],
            "requests": [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"],
            "dialogs": [e["params"] for e in events if e.get("method") == "Page.javascriptDialogOpening"],
        }

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(chromium(), tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def assert_clean(result: dict) -> None:
    assert result["exceptions"] == []
    assert [c for c in result["console"] if c["type"] in ("error", "assert", "warning")] == []
    assert result["log_errors"] == []
    assert result["dialogs"] == []
    assert result["requests"] == [result["url"]], "the page asked for something besides itself"


@pytest.mark.slow
def test_browser_renders_the_report_cleanly_and_offline(browser, tmp_path):
    """Chromium loads the page with no console error, no exception, and no request but the page itself."""
    runs, notes = load_runs([PROJECT])
    path = tmp_path / "report.html"
    write_html(aggregate(runs, group_by=["tag:project"], notes=notes), path)
    result = browser.open(path)
    assert_clean(result)
    assert result["dom"]["scripts"] == 0 and result["dom"]["svgs"] >= 10
    assert "The experiments reported here used" in result["dom"]["text"]


@pytest.mark.slow
def test_browser_shows_script_in_a_device_name_as_text(browser, tmp_path):
    """A '<script>' in a device name or tag is text in the DOM: no script element, no dialog, no error."""
    runs, _ = load_runs([evil_log(tmp_path)])
    path = tmp_path / "evil.html"
    write_html(aggregate(runs), path)
    result = browser.open(path)
    assert_clean(result)
    assert result["dom"]["scripts"] == 0
    assert f"cpu {EVIL}" in result["dom"]["text"] and f"project={EVIL}" in result["dom"]["text"]


@pytest.mark.slow
def test_browser_check_catches_requests_and_console_errors(browser, tmp_path):
    """Negative control: a page that fetches and logs an error is caught by the same checks."""
    path = tmp_path / "bad.html"
    path.write_text('<!DOCTYPE html><html><body><img src="https://example.invalid/x.png">'
                    '<script>console.error("boom")</script></body></html>')
    result = browser.open(path)
    assert "https://example.invalid/x.png" in result["requests"]
    assert any(c["type"] == "error" for c in result["console"])
    with pytest.raises(AssertionError):
        assert_clean(result)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG into rows of raw pixel bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if channels == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3))
        prev = line
    return width, height, rows


@pytest.mark.slow
def test_screenshot_shows_the_plots(tmp_path):
    """A 1200x2000 screenshot is a real picture: many colours, and the plot colours are there."""
    binary = chromium()
    runs, notes = load_runs([PROJECT])
    html = tmp_path / "report.html"
    write_html(aggregate(runs, notes=notes), html)
    png = tmp_path / "shot.png"
    subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,2000", html.resolve().as_uri()],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )
    assert png.stat().st_size > 30_000
    width, height, rows = png_pixels(png)
    assert (width, height) == (1200, 2000)
    counts: dict[bytes, int] = {}
    for row in rows[::2]:
        for x in range(0, len(row), 6):
            px = row[x : x + 3]
            counts[px] = counts.get(px, 0) + 1
    assert len(counts) > 50, "the screenshot is nearly one colour"
    white = counts.get(b"\xff\xff\xff", 0)
    assert white < 0.95 * sum(counts.values())
    assert counts.get(bytes((0xD5, 0x5E, 0x00)), 0) > 500, "no CO2eq bars (#D55E00) on the first screen"
