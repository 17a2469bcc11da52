"""The location plugin against local stand-ins of the AWS, GCP and Azure metadata services
(tests/metadata_standins.py), a machine outside any cloud, the region table, IP geolocation
(opt-in) and a whole Tracker() run."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import httpx
import pytest
from metadata_standins import (
    IP_API_COM,
    IP_API_COM_FAIL,
    IPAPI_CO,
    IPAPI_CO_RATE_LIMITED,
    Blackhole,
    GeolocationStandIn,
    MetadataStandIn,
    refused_url,
)

import carbonkit
import carbonkit_intensity_static
import carbonkit_location
from carbonkit import ConfigError, ResolvedLocation, hookimpl
from carbonkit.http import default_http_client
from carbonkit.runlog import read_header
from carbonkit.testing import FakePowerSource, assert_plugin_valid
from carbonkit_location import Endpoints, find_location, probe_clouds, region_table, zone_for_region
from carbonkit_location.geolocation import parse_answer, zone_for_place
from carbonkit_location.metadata import aws_region, azure_region, gcp_region

# A loaded two-core machine can take a while to answer on 127.0.0.1: tests that expect an answer
# give the probes the longest deadline accepted; tests that expect none use the default.
SLOW_OK = 1.5


@pytest.fixture
def client():
    c = default_http_client()
    yield c
    c.close()


def env_for(aws: str | None = None, gcp: str | None = None, azure: str | None = None, **extra: str) -> dict[str, str]:
    """Settings pointing every metadata service at a local URL (refused where not given)."""
    env = {
        "CARBONKIT_AWS_METADATA_URL": aws or refused_url(),
        "CARBONKIT_GCP_METADATA_URL": gcp or refused_url(),
        "CARBONKIT_AZURE_METADATA_URL": azure or refused_url(),
    }
    env.update(extra)
    return env


# -- AWS ----------------------------------------------------------------------------------------


def test_aws_stand_in_refuses_a_metadata_get_without_a_token(client):
    """The stand-in is faithful: IMDSv2-only instances answer 401 to a token-less GET."""
    with MetadataStandIn("aws") as aws:
        response = client.get(f"{aws.url}/latest/meta-data/placement/region")
    assert response.status_code == 401
    assert "401 - Unauthorized" in response.text


def test_aws_region_through_the_imdsv2_token_flow(client):
    """PUT a token with its TTL header, then GET the region with the token: eu-west-1."""
    with MetadataStandIn("aws", region="eu-west-1") as aws:
        found = aws_region(client, aws.url, SLOW_OK)
    assert found == carbonkit_location.CloudRegion("aws", "eu-west-1")
    (put_method, put_path, put_headers), (get_method, get_path, get_headers) = aws.requests
    assert (put_method, put_path) == ("PUT", "/latest/api/token")
    assert put_headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
    assert (get_method, get_path) == ("GET", "/latest/meta-data/placement/region")
    assert get_headers["x-aws-ec2-metadata-token"] in aws.tokens


def test_aws_without_placement_region_reads_the_availability_zone(client):
    """An instance answering 404 for placement/region is asked its availability zone (eu-central-1a)."""
    with MetadataStandIn("aws", region="eu-central-1", aws_region_path=False) as aws:
        found = aws_region(client, aws.url, SLOW_OK)
    assert found == carbonkit_location.CloudRegion("aws", "eu-central-1")
    assert [p for _, p, _ in aws.requests][-1] == "/latest/meta-data/placement/availability-zone"


def test_aws_never_sends_a_tokenless_imdsv1_request_when_the_token_is_refused(client):
    """A refused token PUT (403, IMDS turned off) ends the AWS probe: no IMDSv1 GET follows."""
    with MetadataStandIn("aws", body=(403, "text/html", b"<html><h1>403 - Forbidden</h1></html>")) as aws:
        assert aws_region(client, aws.url, SLOW_OK) is None
    assert [(m, p) for m, p, _ in aws.requests] == [("PUT", "/latest/api/token")]


# -- GCP ----------------------------------------------------------------------------------------


def test_gcp_stand_in_refuses_a_request_without_the_flavor_header(client):
    with MetadataStandIn("gcp") as gcp:
        response = client.get(f"{gcp.url}/computeMetadata/v1/instance/zone")
    assert response.status_code == 403
    assert "Missing Metadata-Flavor:Google header." in response.text


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("projects/123456789012/zones/us-central1-a", "us-central1"),
        ("projects/42/zones/europe-west4-b", "europe-west4"),
        ("projects/7/zones/northamerica-northeast2-c", "northamerica-northeast2"),
    ],
)
def test_gcp_region_is_the_zone_without_its_letter(client, zone, region):
    with MetadataStandIn("gcp", gcp_zone=zone) as gcp:
        found = gcp_region(client, gcp.url, SLOW_OK)
    assert found == carbonkit_location.CloudRegion("gcp", region)
    assert gcp.requests[0][2]["metadata-flavor"] == "Google"


# -- Azure --------------------------------------------------------------------------------------


def test_azure_stand_in_requires_the_metadata_header_and_an_api_version(client):
    with MetadataStandIn("azure") as azure:
        no_header = client.get(f"{azure.url}/metadata/instance/compute/location", params={"api-version": "2021-02-01"})
        no_version = client.get(f"{azure.url}/metadata/instance/compute/location", headers={"Metadata": "true"})
    assert no_header.status_code == 400 and "Required metadata header not specified" in no_header.json()["error"]
    assert no_version.status_code == 400 and "newest-versions" in no_version.json()


@pytest.mark.parametrize(
    ("location", "expected"),
    [("westeurope", "westeurope"), ("West Europe", "westeurope"), ("SouthIndia", "southindia")],
)
def test_azure_location_is_read_and_normalised(client, location, expected):
    with MetadataStandIn("azure", azure_location=location) as azure:
        found = azure_region(client, azure.url, SLOW_OK)
    assert found == carbonkit_location.CloudRegion("azure", expected)
    method, path, headers = azure.requests[0]
    assert path.startswith("/metadata/instance/compute/location?") and "api-version=2021-02-01" in path
    assert "format=text" in path and headers["metadata"] == "true"


def test_azure_without_the_location_leaf_reads_the_full_document(client):
    with MetadataStandIn("azure", azure_location="uksouth", azure_leaf=False) as azure:
        found = azure_region(client, azure.url, SLOW_OK)
    assert found == carbonkit_location.CloudRegion("azure", "uksouth")
    assert azure.requests[-1][1].startswith("/metadata/instance?")


# -- bad answers, and a machine outside any cloud ------------------------------------------------

BAD_BODIES = [
    (200, "text/html", b"<!DOCTYPE html><html><body>Welcome to the hotel Wi-Fi</body></html>"),
    (200, "application/octet-stream", b"\x00\xff\xfe garbage"),
    (200, "text/plain", b""),
    (500, "text/html", b"<html><h1>500 Internal Server Error</h1></html>"),
    (200, "application/json", b'{"compute": {"location": 42}}'),
    (302, "text/html", b""),
]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
@pytest.mark.parametrize("body", BAD_BODIES, ids=["html", "junk", "empty", "500", "wrong-json", "redirect-nowhere"])
def test_an_answer_not_in_the_documented_shape_is_no_location_and_a_debug_note(client, caplog, cloud, body):
    probe = {"aws": aws_region, "gcp": gcp_region, "azure": azure_region}[cloud]
    caplog.set_level(logging.DEBUG, logger="carbonkit.location")
    with MetadataStandIn(cloud, body=body) as server:
        assert probe(client, server.url, SLOW_OK) is None
    assert server.requests  # it was asked
    notes = [r for r in caplog.records if r.name == "carbonkit.location"]
    assert notes and all(r.levelno == logging.DEBUG for r in notes)


def test_no_cloud_connection_refused_everywhere(client):
    """A laptop: nothing listens at any metadata address; no location."""
    assert find_location(client, env_for()) is None


def test_no_cloud_blackholed_endpoints_are_abandoned(client):
    """Endpoints that accept the connection and never answer: reached, abandoned, no location."""
    with Blackhole() as hole:
        found = find_location(client, env_for(aws=hole.url, gcp=hole.url, azure=hole.url))
        reached = hole.connections()
    assert found is None
    assert reached >= 1


class HangingTransport(httpx.BaseTransport):
    """Blocks every request until released, as a DNS lookup of metadata.google.internal can
    (no HTTP timeout bounds name resolution)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.entered.release()
        self.release.wait()
        return httpx.Response(404)


