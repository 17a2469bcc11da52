"""Config: every argument and CARBONKIT_* variable checked at construction, naming what the user set.

The rules under test are written down in the module docstring of ``carbonkit.config`` (floors,
ceilings and why). Environments are passed as plain dicts (``Config.from_env(environ)``), so no
test touches ``os.environ``; the autouse fixture in ``tests/conftest.py`` clears CARBONKIT_*
variables anyway, for the tests that build a Tracker.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import attrs
import pytest

import carbonkit
from carbonkit import ConfigError
from carbonkit.config import (
    DEFAULT_PUE,
    EPOCHS_MAX,
    INTERVAL_MAX_S,
    INTERVAL_MIN_S,
    KNOWN_VARIABLES,
    REFRESH_MAX_S,
    REFRESH_MIN_S,
    RESOLUTION_MAX_S,
    RESOLUTION_MIN_S,
    VARIABLES,
    Config,
    check_log_dir,
    unknown_variables,
)
from carbonkit.testing import FakeIntensity, FakePowerSource

REPO = Path(__file__).resolve().parents[2]
FIELDS = [a.name for a in attrs.fields(Config) if a.name != "given_by"]


def error_for(environ: dict[str, str] | None = None, **arguments: object) -> str:
    """Build a config that must fail and return its message."""
    with pytest.raises(ConfigError) as info:
        Config.from_env(environ or {}, **arguments)
    return str(info.value)


# -- defaults -----------------------------------------------------------------------------------


def test_defaults_pass_every_rule_and_are_marked_default():
    """An empty environment and no arguments give the documented defaults, each from 'default'."""
    config = Config.from_env({})
    assert config == Config()
    assert (config.pue, config.interval_s, config.intensity_refresh_s, config.intensity_resolution_s) == (
        DEFAULT_PUE,
        1.0,
        900.0,
        60.0,
    )
    assert INTERVAL_MIN_S <= config.interval_s <= INTERVAL_MAX_S
    assert REFRESH_MIN_S <= config.intensity_refresh_s <= REFRESH_MAX_S
    assert RESOLUTION_MIN_S <= config.intensity_resolution_s <= RESOLUTION_MAX_S
    assert {name: config.describe_source(name) for name in FIELDS} == dict.fromkeys(FIELDS, "default")
    assert config.pid == os.getpid()


# -- variables: the message names the variable and its text as given ----------------------------


@pytest.mark.parametrize(
    ("var", "raw", "accepted"),
    [
        ("CARBONKIT_LOCATION", "Copenhagen Denmark", "location must be a zone code such as 'DK-DK2'"),
        ("CARBONKIT_PUE", "one point five", "pue must be a number between 1.0 and 5.0"),
        ("CARBONKIT_PUE", "0.9", "a PUE is never below 1.0"),
        ("CARBONKIT_PUE", "9", "more than three times the global average of 1.58"),
        ("CARBONKIT_PUE", "nan", "pue must be a number between 1.0 and 5.0"),
        ("CARBONKIT_INTERVAL", "0.0001", "from 0.01 to 300; the sampler reads every source each interval"),
        ("CARBONKIT_INTERVAL", " 0.0001 ", "interval_s must be a number of seconds from 0.01 to 300"),
        ("CARBONKIT_INTERVAL", "600", "one power reading stands for the whole interval"),
        ("CARBONKIT_INTERVAL", "10s", "interval_s must be a number of seconds"),
        ("CARBONKIT_INTERVAL", "-1", "interval_s must be a number of seconds"),
        ("CARBONKIT_ATTRIBUTION", "gpu", "attribution must be 'machine', 'process' or 'cgroup'"),
        ("CARBONKIT_POSTCODE", "RG10 9XX!", "postcode must be a postcode or outward code"),
        ("CARBONKIT_INTENSITY_PROVIDER", "intensity dk", "intensity_provider must be a name"),
        ("CARBONKIT_QUIET", "maybe", "quiet must be 1, true, yes or on"),
        ("CARBONKIT_EMBODIED", "{bad", "not valid JSON (line 1, column 2"),
        ("CARBONKIT_EMBODIED", "[1, 2]", "JSON but not an object"),
        ("CARBONKIT_EMBODIED", '{"gpu": {"kg": 1}}', "embodied['gpu'] must be"),
        ("CARBONKIT_EMBODIED", '{"gpu": {"kgco2e": -1, "lifetime_years": 4}}', "kgco2e must be a number >= 0"),
    ],
)
def test_a_bad_variable_is_named_with_its_value_and_what_is_accepted(var, raw, accepted):
    """The message starts with VAR='text as given' and says what is accepted."""
    message = error_for({var: raw})
    assert message.startswith(f"{var}={raw!r} is ")
    assert accepted in message


def test_every_variable_the_core_reads_is_checked():
    """Each entry of VARIABLES rejects a nonsense value, naming that variable."""
    nonsense = "\x01 not (valid) \x02"
    for var in VARIABLES:
        if var == "CARBONKIT_LOG_DIR":
            continue  # any text is a path; the folder check is tested below
        assert error_for({var: nonsense}).startswith(f"{var}={nonsense!r}"), var


def test_variables_are_parsed_and_normalised():
    """Case and surrounding blanks are forgiven where the meaning is clear."""
    config = Config.from_env(
        {
            "CARBONKIT_LOCATION": " dk-dk2 ",
            "CARBONKIT_PUE": "1.2",
            "CARBONKIT_INTERVAL": "0.5",
            "CARBONKIT_ATTRIBUTION": "Process",
            "CARBONKIT_POSTCODE": "RG10 9XX",
            "CARBONKIT_INTENSITY_PROVIDER": "intensity_gb:national",
            "CARBONKIT_QUIET": "yes",
        }
    )
    assert (config.location, config.pue, config.interval_s, config.attribution) == ("DK-DK2", 1.2, 0.5, "process")
    assert (config.postcode, config.intensity_provider, config.quiet) == ("RG10 9XX", "intensity_gb:national", True)
    assert Config.from_env({"CARBONKIT_QUIET": "off"}).quiet is False


def test_blank_variables_count_as_unset():
    """CARBONKIT_PUE='' or '  ' is the default, and says so."""
    config = Config.from_env({"CARBONKIT_PUE": "", "CARBONKIT_INTERVAL": "   "})
    assert (config.pue, config.interval_s) == (DEFAULT_PUE, 1.0)
    assert config.describe_source("pue") == config.describe_source("interval_s") == "default"


def test_embodied_from_a_file_and_a_missing_file_named(tmp_path):
    """CARBONKIT_EMBODIED=@file reads the file; a missing or broken file is named with the variable."""
    table = {"gpu": {"kgco2e": 150, "lifetime_years": 4, "source": "vendor LCA"}}
    good = tmp_path / "embodied.json"
    good.write_text(json.dumps(table), encoding="utf-8")
    assert Config.from_env({"CARBONKIT_EMBODIED": f"@{good}"}).embodied == table

    missing = tmp_path / "nope.json"
    message = error_for({"CARBONKIT_EMBODIED": f"@{missing}"})
    assert message.startswith(f"CARBONKIT_EMBODIED='@{missing}' is a file that cannot be read")
    assert repr(str(missing)) in message and "No such file" in message

    broken = tmp_path / "broken.json"
    broken.write_text('{"gpu": ', encoding="utf-8")
    message = error_for({"CARBONKIT_EMBODIED": f"@{broken}"})
    assert message.startswith(f"CARBONKIT_EMBODIED='@{broken}' is {str(broken)!r} is not valid JSON (line 1")


# -- arguments: the message names the argument and its value ------------------------------------


@pytest.mark.parametrize(
    ("arguments", "accepted"),
    [
        ({"epochs": 0}, "epochs must be a whole number >= 1"),
        ({"epochs": EPOCHS_MAX + 1}, "count those with functional_unit= and add_units()"),
        ({"epochs": 2.0}, "epochs must be a whole number >= 1"),
        ({"predict_after": 0}, "predict_after must be a whole number >= 1"),
        ({"predict_after": EPOCHS_MAX + 1}, "predict_after must be a whole number >= 1 and <= 10,000,000"),
        ({"location": 45}, "location must be a zone code"),
        ({"location": "Copenhagen Denmark"}, "location must be a zone code"),
        ({"location": "X" * 33}, "at most 32 characters"),
        ({"pue": 0.9}, "pue must be a number between 1.0 and 5.0"),
        ({"pue": 5.01}, "Uptime Institute 2023"),
        ({"pue": float("inf")}, "pue must be a number between 1.0 and 5.0"),
        ({"pue": "1.2"}, "pue must be a number between 1.0 and 5.0"),
        ({"interval_s": 0.0001}, "at 0.01 s already takes about 2 % of a CPU core"),
        ({"interval_s": 300.5}, "splits 5-minute intensity periods by interpolation"),
        ({"interval_s": -1}, "interval_s must be a number of seconds from 0.01 to 300"),
        ({"interval_s": "1"}, "interval_s must be a number of seconds from 0.01 to 300"),
        ({"log_dir": 42}, "log_dir must be a folder path"),
        ({"quiet": 1}, "quiet must be True or False"),
        ({"quiet": "yes"}, "quiet must be True or False"),
        ({"attribution": "gpu"}, "attribution must be 'machine', 'process' or 'cgroup'"),
        ({"attribution": "Process"}, "attribution must be 'machine', 'process' or 'cgroup'"),
        ({"postcode": ""}, "postcode must be a postcode or outward code"),
        ({"postcode": 1234}, "postcode must be a postcode or outward code"),
        ({"tags": {"a": 1}}, "tags must map strings to strings"),
        ({"tags": ["a"]}, "tags must map strings to strings"),
        ({"intensity_provider": "two words"}, "intensity_provider must be a name"),
        ({"intensity_refresh_s": 59}, "intensity APIs publish every 5 to 60 minutes"),
        ({"intensity_refresh_s": REFRESH_MAX_S + 1}, "forecasts reach 24 to 48 hours ahead"),
        ({"intensity_resolution_s": 0.5}, "1 s already costs 68 MB per week of run"),
        ({"intensity_resolution_s": 3601}, "changes every hour"),
        ({"intensity_resolution_s": 7}, "the nearest are 6 and 8"),
        ({"intensity_resolution_s": 1.5}, "the nearest are 1 and 2"),
        ({"functional_unit": " "}, "functional_unit must be a word such as 'sample'"),
        ({"embodied": {"gpu": {"kg": 1}}}, "embodied['gpu'] must be"),
        ({"embodied": [1]}, "embodied must map components to"),
        ({"options": {1: "x"}}, "options must be a mapping with string keys"),
        ({"options": "rapl.root=/x"}, "options must be a mapping with string keys"),
        ({"pid": 0}, "pid must be a whole number > 0"),
        ({"pid": "123"}, "pid must be a whole number > 0"),
    ],
)
def test_a_bad_argument_is_named_with_its_value_and_what_is_accepted(arguments, accepted):
    """The message starts with name=value (the value as given) and says what is accepted."""
    ((name, value),) = arguments.items()
    message = error_for(**arguments)
    assert message.startswith(f"{name}={value!r} is ")
    assert accepted in message
    with pytest.raises(ConfigError, match=re.escape(f"{name}={value!r} is ")):
        Config(**arguments)  # the same rule when the record is built directly


@pytest.mark.parametrize(
    "name", ["epochs", "predict_after", "pue", "interval_s", "intensity_refresh_s", "intensity_resolution_s", "pid"]
)
@pytest.mark.parametrize("flag", [True, False])
def test_a_bool_is_never_a_number(name, flag):
    """True is not 1 second, 1 epoch or PUE 1."""
    message = error_for(**{name: flag})
    assert message.startswith(f"{name}={flag!r} is not a ")


def test_predict_after_beyond_epochs():
    """predict_after must not exceed the planned epochs."""
    assert error_for(epochs=2, predict_after=3).startswith("predict_after=3 is more than epochs=2")


def test_unknown_argument_is_named():
    """A misspelt argument is an error naming it and listing the accepted ones."""
    message = error_for(interval=1.0)
    assert message.startswith("unknown argument 'interval'") and "interval_s" in message


def test_numpy_numbers_are_accepted_as_plain_python_numbers():
    """A numpy integer or float counts as a number, and is stored as int/float (JSON-ready)."""
    np = pytest.importorskip("numpy")
    config = Config.from_env({}, epochs=np.int64(5), interval_s=np.float32(0.5), pid=np.int32(7))
    assert (config.epochs, config.interval_s, config.pid) == (5, 0.5, 7)
    assert type(config.epochs) is int and type(config.interval_s) is float and type(config.pid) is int
    json.dumps({"epochs": config.epochs, "interval_s": config.interval_s})


def test_evolve_checks_again():
    """attrs.evolve runs the same rules (the tracker evolves the config to set the location)."""
    config = Config.from_env({"CARBONKIT_PUE": "1.3"})
    with pytest.raises(ConfigError, match=r"^interval_s=0\.001 is below the floor"):
        attrs.evolve(config, interval_s=0.001)
    moved = attrs.evolve(config, location="gb")
    assert moved.location == "GB" and moved.describe_source("pue") == "CARBONKIT_PUE"


# -- floors and ceilings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("interval_s", INTERVAL_MIN_S, INTERVAL_MAX_S),
        ("intensity_refresh_s", REFRESH_MIN_S, REFRESH_MAX_S),
        ("intensity_resolution_s", RESOLUTION_MIN_S, RESOLUTION_MAX_S),
        ("pue", 1.0, 5.0),
        ("epochs", 1, EPOCHS_MAX),
    ],
)
def test_floors_and_ceilings_are_inclusive(name, low, high):
    """Both bounds are accepted; just outside them is not, and the message gives the reason."""
    assert getattr(Config(**{name: low}), name) == low
    assert getattr(Config(**{name: high}), name) == high
    below = low - 1 if isinstance(low, int) else low * 0.99
    above = high + 1 if isinstance(high, int) else high * 1.01
    below_message = error_for(**{name: below})
    above_message = error_for(**{name: above})
    assert "; " in below_message.split(": ", 1)[1] or name == "epochs"  # the floor's reason follows
    assert "; " in above_message.split(": ", 1)[1]  # the ceiling's reason follows
    assert "below the floor" in below_message and "above the ceiling" in above_message


def test_the_documented_limits_match_the_constants():
    """The module docstring states every floor and ceiling the code applies."""
    doc = carbonkit.config.__doc__ or ""
    for text in (
        "**0.01 to 300**",
        "**60 to 86,400 (one day)**",
        "from 1 to 3600 that divides an hour evenly**",
        "**1.0 to 5.0**",
        "**1 to 10,000,000**",
    ):
        assert text in doc
    for var in VARIABLES:
        assert f"``{var}``" in doc


def test_resolution_is_accepted_exactly_for_the_divisors_of_an_hour():
    """Every whole number of seconds from 1 to 3600 is accepted iff it divides 3600."""
    accepted = []
    for seconds in range(1, 3601):
        try:
            Config(intensity_resolution_s=seconds)
        except ConfigError:
            continue
        accepted.append(seconds)
    assert accepted == [d for d in range(1, 3601) if 3600 % d == 0]
    assert len(accepted) == 45 and Config(intensity_resolution_s=60.0).intensity_resolution_s == 60.0


# -- where each value came from -----------------------------------------------------------------


def test_describe_source_says_argument_variable_or_default():
    """An argument wins over its variable; each field records who set it."""
    config = Config.from_env(
        {"CARBONKIT_PUE": "1.2", "CARBONKIT_INTERVAL": "5", "CARBONKIT_LOCATION": "FR"}, interval_s=2.0, epochs=3
    )
    assert config.interval_s == 2.0 and config.describe_source("interval_s") == "argument"
    assert config.pue == 1.2 and config.describe_source("pue") == "CARBONKIT_PUE"
    assert config.location == "FR" and config.describe_source("location") == "CARBONKIT_LOCATION"
    assert config.describe_source("epochs") == "argument"
    assert config.describe_source("intensity_refresh_s") == "default"
    assert config.pue_source == "user-supplied (CARBONKIT_PUE)"
    assert Config.from_env({}, pue=1.1).pue_source == "user-supplied (pue argument)"
    assert Config.from_env({}, pue=1.1, pue_source="our PDU meters").pue_source == "our PDU meters"


def test_describe_source_of_a_config_built_directly_and_of_an_unknown_field():
    """Built directly, a value equal to its default is 'default', any other 'argument'."""
    config = Config(pue=1.2, interval_s=1.0)
    assert config.describe_source("pue") == "argument"
    assert config.describe_source("interval_s") == "default"
    assert config.describe_source("tags") == "default"  # a factory default
    with pytest.raises(
        ConfigError, match=r"describe_source\('interval'\): not a Config field; fields are .*interval_s"
    ):
        config.describe_source("interval")


def test_given_by_is_left_out_of_equality_and_checked():
    """Two configs with the same settings are equal whoever supplied them; given_by keys are fields."""
    assert Config.from_env({"CARBONKIT_PUE": "1.2"}) == Config.from_env(
        {}, pue=1.2, pue_source="user-supplied (CARBONKIT_PUE)"
    )
    with pytest.raises(ConfigError, match=r"given_by\['speed'\]='argument' is not accepted"):
        Config(given_by={"speed": "argument"})


# -- the run-log folder -------------------------------------------------------------------------


def test_log_dir_that_is_a_file_is_named_with_who_set_it(tmp_path):
    """A log_dir that is a regular file fails, naming the path and the variable or argument."""
    file = tmp_path / "run.jsonl"
    file.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        check_log_dir(file, "CARBONKIT_LOG_DIR")
    assert str(info.value).startswith(f"CARBONKIT_LOG_DIR={str(file)!r} is not usable: it exists and is not a folder")
    assert error_for({"CARBONKIT_LOG_DIR": str(file)}).startswith(f"CARBONKIT_LOG_DIR={str(file)!r} is not usable")
    assert error_for(log_dir=file).startswith(f"log_dir={str(file)!r} is not usable")


def test_log_dir_under_a_regular_file_is_named(tmp_path):
    """A folder whose parent is a regular file cannot be created, even by root."""
    file = tmp_path / "notes.txt"
    file.write_text("", encoding="utf-8")
    target = file / "logs" / "run1"
    message = error_for({"CARBONKIT_LOG_DIR": str(target)})
    assert message.startswith(f"CARBONKIT_LOG_DIR={str(target)!r} is not usable: {str(file)!r} on its way is a file")
    with pytest.raises(ConfigError, match=re.escape(f"log_dir={str(target)!r} is not usable")):
        check_log_dir(target, "argument")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux procfs")
def test_log_dir_where_no_file_can_be_created_is_named():
    """procfs accepts no new file, even from root (for whom os.access says yes): the probe file catches it."""
    target = Path("/proc/carbonkit-logs")
    message = error_for(log_dir=str(target))
    assert message.startswith(f"log_dir={str(target)!r} is not usable: a file cannot be created in its nearest")
    assert "'/proc'" in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_log_dir_without_write_permission_is_named(tmp_path):
    """A folder this user may not write in fails (checked by os.access)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match=r"is not writable by this user"):
            check_log_dir(locked / "logs", "CARBONKIT_LOG_DIR")
    finally:
        locked.chmod(0o700)


