"""Edit ``hours.yaml`` from the admin page or the API: validated, atomic, comments kept.

The whole calendar is replaced at once (time zone, weekly hours, holidays, SLA clocks). It is
validated by :class:`handoff.hours.BusinessHours` first; a refusal names the field and writes
nothing. The file's leading comment block is kept and the body rewritten below it. Every
instance reloads the file on its next check (``ModelHolder.reload_if_changed``).

The admin form's text fields: a day's hours as ``09:00-12:00, 13:00-17:00`` (empty: closed),
holidays one per line as ``2026-12-24`` or ``2026-12-24..2026-12-26`` followed by a name, and
the priorities whose SLA clock runs 24/7 as ``1`` or ``1, 2``.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from handoff.errors import InvalidInput
from handoff.hours import DAYS, BusinessHours, HoursError, validate_hours
from handoff.policy_edit import header_comments, write_atomically

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_HOLIDAY = re.compile(r"^(\S+?)(?:\.\.(\S+))?(?:\s+(.*))?$")


def as_data(cfg: BusinessHours) -> dict[str, Any]:
    """The calendar as plain YAML-able data, in the file's order."""
    return {
        "timezone": cfg.timezone,
        "weekly": {day: list(cfg.weekly[day]) for day in DAYS if cfg.weekly.get(day)},
        "holidays": [
            {
                "start": h.start.isoformat(),
                **({"end": h.end.isoformat()} if h.end else {}),
                **({"name": h.name} if h.name else {}),
            }
            for h in sorted(cfg.holidays, key=lambda h: h.start)
        ],
        "sla_clock": {p: cfg.sla_clock[p] for p in sorted(cfg.sla_clock)},
    }


def _date(text: str, line: int) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidInput(
            f"holidays line {line}: {text!r} is not a date like 2026-12-24"
        ) from None


def from_form(
    timezone: str, days: dict[str, str], holidays: str, always_priorities: str
) -> dict[str, Any]:
    """The admin form's fields as calendar data (validated by :func:`save_hours`)."""
    weekly = {
        day: [r.strip() for r in days.get(day, "").split(",") if r.strip()]
        for day in DAYS
        if days.get(day, "").strip()
    }
    found: list[dict[str, Any]] = []
    for number, raw in enumerate(holidays.splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        match = _HOLIDAY.match(text)
        if match is None:  # pragma: no cover - the pattern matches any non-blank line
            raise InvalidInput(f"holidays line {number}: not understood")
        item: dict[str, Any] = {"start": _date(match[1], number)}
        if match[2]:
            item["end"] = _date(match[2], number)
        if match[3]:
            item["name"] = match[3].strip()
        found.append(item)
    clocks: dict[int, str] = {}
    for part in always_priorities.replace(" ", "").split(","):
        if not part:
            continue
        if not part.removeprefix("P").removeprefix("p").isdigit():
            raise InvalidInput(f"sla_clock: {part!r} is not a priority like 1")
        clocks[int(part.removeprefix("P").removeprefix("p"))] = "always"
    return {"timezone": timezone.strip(), "weekly": weekly, "holidays": found, "sla_clock": clocks}


def save_hours(path: Path, data: Any) -> BusinessHours:
    """Validate ``data`` and write it to ``path`` atomically (leading comments kept).

    InvalidInput names the field ("weekly.mon: ...", "holidays: holidays overlap ...");
    nothing is written then.
    """
    try:
        cfg = validate_hours(data, source="business hours")
    except HoursError as exc:
        raise InvalidInput(str(exc)) from exc
    path = Path(path)
    with _lock:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        body = yaml.safe_dump(as_data(cfg), sort_keys=False, allow_unicode=True, width=100)
        write_atomically(path, header_comments(old) + body)
    logger.info("business hours changed in %s", path.name)
    return cfg


def as_form(cfg: BusinessHours) -> dict[str, Any]:
    """The calendar as the admin form's text fields (the inverse of :func:`from_form`)."""
    holidays = []
    for h in sorted(cfg.holidays, key=lambda h: h.start):
        span = h.start.isoformat() + (f"..{h.end.isoformat()}" if h.end else "")
        holidays.append(f"{span} {h.name}".strip())
    return {
        "timezone": cfg.timezone,
        "days": {day: ", ".join(cfg.weekly.get(day, [])) for day in DAYS},
        "holidays": "\n".join(holidays),
        "always": ", ".join(str(p) for p, c in sorted(cfg.sla_clock.items()) if c == "always"),
        "always_open": cfg.always_open,
    }