def test_probes_stuck_beyond_any_timeout_do_not_hold_the_caller():
    """The caller returns None at the overall deadline while all three probes are still stuck."""
    transport = HangingTransport()
    client = httpx.Client(transport=transport)
    try:
        found = probe_clouds(client, Endpoints(), deadline_s=0.05)
        still_blocked = not transport.release.is_set()
        for _ in range(3):  # every probe did start (each is stuck in its request)
            assert transport.entered.acquire(timeout=30)
    finally:
        transport.release.set()
        client.close()
    assert found is None and still_blocked


def test_the_first_cloud_to_answer_wins_over_one_that_hangs(client):
    """On AWS the GCP probe may hang on DNS: the AWS answer is used without waiting for it."""
    with Blackhole() as hole, MetadataStandIn("aws", region="us-east-1") as aws:
        found = probe_clouds(client, Endpoints(aws=aws.url, gcp=hole.url, azure=refused_url()), SLOW_OK)
    assert found == carbonkit_location.CloudRegion("aws", "us-east-1")


# -- the region table ------------------------------------------------------------------------------


def test_every_zone_of_the_region_table_is_a_zone_carbonkit_knows():
    known = set(carbonkit_intensity_static.known_zones())
    table = region_table()
    assert {cloud for cloud, _ in table} == {"aws", "gcp", "azure"}
    unknown = sorted(f"{row.cloud} {row.region} -> {row.zone}" for row in table.values() if row.zone not in known)
    assert unknown == []


