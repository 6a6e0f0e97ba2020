"""Business hours and holidays: the clock SLAs run on, and when a person is back.

``data/hours.yaml`` names a time zone, the weekly opening hours (``HH:MM-HH:MM`` ranges per
day, ``24:00`` allowed as an end), holidays (local dates or inclusive date ranges) and, per
priority, whether its SLA clock runs ``always`` (24/7) or only in ``business_hours``. A file
without weekly hours (or no file at all) means open 24/7: every function below then reduces
to plain wall-clock arithmetic.

Pure functions (no database, no I/O apart from :func:`load_hours`). Times in and out are
timezone-aware; business time is real elapsed time inside the open intervals, computed in
UTC from local boundaries with ``zoneinfo``, so a 09:00-17:00 day is 8 hours on the days
clocks change too, and a 00:00-24:00 day is 23 or 25 hours then. Overnight ranges
(``22:00-06:00``) are refused with a hint: write ``22:00-24:00`` on one day and
``00:00-06:00`` on the next.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

logger = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_SEARCH_DAYS = 3 * 366  # a calendar with no open day within this is refused
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
Clock = Literal["always", "business_hours"]


class HoursError(ValueError):
    """An hours file or form that does not validate; the message names the field."""


def _minutes(hours: str, minutes: str, field: str, *, end: bool) -> int:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        raise ValueError(f"{field}: {hours}:{minutes} is not a time of day")
    return h * 60 + m


def parse_range(text: str, field: str) -> tuple[int, int]:
    """``"09:00-17:30"`` as minutes after midnight (540, 1050); ValueError naming ``field``."""
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"{field}: {text!r} is not a range like 09:00-17:00")
    start = _minutes(match[1], match[2], field, end=False)
    stop = _minutes(match[3], match[4], field, end=True)
    if stop <= start:
        raise ValueError(
            f"{field}: {text!r} ends before it starts; overnight hours are written as two "
            "ranges (22:00-24:00 on one day, 00:00-06:00 on the next)"
        )
    return start, stop


def _p1_always() -> dict[int, Clock]:
    return {1: "always"}


class Holiday(BaseModel):
    """Closed all day, ``start`` to ``end`` inclusive (local dates)."""

    model_config = ConfigDict(extra="forbid")

    start: date
    end: date | None = None
    name: str = Field(default="", max_length=100)

    @property
    def last(self) -> date:
        return self.end or self.start

    @model_validator(mode="after")
    def _ordered(self) -> Holiday:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"holiday {self.name or self.start}: ends before it starts")
        return self


class BusinessHours(BaseModel):
    """The validated contents of ``hours.yaml`` (empty: open 24/7)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    weekly: dict[str, list[str]] = Field(default_factory=dict)
    holidays: list[Holiday] = Field(default_factory=list, max_length=1000)
    # Per priority: "always" (24/7) or "business_hours"; priorities not named run in hours.
    sla_clock: dict[int, Clock] = Field(default_factory=_p1_always)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Berlin)") from None
        return value

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, ranges in value.items():
            if day not in DAYS:
                raise ValueError(f"{day!r} is not a day (use {', '.join(DAYS)})")
            spans = sorted(parse_range(r, f"weekly.{day}") for r in ranges)
            for (_, end), (start, _) in pairwise(spans):
                if start < end:
                    raise ValueError(f"weekly.{day}: ranges overlap")
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: list[Holiday]) -> list[Holiday]:
        spans = sorted(value, key=lambda h: h.start)
        for earlier, later in pairwise(spans):
            if later.start <= earlier.last:
                raise ValueError(
                    f"holidays overlap: {earlier.name or earlier.start} and "
                    f"{later.name or later.start}"
                )
        return value

    @field_validator("sla_clock")
    @classmethod
    def _priorities(cls, value: dict[int, Clock]) -> dict[int, Clock]:
        if any(p < 1 or p > 9 for p in value):
            raise ValueError("priorities are 1 to 9")
        return value

    # ------------------------------------------------------------------ derived views
    @property
    def always_open(self) -> bool:
        """No weekly hours configured: open 24/7 (today's behaviour)."""
        return not any(self.weekly.values())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def clock(self, priority: int) -> Clock:
        """How the SLA clock of ``priority`` runs."""
        if self.always_open:
            return "always"
        return self.sla_clock.get(priority, "business_hours")

    def ranges(self, day: date) -> list[tuple[int, int]]:
        """Open ranges of a local date (minutes after midnight); none on a holiday."""
        if any(h.start <= day <= h.last for h in self.holidays):
            return []
        found = self.weekly.get(DAYS[day.weekday()], [])
        return sorted(parse_range(r, DAYS[day.weekday()]) for r in found)


