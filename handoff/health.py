"""Customer health: a 0-100 score in green / yellow / red bands, with its reasons in words.

The factors, weights and thresholds are configured in ``data/health.yaml`` (documented there).
``score_health`` is a pure function of ``HealthInputs`` (what ``health_inputs.gather`` reads
from the database); ``recompute_health`` stores the result on the account
(``health_score``, ``health_status``, ``attributes["health_factors"]``) and as a
``HealthSnapshot`` row, the history behind trends.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from handoff.models import Account, HealthSnapshot, utcnow

logger = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "health.yaml"
UNSCORED = (
    "health unknown: no usage data yet (scored when the first day of usage arrives,"
    " or by the nightly run)"
)
USAGE_FACTORS = ("usage_trend", "seat_utilisation", "engagement")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bands(_Strict):
    green_min: int = Field(default=80, ge=0, le=100)
    yellow_min: int = Field(default=40, ge=0, le=100)


class Factor(_Strict):
    weight: float = Field(default=10, ge=0)
    cap: int | None = Field(default=None, ge=0, le=100)


class UsageTrend(Factor):
    days: int = Field(default=7, ge=1)  # the recent window ...
    baseline_days: int = Field(default=21, ge=1)  # ... against the days just before it
    min_coverage: float = Field(default=0.7, gt=0, le=1)  # share of days with data, per window
    full_penalty_drop: float = Field(default=0.5, gt=0, le=1)

    def needed(self, days: int) -> int:
        """How many days of a ``days``-day window need data before the window counts."""
        return max(1, math.ceil(self.min_coverage * days - 1e-9))


class SeatUtilisation(Factor):
    poor: float = Field(default=0.3, ge=0, le=1)
    good: float = Field(default=0.8, gt=0, le=1)


class Engagement(Factor):
    good_logins_per_seat_week: float = Field(default=3, gt=0)


class Windowed(Factor):
    days: int = Field(default=30, ge=1)


class Counted(Windowed):
    full_penalty_count: int = Field(default=3, ge=1)


class RepeatedProblems(Counted):
    min_count: int = Field(default=3, ge=2)


class Renewal(Factor):
    window_days: int = Field(default=90, ge=1)


class Factors(_Strict):
    usage_trend: UsageTrend = UsageTrend(weight=20, cap=45)
    seat_utilisation: SeatUtilisation = SeatUtilisation(weight=15)
    engagement: Engagement = Engagement(weight=15)
    nps: Windowed = Windowed(weight=10, days=180)
    csat: Windowed = Windowed(weight=5, days=90)
    negative_messages: Counted = Counted(weight=15, days=30)
    escalations: Counted = Counted(weight=15, days=14, cap=35)
    repeated_problems: RepeatedProblems = RepeatedProblems(weight=10, full_penalty_count=1)
    didnt_help: Counted = Counted(weight=5)
    renewal: Renewal = Renewal(weight=5)


class AlertRules(_Strict):
    cooldown_days: int = Field(default=7, ge=0)
    usage_drop: float = Field(default=0.3, gt=0, le=1)
    vip_quiet_days: int = Field(default=10, ge=1)
    vip_renewal_within_days: int = Field(default=60, ge=0)


class SupportRules(_Strict):
    recurring_min_count: int = Field(default=3, ge=2)
    recurring_days: int = Field(default=30, ge=1)
    didnt_help_cluster_min: int = Field(default=3, ge=1)
    digest_days: int = Field(default=7, ge=1)


class HealthConfig(_Strict):
    """The validated contents of ``health.yaml``."""

    bands: Bands = Bands()
    factors: Factors = Factors()
    alerts: AlertRules = AlertRules()
    support: SupportRules = SupportRules()


def load_health_config(path: str | Path = DEFAULT_PATH) -> HealthConfig:
    """Read and validate a health file; raises ValueError naming the file and the bad field."""
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    try:
        return HealthConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError, re-raised with the file named
        raise ValueError(f"invalid health configuration {path}: {exc}") from exc


@dataclass(frozen=True)
class HealthInputs:
    """The signals of one account on one day (None: no data for that factor)."""

    active_recent: float | None = None  # median daily active users, recent window
    active_prior: float | None = None  # ... the baseline window just before it
    trend_days: int = 7
    baseline_days: int = 21
    seats: int | None = None
    active_last_week: float | None = None
    logins_per_seat_week: float | None = None
    nps_scores: tuple[int, ...] = ()
    csat_scores: tuple[int, ...] = ()
    negative_messages: int = 0
    escalations: int = 0
    repeated_intents: tuple[str, ...] = ()
    didnt_help: int = 0
    days_to_renewal: int | None = None
    basis: tuple[str, ...] = ()  # what data the score rests on, in words


@dataclass(frozen=True)
class FactorResult:
    name: str
    sub_score: float  # 0 bad .. 1 good
    weight: float
    text: str  # the factor in words
    impact: float = 0.0  # points of the 100 this factor cost
    value: float | None = None  # the measure behind it (e.g. the usage change, -0.42)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sub_score": round(self.sub_score, 3),
            "weight": self.weight,
            "impact": round(self.impact, 1),
            "text": self.text,
            "value": self.value,
        }


@dataclass(frozen=True)
class HealthResult:
    score: int
    status: str  # green, yellow, red
    factors: list[FactorResult] = field(default_factory=list)
    capped_by: str | None = None
    basis: tuple[str, ...] = ()  # what data it rests on (e.g. days of usage), in words

    def reasons(self, limit: int = 4) -> list[str]:
        """The factors that cost points, worst first, in words (all strengths if none)."""
        costly = [f for f in sorted(self.factors, key=lambda f: -f.impact) if f.impact >= 1]
        if self.capped_by and all(f.name != self.capped_by for f in costly[:limit]):
            costly.insert(0, next(f for f in self.factors if f.name == self.capped_by))
        chosen = costly or sorted(self.factors, key=lambda f: -f.weight)
        return [f.text for f in chosen[:limit]]

    def explained(self, limit: int = 4) -> list[str]:
        """The reasons, led by what data is missing when no usage factor could be scored."""
        if not self.basis or any(self.factor(name) for name in USAGE_FACTORS):
            return self.reasons(limit)
        note = f"{self.basis[0]}: the score rests on support signals only"
        return [note, *self.reasons(limit - 1)]

    def factor(self, name: str) -> FactorResult | None:
        return next((f for f in self.factors if f.name == name), None)


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def _pct(x: float) -> str:
    return f"{x * 100:+.0f}%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counted(name: str, cfg: Counted, n: int, text: str) -> FactorResult:
    return FactorResult(name, _clamp(1 - n / cfg.full_penalty_count), cfg.weight, text)


def factor_results(inputs: HealthInputs, cfg: HealthConfig) -> list[FactorResult]:
    """Each factor with data, its sub-score and its description (impact not yet set)."""
    f = cfg.factors
    out: list[FactorResult] = []
    if inputs.active_recent is not None and inputs.active_prior:
        change = (inputs.active_recent - inputs.active_prior) / inputs.active_prior
        sub = _clamp(1 + change / f.usage_trend.full_penalty_drop) if change < 0 else 1.0
        text = (
            f"active users {_pct(change)} in the last {inputs.trend_days} days"
            f" vs the {inputs.baseline_days} before"
        )
        out.append(FactorResult("usage_trend", sub, f.usage_trend.weight, text, value=change))
    if inputs.seats and inputs.active_last_week is not None:
        util = inputs.active_last_week / inputs.seats
        su = f.seat_utilisation
        sub = _clamp((util - su.poor) / max(su.good - su.poor, 1e-9))
        text = f"seat utilisation {util:.0%} ({inputs.active_last_week:.0f} of {inputs.seats})"
        out.append(FactorResult("seat_utilisation", sub, su.weight, text))
    if inputs.logins_per_seat_week is not None:
        good = f.engagement.good_logins_per_seat_week
        text = f"{inputs.logins_per_seat_week:.1f} logins per seat per week"
        sub = _clamp(inputs.logins_per_seat_week / good)
        out.append(FactorResult("engagement", sub, f.engagement.weight, text))
    if inputs.nps_scores:
        avg = sum(inputs.nps_scores) / len(inputs.nps_scores)
        kind = "promoter" if avg >= 9 else "passive" if avg >= 7 else "detractor"
        text = f"NPS {avg:.1f}/10 ({kind}, {_plural(len(inputs.nps_scores), 'answer')})"
        out.append(FactorResult("nps", _clamp(avg / 10), f.nps.weight, text))
    if inputs.csat_scores:
        avg = sum(inputs.csat_scores) / len(inputs.csat_scores)
        text = f"CSAT {avg:.1f}/5 ({_plural(len(inputs.csat_scores), 'rating')})"
        out.append(FactorResult("csat", _clamp((avg - 1) / 4), f.csat.weight, text))
    n = inputs.negative_messages
    out.append(
        _counted(
            "negative_messages",
            f.negative_messages,
            n,
            f"{_plural(n, 'negative customer message')} in {f.negative_messages.days} days",
        )
    )
    n = inputs.escalations
    out.append(
        _counted(
            "escalations",
            f.escalations,
            n,
            f"{_plural(n, 'escalation')} in {f.escalations.days} days",
        )
    )
    reps = inputs.repeated_intents
    rp = f.repeated_problems
    text = (
        f"repeated problem{'s' if len(reps) > 1 else ''}: {', '.join(reps)} "
        f"({rp.min_count}+ times in {rp.days} days)"
        if reps
        else f"no repeated problem in {rp.days} days"
    )
    out.append(_counted("repeated_problems", rp, len(reps), text))
    n = inputs.didnt_help
    vote = '"didn\'t help" vote'
    text = f"{_plural(n, vote)} in {f.didnt_help.days} days"
    out.append(_counted("didnt_help", f.didnt_help, n, text))
    days = inputs.days_to_renewal
    if days is not None and days >= 0:
        window = f.renewal.window_days
        sub = _clamp(days / window)
        text = f"renewal in {_plural(days, 'day')}"
        out.append(FactorResult("renewal", sub, f.renewal.weight, text))
    return out


def status_for(score: int, bands: Bands) -> str:
    if score >= bands.green_min:
        return "green"
    return "yellow" if score >= bands.yellow_min else "red"


def score_health(inputs: HealthInputs, cfg: HealthConfig) -> HealthResult:
    """The health score (0-100), its band and its factors with the points each one cost."""
    results = factor_results(inputs, cfg)
    total_weight = sum(r.weight for r in results) or 1.0
    results = [
        replace(r, impact=100 * r.weight * (1 - r.sub_score) / total_weight) for r in results
    ]
    score = round(100 - sum(r.impact for r in results))
    capped_by = None
    for r in results:
        cap = getattr(cfg.factors, r.name).cap
        if cap is not None and r.sub_score <= 0 and score > cap:
            score, capped_by = cap, r.name
    score = max(0, min(100, score))
    return HealthResult(score, status_for(score, cfg.bands), results, capped_by, inputs.basis)


@dataclass(frozen=True)
class HealthChange:
    """A recomputation: the new result and the status before it."""

    result: HealthResult
    previous_status: str | None
    previous_score: int | None


def recompute_health(
    session: Session,
    account: Account,
    cfg: HealthConfig,
    today: date,
    *,
    at: datetime | None = None,
) -> HealthChange:
    """Score the account as of ``today``, store the score, its reasons and a snapshot taken
    ``at`` (default: now) (caller commits)."""
    from handoff.health_inputs import gather

    previous_status, previous_score = account.health_status, account.health_score
    result = score_health(gather(session, account, cfg, today), cfg)
    account.health_score = result.score
    account.health_status = result.status
    account.attributes = {
        **(account.attributes or {}),
        "health_factors": result.explained(),
        "health_basis": list(result.basis),
    }
    account.updated_at = utcnow()
    session.add(account)
    session.add(
        HealthSnapshot(
            account_id=account.id or 0,
            score=result.score,
            status=result.status,
            factors=[f.as_dict() for f in result.factors],
            computed_at=at or utcnow(),
        )
    )
    session.flush()
    logger.info("health of account %s: %s (%s)", account.external_id, result.score, result.status)
    return HealthChange(result, previous_status, previous_score)


@dataclass(frozen=True)
class HealthTrend:
    """An account's daily health over a window: the last score of each day with a snapshot."""

    points: tuple[tuple[date, int], ...]
    days: int

    @property
    def delta(self) -> int | None:
        """Latest score minus the first one in the window (None with fewer than two days)."""
        if len(self.points) < 2:
            return None
        return self.points[-1][1] - self.points[0][1]

    def words(self) -> str:
        """``"-36 in 30 days"``, ``"+8 in 30 days"``, ``"steady over 30 days"`` or ``""``."""
        delta = self.delta
        if delta is None:
            return ""
        span = (self.points[-1][0] - self.points[0][0]).days
        if delta == 0:
            return f"steady over {span} days"
        return f"{delta:+d} in {span} days"


def health_trends(
    session: Session, account_ids: list[int], today: date, days: int = 30
) -> dict[int, HealthTrend]:
    """The daily health of each account over the ``days`` days ending ``today``."""
    if not account_ids:
        return {}
    since = datetime.combine(today - timedelta(days=days - 1), time(0), tzinfo=UTC)
    rows = session.exec(
        select(HealthSnapshot.account_id, HealthSnapshot.score, HealthSnapshot.computed_at)
        .where(col(HealthSnapshot.account_id).in_(account_ids))
        .where(col(HealthSnapshot.computed_at) >= since)
        .order_by(col(HealthSnapshot.computed_at), col(HealthSnapshot.id))
    ).all()
    daily: dict[int, dict[date, int]] = {}
    for account_id, score, computed_at in rows:
        daily.setdefault(account_id, {})[computed_at.date()] = score  # last of the day wins
    return {
        account_id: HealthTrend(tuple(sorted(by_day.items())), days)
        for account_id, by_day in daily.items()
    }