def test_the_region_table_cites_its_sources_and_bases():
    path = Path(carbonkit_location.__file__).parent / "data" / "cloud-regions.json"
    doc = json.loads(path.read_text())
    assert set(doc["sources"]) == {"aws", "gcp", "azure"}
    assert set(doc["bases"]) == {"ccf", "location", "country"}
    for cloud, rows in doc["regions"].items():
        names = [r["region"] for r in rows]
        assert len(names) == len(set(names)), cloud
        assert all(r["location"] and r["basis"] in doc["bases"] for r in rows)
    assert (path.parent / "NOTICE").read_text().count("Apache License, Version 2.0") == 1


@pytest.mark.parametrize(
    ("cloud", "region", "zone"),
    [
        ("aws", "eu-west-1", "IE"),
        ("aws", "us-east-1", "US-MIDA-PJM"),
        ("aws", "eu-north-1", "SE-SE3"),
        ("gcp", "us-central1", "US-MIDW-MISO"),
        ("gcp", "europe-west4", "NL"),
        ("azure", "westeurope", "NL"),
        ("azure", "West Europe", "NL"),
        ("azure", "WestEurope", "NL"),
        ("azure", "north_europe", "IE"),
    ],
)
def test_regions_map_to_the_zone_of_their_grid(cloud, region, zone):
    row = zone_for_region(cloud, region)
    assert row is not None and row.zone == zone


def test_a_region_the_table_does_not_know_is_no_location_and_a_warning(client, caplog):
    with MetadataStandIn("aws", region="xx-nowhere-9") as aws:
        found = find_location(client, env_for(aws=aws.url, CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK)))
    assert found is None
    assert any("xx-nowhere-9" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_country_only_region_says_it_is_coarse(client):
    with MetadataStandIn("aws", region="us-gov-west-1") as aws:
        found = find_location(client, env_for(aws=aws.url, CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK)))
    assert found == ResolvedLocation(zone="US", how="cloud metadata", detail="aws us-gov-west-1 (country only: coarse)")