def load_hours(path: str | Path | None) -> BusinessHours:
    """Read and validate an hours file; a missing file means 24/7. HoursError names the field."""
    if path is None or not Path(path).exists():
        return BusinessHours()
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return validate_hours(data, source=str(path))


def validate_hours(data: Any, source: str = "hours") -> BusinessHours:
    """``BusinessHours`` from parsed data; HoursError ("field: problem; ...") otherwise."""
    try:
        return BusinessHours.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise HoursError(f"{source} is not valid: {problems}") from exc


def _problem(error: Any) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "hours"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message if message.startswith(f"{field}.") else f"{field}: {message}"


# ------------------------------------------------------------------------ arithmetic
def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    moment = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return moment.astimezone(UTC)


def intervals(cfg: BusinessHours, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Open intervals (UTC) that end after ``since``, in order, for up to MAX_SEARCH_DAYS."""
    zone = cfg.zone
    day = since.astimezone(zone).date() - timedelta(days=1)
    for offset in range(MAX_SEARCH_DAYS):
        current = day + timedelta(days=offset)
        for start, stop in cfg.ranges(current):
            begin, end = _local(current, start, zone), _local(current, stop, zone)
            if end > since and end > begin:
                yield begin, end


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_open(at: datetime, cfg: BusinessHours) -> bool:
    """Whether ``at`` falls inside business hours."""
    at = _aware(at)
    if cfg.always_open:
        return True
    first = next(intervals(cfg, at), None)
    return first is not None and first[0] <= at < first[1]


def next_open(at: datetime, cfg: BusinessHours) -> datetime:
    """``at`` itself when open, else the start of the next open interval (UTC)."""
    at = _aware(at)
    if cfg.always_open:
        return at
    for begin, _end in intervals(cfg, at):
        return max(begin, at)
    raise HoursError(f"no business hours within {MAX_SEARCH_DAYS} days of {at:%Y-%m-%d}")


def add_business_minutes(start: datetime, minutes: float, cfg: BusinessHours) -> datetime:
    """The moment ``minutes`` of business time after ``start`` (ending at a closing time
    rather than the next opening when it lands exactly there)."""
    start = _aware(start)
    if cfg.always_open:
        return start + timedelta(minutes=minutes)
    remaining = timedelta(minutes=minutes)
    for begin, end in intervals(cfg, start):
        from_ = max(begin, start)
        if remaining <= end - from_:
            return from_ + remaining
        remaining -= end - from_
    raise HoursError(f"no business hours within {MAX_SEARCH_DAYS} days of {start:%Y-%m-%d}")


def business_seconds_between(a: datetime, b: datetime, cfg: BusinessHours) -> float:
    """Seconds of business time from ``a`` to ``b`` (negative when ``b`` is earlier)."""
    a, b = _aware(a), _aware(b)
    if b < a:
        return -business_seconds_between(b, a, cfg)
    if cfg.always_open:
        return (b - a).total_seconds()
    total = 0.0
    for begin, end in intervals(cfg, a):
        if begin >= b:
            break
        total += (min(end, b) - max(begin, a)).total_seconds()
    return total


def sla_due_at(start: datetime, minutes: int, priority: int, cfg: BusinessHours) -> datetime:
    """When a first response of ``priority`` is due, on the priority's clock."""
    if cfg.clock(priority) == "always":
        return _aware(start) + timedelta(minutes=minutes)
    return add_business_minutes(start, minutes, cfg)


def elapsed(a: datetime, b: datetime, priority: int, cfg: BusinessHours) -> float:
    """Seconds from ``a`` to ``b`` on the priority's SLA clock (dashboard figures)."""
    if cfg.clock(priority) == "always":
        return (_aware(b) - _aware(a)).total_seconds()
    return business_seconds_between(a, b, cfg)


def back_at(at: datetime, cfg: BusinessHours) -> str | None:
    """None when open at ``at``; else when a person is back, in words, in the configured zone:
    "Monday 9:00 CET" (or "today 14:00 CET", "tomorrow 9:00 CET")."""
    if is_open(at, cfg):
        return None
    opens = next_open(at, cfg).astimezone(cfg.zone)
    here = _aware(at).astimezone(cfg.zone).date()
    days = (opens.date() - here).days
    when = "today" if days == 0 else "tomorrow" if days == 1 else DAY_NAMES[opens.weekday()]
    if days >= 7:
        when = f"{DAY_NAMES[opens.weekday()]} {opens.day} {opens:%B}"
    return f"{when} {opens.hour}:{opens.minute:02d} {opens.tzname()}"
