"""The examples in README.md and docs/*.md that are marked to run, run, and print what they show.

How a fenced example is marked (the marker is invisible once rendered):

- ``<!-- test -->`` on the line before the fence, or the word ``test`` in the fence's info string
  (```` ```python test ````): the block runs.
- ``<!-- test: OPTION ... -->`` adds options:

  - ``file=PATH``: the block is not run but written to PATH in the example's folder, for the
    blocks after it in the same page (a plugin's ``pyproject.toml`` and module); ``.py`` files
    are compiled and ``.toml`` files parsed on the way;
  - ``pytest``: the block is a test module, run with pytest in the example's folder;
  - ``words``: compare a console block's output word by word (for output wrapped in the page);
  - ``status=N``: the exit status the commands must end with (default 0);
  - ``entrypoints``: the example needs the installed plugins (the ``entrypoints`` marker).

Console blocks (```` ```console ````): each ``$ carbonkit ...`` line is run as
``python -m carbonkit ...`` from the repository root, and the lines under it, up to the next ``$``
line, must be exactly what it prints on standard output. Other commands are refused.

Python blocks run with ``python`` in a fresh folder holding ``logs/`` (a copy of the fixture
project, tests/reports/fixtures/project) and the files of earlier ``file=`` blocks of the page,
with its ``src/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIXTURE_LOGS = ROOT / "tests" / "reports" / "fixtures" / "project"
#: Pages that must hold runnable examples (so that losing the markers cannot pass unnoticed).
REQUIRED = {"docs/reports.md": 4, "docs/plugins.md": 3}

_MARKER = re.compile(r"^<!--\s*test(?::\s*(?P<options>.*?))?\s*-->$")
_FENCE = re.compile(r"^(?P<fence>```+)(?P<info>.*)$")


@attrs.frozen
class Example:
    page: str
    line: int
    language: str
    body: str
    options: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse_options(text: str) -> dict[str, str]:
    options = {}
    for word in text.split():
        key, _, value = word.partition("=")
        options[key] = value
    return options


def examples(page: Path) -> list[Example]:
    """The marked fenced blocks of ``page``, in order."""
    found = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        fence, info = m["fence"], m["info"].split()
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        marker = _MARKER.match(previous)
        previous = ""
        if marker is None and "test" not in info[1:]:
            continue
        options = parse_options(marker["options"] or "") if marker else {}
        found.append(Example(page=str(page.relative_to(ROOT)), line=start + 1, language=info[0] if info else "",
                             body="\n".join(body) + "\n", options=options))
    return found


ALL = [e for page in PAGES for e in examples(page)]


def params() -> list[object]:
    out = []
    for e in ALL:
        if "file" in e.options:
            continue
        marks = [pytest.mark.entrypoints] if "entrypoints" in e.options else []
        out.append(pytest.param(e, id=e.id, marks=marks))
    return out


def test_the_pages_hold_their_examples():
    """reports.md and plugins.md keep their runnable examples marked."""
    for page, least in REQUIRED.items():
        assert sum(1 for e in ALL if e.page == page) >= least, page


def folder_for(example: Example, tmp_path: Path) -> Path:
    """A fresh folder with logs/ and every file= block of the page written before ``example``."""
    shutil.copytree(FIXTURE_LOGS, tmp_path / "logs")
    for e in ALL:
        if e.page != example.page or e.line >= example.line or "file" not in e.options:
            continue
        target = tmp_path / e.options["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(e.body, encoding="utf-8")
        if target.suffix == ".py":
            compile(e.body, str(target), "exec")
        elif target.suffix == ".toml" and sys.version_info >= (3, 11):
            import tomllib

            tomllib.loads(e.body)
    return tmp_path


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_console(example: Example) -> None:
    status = int(example.options.get("status", "0"))
    commands: list[tuple[str, list[str]]] = []
    for line in example.body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            pytest.fail(f"{example.id}: output before any '$ ' command: {line!r}")
    assert commands, f"{example.id}: a console example without a '$ ' command"
    for command, expected_lines in commands:
        argv = shlex.split(command)
        assert argv[0] == "carbonkit", f"{example.id}: only carbonkit commands are run, not {command!r}"
        proc = subprocess.run([sys.executable, "-m", "carbonkit", *argv[1:]], cwd=ROOT, env=environment(ROOT),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == status, f"{example.id}: {command!r} exited {proc.returncode}: {proc.stderr}"
        expected = "\n".join(expected_lines).rstrip("\n") + "\n"
        if "words" in example.options:
            assert proc.stdout.split() == expected.split(), f"{example.id}: {command!r} printed:\n{proc.stdout}"
        else:
            assert proc.stdout == expected, f"{example.id}: {command!r} printed:\n{proc.stdout}"


@pytest.mark.parametrize("example", params())
def test_example_runs_as_written(example: Example, tmp_path: Path):
    """The example runs as written and, for console examples, prints what the page shows."""
    if example.language == "console":
        run_console(example)
        return
    assert example.language == "python", f"{example.id}: cannot run a {example.language!r} block"
    folder = folder_for(example, tmp_path)
    env = environment(folder)
    if "pytest" in example.options:
        (folder / "test_example.py").write_text(example.body, encoding="utf-8")
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (folder / "example.py").write_text(example.body, encoding="utf-8")
        argv = [sys.executable, "example.py"]
    proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == int(example.options.get("status", "0")), (
        f"{example.id} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
