"""carbonkit.sysfs: the sysfs mount setting and cumulative counter files (wraps, resets, lost files)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from carbonkit import MeasurementError
from carbonkit.sysfs import CounterFiles, read_int, read_text, sysfs_root


def test_sysfs_root() -> None:
    assert sysfs_root({}) == Path("/sys")
    assert sysfs_root({"CARBONKIT_SYSFS_ROOT": "  "}) == Path("/sys")
    assert sysfs_root({"CARBONKIT_SYSFS_ROOT": "/host/sys"}) == Path("/host/sys")


def test_read_text_and_read_int(tmp_path: Path) -> None:
    (tmp_path / "n").write_text("42\n")
    (tmp_path / "t").write_text("amd_energy\n")
    assert read_int(tmp_path / "n") == 42 and read_int(tmp_path / "t") is None and read_int(tmp_path / "x") is None
    assert read_text(tmp_path / "t") == "amd_energy" and read_text(tmp_path / "x") is None


def test_wrapping_counter_is_unwrapped_to_the_unit(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_text("990\n")
    files = CounterFiles([path], owner="test", modulus=1000)
    total = 0
    value = 990
    for step in (5, 20, 999, 1, 0, 300):
        value = (value + step) % 1000
        total += step
        path.write_text(f"{value}\n")
        assert files.read() == [total]
    files.close()
    files.close()


def test_reset_without_modulus_counts_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c"
    path.write_text("500\n")
    files = CounterFiles([path], owner="test")
    path.write_text("700\n")
    assert files.read() == [200]
    path.write_text("100\n")
    with caplog.at_level(logging.WARNING):
        assert files.read() == [200]
        path.write_text("50\n")
        assert files.read() == [200]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    path.write_text("80\n")
    assert files.read() == [230]
    files.close()


def test_lost_file_is_reopened_once_then_fails(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_text("10\n")
    files = CounterFiles([path], owner="test", modulus=1000)
    fd = files._fds[0]
    assert fd is not None
    os.close(fd)  # reads now fail: reopened, and a lower value after a reopen is not a wrap
    path.write_text("5\n")
    assert files.read() == [0]
    path.write_text("15\n")
    assert files.read() == [10]
    fd = files._fds[0]
    assert fd is not None
    os.close(fd)
    path.unlink()
    with pytest.raises(MeasurementError, match="cannot be read any more"):
        files.read()
    files.close()


def test_bad_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        CounterFiles([], owner="test")
    with pytest.raises(FileNotFoundError):
        CounterFiles([tmp_path / "missing"], owner="test")