def test_usable_log_dir_passes_and_leaves_nothing_behind(tmp_path):
    """An existing folder, or a missing one under a writable folder, passes; no probe file remains."""
    check_log_dir(tmp_path, "log_dir")
    config = Config.from_env({"CARBONKIT_LOG_DIR": str(tmp_path / "a" / "b")})
    assert config.log_dir == tmp_path / "a" / "b"
    assert config.describe_source("log_dir") == "CARBONKIT_LOG_DIR"
    assert list(tmp_path.iterdir()) == []  # nothing created: the run-log writer makes the folders


# -- unknown variables --------------------------------------------------------------------------


def test_a_near_miss_gets_one_warning_naming_the_known_variable():
    """CARBONKIT_INTERVALS: did you mean CARBONKIT_INTERVAL? One warning per name, sorted."""
    assert unknown_variables({"CARBONKIT_INTERVALS": "2", "CARBONKIT_QUITE": "1", "PATH": "/bin"}) == [
        "CARBONKIT_INTERVALS is not a carbonkit variable; did you mean CARBONKIT_INTERVAL?",
        "CARBONKIT_QUITE is not a carbonkit variable; did you mean CARBONKIT_QUIET?",
    ]
    assert unknown_variables({"CARBONKIT_LOG_DIRECTORY": "/x"}) == [
        "CARBONKIT_LOG_DIRECTORY is not a carbonkit variable; did you mean CARBONKIT_LOG_DIR?"
    ]
    assert unknown_variables({"CARBONKIT_CPU_TDP": "95"}) == [
        "CARBONKIT_CPU_TDP is not a carbonkit variable; did you mean CARBONKIT_CPU_TDP_W?"
    ]