# -- find_location: settings -----------------------------------------------------------------------


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_base_urls_with_a_trailing_slash_work(client, cloud):
    with MetadataStandIn(cloud) as server:
        env = env_for(**{cloud: server.url + "/"}, CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK))
        found = find_location(client, env)
    expected = {"aws": "aws eu-west-1", "gcp": "gcp us-central1", "azure": "azure westeurope"}[cloud]
    assert found is not None and found.describe() == f"cloud metadata: {expected}"
    assert all("//" not in path for _, path, _ in server.requests)


def test_cloud_metadata_can_be_turned_off(client):
    with MetadataStandIn("aws") as aws:
        found = find_location(client, env_for(aws=aws.url, CARBONKIT_CLOUD_METADATA="0"))
    assert found is None and aws.requests == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CARBONKIT_AWS_METADATA_URL", "169.254.169.254"),
        ("CARBONKIT_GCP_METADATA_URL", "ftp://metadata"),
        ("CARBONKIT_CLOUD_METADATA_TIMEOUT", "5"),
        ("CARBONKIT_CLOUD_METADATA_TIMEOUT", "soon"),
        ("CARBONKIT_CLOUD_METADATA", "maybe"),
        ("CARBONKIT_IP_GEOLOCATION", "please"),
    ],
)
def test_a_bad_setting_is_an_error_naming_the_variable_and_value(client, name, value):
    with pytest.raises(ConfigError, match=f"{name}={value!r}"):
        find_location(client, {name: value})


# -- IP geolocation (opt-in) --------------------------------------------------------------------------


def test_ip_geolocation_is_off_unless_opted_in(client):
    with GeolocationStandIn() as geo:
        found = find_location(client, env_for(CARBONKIT_IP_GEOLOCATION_URL=geo.url))
    assert found is None and geo.requests == []


def test_ip_geolocation_when_opted_in_says_the_address_went_to_a_third_party(client):
    with GeolocationStandIn(body=IPAPI_CO) as geo:
        found = find_location(client, env_for(CARBONKIT_IP_GEOLOCATION="1", CARBONKIT_IP_GEOLOCATION_URL=geo.url))
    assert geo.requests == ["/json/"]
    assert found is not None and found.zone == "US-CAL-CISO" and found.how == "IP geolocation"
    assert "127.0.0.1" in found.detail and "US/CA" in found.detail
    assert "IP address was sent to that service" in found.detail


def test_cloud_metadata_wins_over_ip_geolocation(client):
    with GeolocationStandIn() as geo, MetadataStandIn("gcp", gcp_zone="projects/1/zones/europe-west1-b") as gcp:
        env = env_for(gcp=gcp.url, CARBONKIT_IP_GEOLOCATION="on", CARBONKIT_IP_GEOLOCATION_URL=geo.url,
                      CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK))
        found = find_location(client, env)
    assert found == ResolvedLocation(zone="BE", how="cloud metadata", detail="gcp europe-west1")
    assert geo.requests == []


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, IPAPI_CO_RATE_LIMITED), (200, IP_API_COM_FAIL), (200, {"ip": "203.0.113.7"}), (200, ["US"])],
)
def test_a_failed_lookup_is_no_location(client, status, body):
    with GeolocationStandIn(status=status, body=body) as geo:
        env = env_for(CARBONKIT_IP_GEOLOCATION="yes", CARBONKIT_IP_GEOLOCATION_URL=geo.url)
        assert find_location(client, env) is None
    assert geo.requests


def test_both_documented_answer_shapes_are_read():
    assert parse_answer(IPAPI_CO) == ("US", "CA")
    assert parse_answer(IP_API_COM) == ("CA", "QC")
    assert parse_answer(IPAPI_CO_RATE_LIMITED) is None
    assert parse_answer(IP_API_COM_FAIL) is None


