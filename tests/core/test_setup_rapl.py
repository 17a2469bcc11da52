"""``carbonkit setup rapl``: group, udev rule, immediate access; idempotent, dry run, undo.

The sysfs tree is laid out as the powercap framework creates it (drivers/powercap/powercap_sys.c:
``/sys/class/powercap/<control type>:<n>`` zones, ``<control type>:<n>:<m>`` subzones, each with
``energy_uj`` mode 0400 since Linux 5.10 and ``max_energy_range_uj`` mode 0444). The system
commands are stand-ins first on ``PATH``, with the real tools' arguments: ``groupadd --system
NAME`` and ``groupdel NAME`` (shadow-utils) edit ``<etc>/group``; ``chgrp GROUP FILE...`` and
``chmod g+r FILE...`` (coreutils) change the files; ``udevadm control --reload`` (systemd) is
logged.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from carbonkit import cli
from carbonkit.rapl_access import RULE_NAME, RaplAccess, SetupError

GROUP_GID = 4242

STANDIN = """#!{python}
import os, sys
from pathlib import Path

etc = Path(os.environ["CARBONKIT_ETC_ROOT"])
name = Path(sys.argv[0]).name
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(" ".join([name, *args]) + "\\n")

def gid_of(group):
    for line in (etc / "group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == group:
            return int(parts[2])
    sys.exit(f"{{name}}: invalid group: '{{group}}'")

if name == "groupadd":
    assert args[0] == "--system"
    with open(etc / "group", "a") as f:
        f.write(f"{{args[1]}}:x:{gid}:\\n")
elif name == "groupdel":
    lines = [l for l in (etc / "group").read_text().splitlines() if l.split(":")[0] != args[0]]
    (etc / "group").write_text("".join(l + "\\n" for l in lines))
elif name == "chgrp":
    gid = gid_of(args[0])
    for path in args[1:]:
        os.chown(path, -1, gid)
elif name == "chmod":
    mode = args[0]
    for path in args[1:]:
        old = os.stat(path).st_mode
        bit = 0o040
        os.chmod(path, (old | bit) if mode == "g+r" else (old & ~bit))
"""


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    if os.geteuid() != 0:
        pytest.skip("the chgrp stand-in changes file groups, which needs root")
    sysfs = tmp_path / "sys"
    powercap = sysfs / "class" / "powercap"
    zones = ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"]
    (powercap / "intel-rapl").mkdir(parents=True)  # the control type: no counters
    for zone in zones:
        (powercap / zone).mkdir()
        (powercap / zone / "energy_uj").write_text("12345\n")
        (powercap / zone / "energy_uj").chmod(0o400)
        (powercap / zone / "max_energy_range_uj").write_text("262143328850\n")
        (powercap / zone / "max_energy_range_uj").chmod(0o444)
        os.chown(powercap / zone / "energy_uj", 0, 0)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "group").write_text("root:x:0:\nusers:x:100:\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("groupadd", "groupdel", "chgrp", "chmod", "udevadm"):
        script = bin_dir / name
        script.write_text(STANDIN.format(python=sys.executable, gid=GROUP_GID))
        script.chmod(0o755)
    log = tmp_path / "commands.log"
    log.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(sysfs))
    monkeypatch.setenv("CARBONKIT_ETC_ROOT", str(etc))
    monkeypatch.setenv("STANDIN_LOG", str(log))
    return {"sys": sysfs, "powercap": powercap, "etc": etc, "log": log, "bin": bin_dir}


def commands(system: dict[str, Path]) -> list[str]:
    return system["log"].read_text().splitlines()


def counter(system: dict[str, Path], zone: str, name: str = "energy_uj") -> os.stat_result:
    return (system["powercap"] / zone / name).stat()


def test_install_creates_group_rule_and_access(system: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["setup", "rapl"]) == 0
    out = capsys.readouterr().out
    assert "create the system group carbonkit-rapl" in out
    assert f"install the udev rule {system['etc']}/udev/rules.d/{RULE_NAME}" in out
    assert "usermod -aG carbonkit-rapl" in out
    assert "carbonkit-rapl:x:4242:" in (system["etc"] / "group").read_text()
    rule = (system["etc"] / "udev" / "rules.d" / RULE_NAME).read_text()
    assert 'SUBSYSTEM=="powercap"' in rule
    assert 'ACTION=="add|change"' in rule
    assert 'KERNEL=="intel-rapl:*|intel-rapl-tpmi:*|intel-rapl-mmio:*"' in rule
    assert f'RUN+="{system["bin"]}/chgrp carbonkit-rapl /sys%p/energy_uj /sys%p/max_energy_range_uj"' in rule
    assert f'RUN+="{system["bin"]}/chmod g+r /sys%p/energy_uj /sys%p/max_energy_range_uj"' in rule
    assert "CVE-2020-8694" in rule
    for zone in ("intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"):
        st = counter(system, zone)
        assert st.st_gid == GROUP_GID
        assert stat.S_IMODE(st.st_mode) == 0o440  # the group may read; others still may not
        assert stat.S_IMODE(counter(system, zone, "max_energy_range_uj").st_mode) == 0o444  # untouched
    log = commands(system)
    assert log[0] == "groupadd --system carbonkit-rapl"
    assert "udevadm control --reload" in log
    assert not any("max_energy_range_uj" in line for line in log)  # already readable by all


def test_second_run_changes_nothing_and_says_so(system: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["setup", "rapl"]) == 0
    before = system["log"].read_text()
    rule_before = (system["etc"] / "udev" / "rules.d" / RULE_NAME).read_text()
    capsys.readouterr()
    assert cli.main(["setup", "rapl"]) == 0
    out = capsys.readouterr().out
    assert "nothing to change" in out
    assert system["log"].read_text() == before  # no command ran
    assert (system["etc"] / "udev" / "rules.d" / RULE_NAME).read_text() == rule_before


def test_reapplies_after_a_driver_reload_resets_the_modes(system: dict[str, Path]) -> None:
    access = RaplAccess(say=lambda _: None)
    assert access.install() is True
    os.chown(system["powercap"] / "intel-rapl:1" / "energy_uj", 0, 0)  # a new zone, as the kernel makes it
    (system["powercap"] / "intel-rapl:1" / "energy_uj").chmod(0o400)
    again = RaplAccess(say=lambda _: None)
    assert again.install() is True
    assert again.lines[0] == f"let carbonkit-rapl read 1 counter file(s) now: {system['powercap']}/intel-rapl:1/energy_uj"
    assert len(again.lines) == 2 and again.lines[1].startswith("done.")  # the group and rule were in place


def test_dry_run_changes_nothing(system: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["setup", "rapl", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would create the system group carbonkit-rapl" in out
    assert "would install the udev rule" in out
    assert '    ACTION=="add|change", SUBSYSTEM=="powercap"' in out  # the rule it would write
    assert "would let carbonkit-rapl read 4 counter file(s) now" in out
    assert system["log"].read_text() == ""
    assert not (system["etc"] / "udev").exists()
    assert stat.S_IMODE(counter(system, "intel-rapl:0").st_mode) == 0o400


def test_undo_removes_exactly_what_was_installed(system: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    group_before = (system["etc"] / "group").read_text()
    assert cli.main(["setup", "rapl"]) == 0
    capsys.readouterr()
    assert cli.main(["setup", "rapl", "--undo"]) == 0
    out = capsys.readouterr().out
    assert "remove the udev rule" in out
    assert "delete the group carbonkit-rapl" in out
    assert not (system["etc"] / "udev" / "rules.d" / RULE_NAME).exists()
    assert (system["etc"] / "group").read_text() == group_before
    for zone in ("intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"):
        st = counter(system, zone)
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0o400)  # the kernel's own
    capsys.readouterr()
    assert cli.main(["setup", "rapl", "--undo"]) == 0
    assert "nothing to undo" in capsys.readouterr().out


def test_undo_keeps_a_group_that_existed_before(system: dict[str, Path]) -> None:
    (system["etc"] / "group").write_text("root:x:0:\npower:x:4242:alice\n")
    RaplAccess(group="power", say=lambda _: None).install()
    assert "groupadd" not in system["log"].read_text()
    undo = RaplAccess(group="power", say=lambda _: None)
    undo.undo()
    assert "power:x:4242:alice" in (system["etc"] / "group").read_text()
    assert not any("delete the group" in line for line in undo.lines)
    assert counter(system, "intel-rapl:0").st_gid == 0


def test_refuses_without_root(system: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["setup", "rapl"]) == 2
    err = capsys.readouterr().err
    assert "must run as root: sudo carbonkit setup rapl" in err
    assert system["log"].read_text() == ""
    assert cli.main(["setup", "rapl", "--dry-run"]) == 0  # a dry run needs no root


def test_bad_group_name_is_refused_at_construction() -> None:
    with pytest.raises(SetupError, match="'Bad Group' is not a valid group name"):
        RaplAccess(group="Bad Group", euid=0)


def test_a_foreign_rule_file_is_left_alone(system: dict[str, Path]) -> None:
    rules = system["etc"] / "udev" / "rules.d"
    rules.mkdir(parents=True)
    (rules / RULE_NAME).write_text("# someone else's\n")
    with pytest.raises(SetupError, match="was not written by carbonkit"):
        RaplAccess(say=lambda _: None).install()
    assert (rules / RULE_NAME).read_text() == "# someone else's\n"


def test_a_failing_command_is_reported(system: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (system["bin"] / "groupadd").write_text("#!/bin/sh\necho 'groupadd: cannot lock /etc/group' >&2\nexit 10\n")
    assert cli.main(["setup", "rapl"]) == 2
    err = capsys.readouterr().err
    assert "exited with status 10: groupadd: cannot lock /etc/group" in err


def test_subzones_inside_their_zone_and_class_links_are_counted_once(tmp_path: Path) -> None:
    """The kernel's layout: /sys/class/powercap/intel-rapl:0 links to the device folder, and the
    subzone intel-rapl:0:0 is both a folder inside it and a link of its own in the class."""
    devices = tmp_path / "sys" / "devices" / "virtual" / "powercap" / "intel-rapl"
    zone = devices / "intel-rapl:0"
    sub = zone / "intel-rapl:0:0"
    sub.mkdir(parents=True)
    for folder in (zone, sub):
        (folder / "energy_uj").write_text("1\n")
        (folder / "energy_uj").chmod(0o400)
    powercap = tmp_path / "sys" / "class" / "powercap"
    powercap.mkdir(parents=True)
    (powercap / "intel-rapl").symlink_to(devices)
    (powercap / "intel-rapl:0").symlink_to(zone)
    (powercap / "intel-rapl:0:0").symlink_to(sub)
    access = RaplAccess(sysfs_root=tmp_path / "sys", etc_root=tmp_path / "etc", euid=0, dry_run=True, say=lambda _: None)
    assert [str(p.relative_to(powercap)) for p in access.counters()] == ["intel-rapl:0/energy_uj",
                                                                          "intel-rapl:0/intel-rapl:0:0/energy_uj"]
