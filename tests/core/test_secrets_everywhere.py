"""A token set in the environment never reaches any output: not the report, the run log, the
console, logging, an error, nor ``carbonkit plugins`` / ``intensity`` / ``zones``, even when a
provider fails with the token in its exception text and in the URL it called."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import httpx
import pytest
from localserver import LocalServer, QuietHandler, send

import carbonkit
from carbonkit import IntensityUnavailable, Unavailable
from carbonkit._redact import REDACTED, redact_text, register_secret, secret_values
from carbonkit.cli import main
from carbonkit.http import get_json
from carbonkit.testing import FakePowerSource

TOKEN = "tok-9f8e7d6c5b4a3921"
PASSWORD = "hunter2-correct-horse"
UNAUTHORIZED = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0 Transitional//EN">\n<html><head><title>Error</title></head>'
    "<body>Unauthorized. Missing or invalid security token {token}</body></html>"
)


class EchoingServer(LocalServer):
    """127.0.0.1 stand-in answering 401 with an HTML page that echoes the token it was sent
    (the ENTSO-E 401 page, plus the echo a careless proxy adds)."""

    def __init__(self) -> None:
        outer = self
        self.paths: list[str] = []

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.paths.append(self.path)
                send(self, 401, "text/html", UNAUTHORIZED.format(token=self.path).encode())

        self.serve(Handler)

    @property
    def url(self) -> str:
        return self.root


class HttpProvider:
    """Calls the stand-in through carbonkit.http with the token in the query."""

    name = "leaky:http"
    zones = frozenset({"XX"})
    priority = 100

    def __init__(self, client, url: str) -> None:
        self.client, self.url = client, url

    def current(self, zone):
        get_json(self.client, f"{self.url}/api?securityToken={TOKEN}&documentType=A75", provider=self.name, zone=zone)

    def forecast(self, zone, start, end):
        return []


class TextProvider:
    """Raises with the token in its own words, in a URL, and URL-encoded."""

    name = "leaky:text"
    zones = frozenset({"XX"})
    priority = 90

    def current(self, zone):
        raise IntensityUnavailable(
            f"login as admin:{PASSWORD} failed with token {TOKEN} at https://api.example/v3?api_key={TOKEN} "
            f"(sent {quote(TOKEN + '/x', safe='')})"
        )

    def forecast(self, zone, start, end):
        raise IntensityUnavailable(f"forecast refused for {TOKEN}")


class KeylessPlugin:
    """Offers nothing without its key, and says how to get one; its other hook fails loudly."""

    @carbonkit.hookimpl
    def register_intensity_providers(self):
        return [Unavailable(plugin="keyless", reason="no CARBONKIT_KEYLESS_TOKEN set",
                            hint="how to get one: https://example.org/register")]

    @carbonkit.hookimpl
    def register_reporters(self):
        raise RuntimeError(f"reporter could not start with token {TOKEN}")


@pytest.fixture
def secrets_set(monkeypatch):
    monkeypatch.setenv("CARBONKIT_LEAKY_TOKEN", TOKEN)
    monkeypatch.setenv("CARBONKIT_LEAKY_PASSWORD", PASSWORD)


def assert_clean(text: str, where: str) -> None:
    for secret in (TOKEN, PASSWORD, quote(TOKEN, safe="")):
        assert secret not in text, f"{secret!r} leaked into {where}"


def test_redaction_by_name_and_in_urls_needs_no_environment():
    text = "?securityToken=abcd1234&x=1 and https://u:pw12345@h/ and Authorization: Bearer abcdefghijk"
    assert redact_text(text) == "?securityToken=***&x=1 and https://u:***@h/ and Authorization: Bearer ***"


def test_values_of_secret_variables_are_redacted_wherever_they_appear(secrets_set, monkeypatch):
    monkeypatch.setenv("PWD", "/home/user/project")  # not a password: only the listed suffixes count
    for suffix in ("_TOKEN", "_KEY", "_API_KEY", "_PASSWORD", "_SECRET"):
        monkeypatch.setenv(f"SOMEPLUGIN{suffix}", f"value-of{suffix.lower()}")
        assert redact_text(f"sent value-of{suffix.lower()} to the server") == f"sent {REDACTED} to the server"
    assert redact_text("in /home/user/project") == "in /home/user/project"
    assert redact_text(f"a {quote(TOKEN + '/', safe='')} b") == f"a {REDACTED}%2F b"
    monkeypatch.setenv("SHORT_TOKEN", "ab")  # too short to hunt for by value
    assert redact_text("ab cab") == "ab cab"


def test_a_registered_secret_is_redacted():
    secret = "session-3c1e9a7f55"
    assert secret not in secret_values()
    register_secret(secret)
    assert redact_text(f"renewed {secret}") == f"renewed {REDACTED}"


def test_no_output_of_a_run_holds_the_token(secrets_set, tmp_path, capsys, caplog):
    with EchoingServer() as server, caplog.at_level(logging.DEBUG):
        client = httpx.Client(timeout=5.0)  # a client of the application's own: its logging is filtered too
        t = carbonkit.Tracker(
            sources=[FakePowerSource()], location="XX", interval_s=0.01, log_dir=tmp_path, quiet=False,
            provider=[HttpProvider(client, server.url), TextProvider()], http_client=client,
        )
        assert t._first_fetch.wait(30)
        report = t.stop()
        client.close()
    assert server.paths and TOKEN in server.paths[0]  # it really was sent, and echoed back
    reasons = [f.reason for f in report.intensity.fallbacks]
    assert any("401" in r for r in reasons) and any(REDACTED in r for r in reasons)
    outputs = {
        "report JSON": json.dumps(report.to_dict()),
        "run log": "".join(p.read_text() for p in tmp_path.glob("*.jsonl")),
        "console": capsys.readouterr().err,
        "logging": caplog.text,
        "warnings": "\n".join(report.warnings),
    }
    assert "leaky:http" in outputs["run log"] and "leaky:text" in outputs["console"]
    for where, text in outputs.items():
        assert_clean(text, where)


def test_carbonkit_plugins_shows_the_hint_and_no_token(secrets_set, monkeypatch, capsys):
    import carbonkit.plugins as plugins

    real = plugins.make_plugin_manager
    monkeypatch.setattr(plugins, "make_plugin_manager",
                        lambda **kw: real(plugins=[KeylessPlugin()], entrypoints=False))
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "unavailable: no CARBONKIT_KEYLESS_TOKEN set (how to get one: https://example.org/register)" in text
    assert "reporter could not start with token ***" in text
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    notes = [u for p in data["plugins"] for u in p["unavailable"]]
    assert {"reason": "no CARBONKIT_KEYLESS_TOKEN set", "hint": "how to get one: https://example.org/register",
            "warn": False} in notes
    assert_clean(text + json.dumps(data), "carbonkit plugins")


def test_carbonkit_intensity_and_errors_hold_no_token(secrets_set, monkeypatch, capsys):
    from carbonkit import _cli_intensity
    from carbonkit.testing import plugin_manager_for_tests

    class Plugin:
        @carbonkit.hookimpl
        def register_intensity_providers(self):
            return [TextProvider()]

    real_query = _cli_intensity.query
    monkeypatch.setattr(_cli_intensity, "query",
                        lambda *a, **kw: real_query(*a, pm=plugin_manager_for_tests(Plugin()), **kw))
    assert main(["intensity", "XX", "--forecast", "2", "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out.splitlines()[-1])
    assert any("leaky:text failed" in w for w in data["warnings"])
    assert_clean(out.out + out.err, "carbonkit intensity --json")
    assert main(["intensity", "XX"]) == 0
    out = capsys.readouterr()
    assert "leaky:text failed" in out.out
    assert_clean(out.out + out.err, "carbonkit intensity")


def test_a_carbonkit_error_naming_the_token_is_redacted(secrets_set, capsys):
    assert main(["run", "--location", TOKEN, "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "is not" in err
    assert_clean(err, "the error of carbonkit run")