@pytest.mark.parametrize(
    ("country", "region", "zone", "coarse"),
    [
        ("US", "CA", "US-CAL-CISO", False),
        ("US", "TX", "US-TEX-ERCO", False),
        ("US", "MA", "US-NE-ISNE", False),
        ("US", "FL", "US", True),
        ("CA", "QC", "CA-QC", False),
        ("AU", "ACT", "AU-NSW", False),
        ("DK", "84", "DK-DK2", False),
        ("DK", "82", "DK-DK1", False),
        ("GB", "NIR", "GB-NIR", False),
        ("GB", "ENG", "GB", False),
        ("SE", "AB", "SE", True),
        ("DE", "BE", "DE", False),
        ("FR", None, "FR", True),
    ],
)
def test_country_and_subdivision_to_zone(country, region, zone, coarse):
    assert zone_for_place(country, region) == (zone, coarse)


def test_every_geolocation_zone_is_known():
    known = set(carbonkit_intensity_static.known_zones())
    places = [("US", s) for s in ("CA", "TX", "NY", "CT", "HI", "AK")] + [("CA", p) for p in ("AB", "BC", "NU", "YT")]
    places += [("AU", s) for s in ("NSW", "VIC", "QLD", "SA", "TAS", "WA", "NT", "ACT")] + [("DK", "81"), ("GB", "NIR")]
    assert {zone_for_place(c, r)[0] for c, r in places} <= known


# -- the plugin in a tracker ---------------------------------------------------------------------------


def test_plugin_is_valid():
    assert_plugin_valid(carbonkit_location)


def tracker(client, **kwargs):
    pm = carbonkit.make_plugin_manager(plugins=[carbonkit_location, carbonkit_intensity_static], entrypoints=False)
    return carbonkit.Tracker(plugin_manager=pm, sources=[FakePowerSource(watts=[50.0])], http_client=client,
                             quiet=True, interval_s=0.01, **kwargs)


def test_tracker_on_a_cloud_uses_the_mapped_zone_and_says_how(client, monkeypatch, tmp_path):
    """Tracker() with no location on an AWS eu-west-1 'instance': zone IE, and the report and the
    run log say it came from cloud metadata."""
    with MetadataStandIn("aws", region="eu-west-1") as aws:
        for name, value in env_for(aws=aws.url, CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK)).items():
            monkeypatch.setenv(name, value)
        t = tracker(client, log_dir=tmp_path)
    report = t.stop()
    assert t.config.location == "IE" and report.location == "IE"
    assert report.location_source == "cloud metadata: aws eu-west-1"
    assert t.config.describe_source("location") == "cloud metadata: aws eu-west-1"
    assert {u.zone for u in report.intensity.used} == {"IE"}
    assert not any("no location given" in w for w in report.warnings)
    (log,) = tmp_path.glob("*.jsonl")
    assert read_header(log)["location_source"] == "cloud metadata: aws eu-west-1"
    assert carbonkit.load_run(log).location_source == "cloud metadata: aws eu-west-1"
    # A run that never stopped (no report record) is recomputed from its log, with the same source.
    unfinished = tmp_path / "unfinished.jsonl"
    unfinished.write_text("".join(line for line in log.read_text().splitlines(keepends=True)
                                  if json.loads(line).get("type") != "report"))
    recovered = carbonkit.load_run(unfinished)
    assert not recovered.completed and recovered.location_source == "cloud metadata: aws eu-west-1"


def test_tracker_with_an_explicit_location_never_asks_the_clouds(client, monkeypatch):
    with MetadataStandIn("aws") as aws:
        for name, value in env_for(aws=aws.url).items():
            monkeypatch.setenv(name, value)
        report = tracker(client, location="FR").stop()
        monkeypatch.setenv("CARBONKIT_LOCATION", "DE")
        from_variable = tracker(client).stop()
    assert aws.requests == []
    assert (report.location, report.location_source) == ("FR", "argument")
    assert (from_variable.location, from_variable.location_source) == ("DE", "CARBONKIT_LOCATION")


