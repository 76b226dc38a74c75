"""The project as an install, not a checkout: the wheel in a fresh venv, its extras, the
`python -m` entry points, and a `server` package of another distribution that shadows ours.

`pytest -m install` runs the wheel test alone (it reaches the package index, as CI can)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tui_collab import __version__

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHADOWED = (
    "the `server` package at {found} is not tui-collab's (expected {expected}): another "
    "distribution's `server` comes first on the path; uninstall it, or install tui-collab in "
    "an environment of its own (pipx install, uv tool install)"
)


def run(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=60,
        check=False,
    )


def shadowing_package(tmp_path: Path) -> Path:
    """A `server` package of someone else's, which leaves a mark if it is ever run."""
    package = tmp_path / "shadow" / "server"
    package.mkdir(parents=True)
    ran = tmp_path / "shadow-ran"
    (package / "__init__.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    (package / "cli.py").write_text("def main():\n    return 0\n")
    return package


@pytest.mark.parametrize(
    ("command", "prog"),
    [(["tui-collab-server", "--version"], "tui-collab-server"), (["tui-collab"], "tui-collab")],
)
def test_a_shadowing_server_package_is_named_and_never_run(
    tmp_path: Path, command: list[str], prog: str
) -> None:
    package = shadowing_package(tmp_path)
    args = [str(BIN / command[0]), *command[1:]]
    if prog == "tui-collab":
        args += ["--user", "alice", "--data-dir", str(tmp_path / "data")]
    result = run(args, env={"PYTHONPATH": str(package.parent)}, cwd=tmp_path)
    assert result.returncode == 1
    message = SHADOWED.format(found=package, expected=ROOT / "server")
    assert result.stderr == f"{prog}: {message}\n"
    assert result.stdout == ""
    assert not (tmp_path / "shadow-ran").exists()


def test_python_m_runs_both_commands() -> None:
    app = run([sys.executable, "-m", "tui_collab", "--version"], cwd=ROOT)
    server = run([sys.executable, "-m", "server", "--version"], cwd=ROOT)
    assert (app.returncode, app.stdout.split()[0]) == (0, "tui-collab")
    assert (server.returncode, server.stdout.split()[0]) == (0, "tui-collab-server")


@pytest.mark.install
@pytest.mark.timeout(240)
def test_the_wheel_installs_into_a_fresh_venv_bare_and_with_server(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)]
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("tui_collab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        info = archive.read(metadata).decode()
    assert {"tui_collab/py.typed", "tui_collab/__main__.py", "server/__main__.py"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in info
    assert "Project-URL: Source, " in info
    assert "Requires-Dist: aiosqlite" not in info.split("Provides-Extra")[0]  # not bare

    venv = tmp_path / "venv"
    # No pip in it (ensurepip is most of a venv's making): ours installs into it.
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    # Out of the checkout, with no path of ours: only what the wheel installed is found.
    clean = {"PYTHONPATH": "", "VIRTUAL_ENV": str(venv)}
    home = tmp_path / "home"

    def in_venv(*command: str) -> subprocess.CompletedProcess[str]:
        return run(list(command), env=clean | {"HOME": str(home)}, cwd=tmp_path)

    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile"]
    bare = in_venv(*pip, str(wheel))
    assert bare.returncode == 0, bare.stderr
    client = in_venv(
        str(python), "-c", "import tui_collab.client, tui_collab.app; print(tui_collab.__file__)"
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.startswith(str(venv))
    hint = "pip install 'tui-collab[server]'"
    no_server = in_venv(str(bin_dir / "tui-collab-server"), "schema")
    assert no_server.returncode == 1
    assert no_server.stderr == (
        "tui-collab-server: tui-collab-server needs the server's requirements (aiosqlite, "
        f"redis, prometheus_client missing): {hint}\n"
    )
    embedded = in_venv(str(bin_dir / "tui-collab"), "--user", "a", "--data-dir", str(home / "d"))
    assert embedded.returncode == 1
    assert embedded.stderr == (
        "tui-collab: without --server, tui-collab starts a local server, which needs the "
        f"server's requirements (aiosqlite, redis, prometheus_client missing): {hint}; or "
        "pass --server URL\n"
    )

    full = in_venv(*pip, f"{wheel}[server]")
    assert full.returncode == 0, full.stderr
    version = in_venv(str(bin_dir / "tui-collab"), "--version")
    assert (version.returncode, version.stdout) == (0, f"tui-collab {__version__}\n")
    schema = in_venv(str(bin_dir / "tui-collab-server"), "schema")
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["title"] == "tui-collab protocol v1"
    server = in_venv(str(python), "-m", "server", "--version")
    assert (server.returncode, server.stdout) == (0, f"tui-collab-server {__version__}\n")