def test_arguments_without_a_variable_and_wrong_case_are_explained():
    """CARBONKIT_EPOCHS has no effect: say to pass epochs=; lower case names say the case is wrong."""
    assert unknown_variables({"CARBONKIT_EPOCHS": "10", "CARBONKIT_INTENSITY_REFRESH": "60"}) == [
        "CARBONKIT_EPOCHS is not read by carbonkit: epochs has no environment variable; "
        "pass epochs= to carbonkit.Tracker",
        "CARBONKIT_INTENSITY_REFRESH is not read by carbonkit: intensity_refresh_s has no environment variable; "
        "pass intensity_refresh_s= to carbonkit.Tracker",
    ]
    assert unknown_variables({"carbonkit_location": "GB"}) == [
        "carbonkit_location is not read: environment variable names are case-sensitive; "
        "did you mean CARBONKIT_LOCATION?"
    ]


def test_known_and_plugin_variables_never_warn_and_values_are_never_shown():
    """Known names, plugin-style suffixes and unrelated names are silent; no warning shows a value."""
    environ = dict.fromkeys(KNOWN_VARIABLES, "s3cr3t")
    environ.update(
        {
            "CARBONKIT_ACME_API_URL": "s3cr3t",
            "CARBONKIT_ACME_TOKEN": "s3cr3t",
            "CARBONKIT_LOCATION_URL": "s3cr3t",  # close to LOCATION, but a plugin's endpoint
            "CARBONKIT_FR_API_KEY": "s3cr3t",
            "CARBONKIT_ACME_REGION": "north",  # far from every known name: a plugin's own
            "CARBONKIT_INTERVALZ": "s3cr3t",
        }
    )
    warnings = unknown_variables(environ)
    assert warnings == ["CARBONKIT_INTERVALZ is not a carbonkit variable; did you mean CARBONKIT_INTERVAL?"]
    assert not any("s3cr3t" in w for w in warnings)