def test_tracker_outside_any_cloud_uses_the_world_average_and_says_so(client, monkeypatch):
    for name, value in env_for().items():
        monkeypatch.setenv(name, value)
    report = tracker(client).stop()
    assert (report.location, report.location_source) == ("WORLD", "default")
    assert any("no location given" in w for w in report.warnings)


def test_tracker_with_ip_geolocation_records_the_third_party(client, monkeypatch):
    with GeolocationStandIn(body=IP_API_COM) as geo:
        for name, value in env_for(CARBONKIT_IP_GEOLOCATION="1", CARBONKIT_IP_GEOLOCATION_URL=geo.url).items():
            monkeypatch.setenv(name, value)
        report = tracker(client).stop()
    assert report.location == "CA-QC"
    assert report.location_source.startswith("IP geolocation: 127.0.0.1, CA/QC")
    assert "sent to that service" in report.location_source


def test_a_bad_setting_drops_the_plugin_with_a_warning_naming_the_variable(client, monkeypatch):
    monkeypatch.setenv("CARBONKIT_CLOUD_METADATA_TIMEOUT", "60")
    report = tracker(client).stop()
    assert report.location == "WORLD"
    assert any("CARBONKIT_CLOUD_METADATA_TIMEOUT='60'" in w for w in report.warnings)


def test_a_hook_answering_a_plain_zone_code_is_still_recorded_as_the_hook():
    """Backward compatible: a resolve_location returning a string still works."""

    class Locator:
        __name__ = "locator"

        @hookimpl
        def resolve_location(self):
            return "SE-SE3"

    pm = carbonkit.make_plugin_manager(plugins=[Locator(), carbonkit_intensity_static], entrypoints=False)
    report = carbonkit.Tracker(plugin_manager=pm, sources=[FakePowerSource(watts=[5.0])], quiet=True,
                               interval_s=0.01).stop()
    assert (report.location, report.location_source) == ("SE-SE3", "resolve_location hook")


def test_resolved_location_record():
    r = ResolvedLocation(zone="IE", how="cloud metadata", detail="aws eu-west-1")
    assert r.describe() == "cloud metadata: aws eu-west-1"
    assert ResolvedLocation(zone="GB", how="a site file").describe() == "a site file"
    assert ResolvedLocation.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match="ResolvedLocation.zone"):
        ResolvedLocation(zone=" ", how="x")


def test_the_console_says_how_the_location_was_found():
    from datetime import datetime, timezone

    from carbonkit.default_plugins.console_reporter import describe_start
    from carbonkit.protocols import RunStart

    def start(how: str) -> list[str]:
        return describe_start(RunStart(start_time=datetime.now(timezone.utc), location="IE", pue=1.58, pue_source="default",
                                       epochs=None, sources=[], dropped=[], header={"location_source": how}))

    assert "  Location IE (cloud metadata: aws eu-west-1); PUE 1.58 (default)" in start("cloud metadata: aws eu-west-1")
    assert "  Location IE; PUE 1.58 (default)" in start("argument")


def test_schedule_without_a_zone_plans_on_the_zone_found_on_the_cloud(client, monkeypatch):
    """`carbonkit schedule` with no --location on an AWS eu-west-1 'instance' asks for IE's forecast."""
    from datetime import datetime, timedelta, timezone

    from carbonkit.scheduling.forecast import forecast_from_providers
    from carbonkit.testing import FakeIntensity

    grid = FakeIntensity(g_per_kwh=lambda t: 100.0 + t.hour, zones={"IE"}, priority=100, forecast_step_s=1800,
                         forecast_horizon_s=6 * 3600, name="fake:ie")

    class Grid:
        __name__ = "grid"

        @hookimpl
        def register_intensity_providers(self):
            return [grid]

    with MetadataStandIn("aws", region="eu-west-1") as aws:
        for name, value in env_for(aws=aws.url, CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK)).items():
            monkeypatch.setenv(name, value)
        pm = carbonkit.make_plugin_manager(plugins=[carbonkit_location, Grid()], entrypoints=False)
        start = datetime.now(timezone.utc)
        found = forecast_from_providers(None, start, start + timedelta(hours=3), pm=pm, http_client=client)
    assert found.zone == "IE" and found.provider == "fake:ie"
    assert ("forecast", "IE") in grid.history


