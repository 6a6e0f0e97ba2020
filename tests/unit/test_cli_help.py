"""The CLI starts fast (heavy command groups load lazily) and prints the real port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from bot.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
heavy = [m for m in ("sklearn", "telegram", "sqlalchemy", "numpy") if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def _commands(command: str | None) -> dict[str, str]:
    sub = next(a for a in build_parser(command)._actions if a.dest == "command")
    return {c.dest: c.help or "" for c in sub._choices_actions}  # type: ignore[attr-defined]


def test_help_imports_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "usage: triagebot" in out and "jobs" in out
    assert out.strip().endswith("HEAVY:"), out[-200:]


def test_the_lazy_help_lists_the_same_commands_as_the_real_parsers() -> None:
    assert _commands("") == _commands(None)


def test_public_url_follows_the_port_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    assert Settings(_env_file=None, port=8123).public_url == "http://127.0.0.1:8123"  # type: ignore[call-arg]
    given = Settings(_env_file=None, port=8123, public_url="https://bot.example.com")  # type: ignore[call-arg]
    assert given.public_url == "https://bot.example.com"


def test_the_run_banner_prints_the_configured_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    monkeypatch.setenv("PORT", "8123")
    assert main(["urls"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/console" in out and ":8000" not in out