def test_every_variable_named_in_the_code_is_known():
    """No CARBONKIT_* name that the core or a plugin reads would draw a warning (keeps the list complete)."""
    names: set[str] = set()
    for folder in (REPO / "core" / "src", REPO / "plugins"):
        for path in folder.rglob("*.py"):
            if path.name == "config.py" and path.parent.name == "carbonkit":
                continue  # the list itself, and its examples of mistakes
            names |= set(re.findall(r"\bCARBONKIT_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    assert {"CARBONKIT_RAPL_ROOT", "CARBONKIT_CPU_TDP_W", "CARBONKIT_DK_API_URL"} <= names
    assert unknown_variables(dict.fromkeys(names, "1")) == []


# -- through the Tracker ------------------------------------------------------------------------


def test_tracker_reports_the_variable_the_user_set(monkeypatch):
    """Tracker(...) checks at construction: the error names CARBONKIT_INTERVAL, or interval_s."""
    kwargs = {"sources": [FakePowerSource()], "provider": FakeIntensity(), "reporters": [], "location": "XX"}
    monkeypatch.setenv("CARBONKIT_INTERVAL", "0.0001")
    with pytest.raises(ConfigError, match=r"^CARBONKIT_INTERVAL='0\.0001' is below the floor"):
        carbonkit.Tracker(**kwargs)
    with pytest.raises(ConfigError, match=r"^interval_s=0\.001 is below the floor"):
        carbonkit.Tracker(interval_s=0.001, **kwargs)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_relative_log_dir_is_checked_against_the_working_folder(tmp_path, monkeypatch):
    """A relative log_dir is checked where the run log will be written: under the current folder."""
    monkeypatch.chdir(tmp_path)
    assert Config.from_env({"CARBONKIT_LOG_DIR": "logs"}).log_dir == Path("logs")
    (tmp_path / "logs").write_text("", encoding="utf-8")
    assert error_for({"CARBONKIT_LOG_DIR": "logs"}).startswith("CARBONKIT_LOG_DIR='logs' is not usable: it exists")