def test_schedule_without_a_zone_anywhere_says_what_to_set(client, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from carbonkit.scheduling.forecast import forecast_from_providers

    for name, value in env_for().items():
        monkeypatch.setenv(name, value)
    pm = carbonkit.make_plugin_manager(plugins=[carbonkit_location], entrypoints=False)
    start = datetime.now(timezone.utc)
    with pytest.raises(ConfigError, match="give --location or set CARBONKIT_LOCATION"):
        forecast_from_providers(None, start, start + timedelta(hours=3), pm=pm, http_client=client)


def test_the_aws_token_never_reaches_a_log_line(caplog):
    """The metadata GET fails with a body that echoes the token: the DEBUG note shows no token."""
    token = "AQAEAnot-for-logs-0123456789"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(200, text=token)
        return httpx.Response(500, text=f"internal error for token {request.headers['x-aws-ec2-metadata-token']}")

    caplog.set_level(logging.DEBUG, logger="carbonkit.location")
    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        assert aws_region(c, "http://imds.test", SLOW_OK) is None
    assert caplog.records and token not in caplog.text


def test_the_hook_can_be_called_with_the_specs_arguments(client, monkeypatch):
    for name, value in env_for().items():
        monkeypatch.setenv(name, value)
    assert carbonkit_location.resolve_location(config=carbonkit.Config(), http_client=client) is None
    assert ResolvedLocation("IE", "cloud metadata", "aws eu-west-1").describe() == "cloud metadata: aws eu-west-1"


def test_carbonkit_run_in_a_fresh_process_finds_the_cloud_zone():
    """The whole path a user takes: `carbonkit run` (entry points, the core's lazily built HTTP
    client) on a stand-in Azure VM in "West Europe" prices the run at NL and says how."""
    import os
    import subprocess
    import sys

    with MetadataStandIn("azure", azure_location="West Europe") as azure:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
        env.update(env_for(azure=azure.url + "/", CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK)))
        proc = subprocess.run([sys.executable, "-m", "carbonkit", "run", "--json", "--", sys.executable, "-c", "pass"],
                              env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert (report["location"], report["location_source"]) == ("NL", "cloud metadata: azure westeurope")
    assert "Location NL (cloud metadata: azure westeurope)" in proc.stderr


def test_the_probes_leave_no_connection_open_in_a_client_nobody_closes():
    """Each metadata request closes its connection: a client that is never closed (a tracker whose
    construction failed after the hook ran) leaks no socket."""
    import gc
    import warnings

    with MetadataStandIn("aws") as aws, MetadataStandIn("gcp") as gcp, MetadataStandIn("azure") as azure:
        client = default_http_client()
        env = env_for(aws=aws.url, gcp=gcp.url, azure=azure.url, CARBONKIT_CLOUD_METADATA_TIMEOUT=str(SLOW_OK))
        assert probe_clouds(client, Endpoints.from_env(env), SLOW_OK) is not None
        for t in [t for t in threading.enumerate() if t.name.startswith("carbonkit-location-")]:
            t.join(30)  # the probes still answering after the first region was found
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            del client
            gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_gcp_is_also_asked_at_its_documented_address_when_dns_fails():
    """With the default URLs, a GCP VM whose DNS cannot resolve metadata.google.internal is still
    found through 169.254.169.254 (the AWS and Azure paths there answer 404, as on GCP)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "metadata.google.internal":
            raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)
        if request.url.path == "/computeMetadata/v1/instance/zone" and request.headers.get("metadata-flavor") == "Google":
            return httpx.Response(200, text="projects/99/zones/europe-west9-a", headers={"Metadata-Flavor": "Google"})
        return httpx.Response(404, text="Not Found")

    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        found = probe_clouds(c, Endpoints(), SLOW_OK)
    assert found == carbonkit_location.CloudRegion("gcp", "europe-west9")
