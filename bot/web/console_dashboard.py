"""The console's dashboard: support figures over a date range, as tables and SVG charts.

The figures (and who may see which) are ``handoff.metrics``'s job; this page reads the range
from GET parameters (default: the last 30 days), formats the numbers and lays out the charts
(``bot.web.charts`` geometry, drawn by the ``_charts.html`` macros).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from bot.web import charts
from bot.web import console_views as views
from bot.web.console import DbDep, StaffDep, _now, _page
from bot.web.deps import ServicesDep
from bot.web.forms import refuse_unstorable_input
from handoff import canned, metrics
from handoff.errors import InvalidInput

router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    dependencies=[Depends(refuse_unstorable_input)],
)

DEFAULT_DAYS = 30


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "—" if value is None else views.duration(value)


def _label(code: str) -> str:
    return code.replace("_", " ")


def _row(f: metrics.TierFigures) -> dict[str, Any]:
    return {
        "tier": "All tiers" if f.tier == "all" else f.tier,
        "conversations": f.conversations,
        "auto_resolved": f.auto_resolved,
        "deflection": _pct(f.deflection_rate),
        "escalated_conversations": f.escalated_conversations,
        "escalations": f.escalations,
        "frt_median": _secs(f.first_response.median),
        "frt_p90": _secs(f.first_response.p90),
        "frt_count": f.first_response.count,
        "ttr_median": _secs(f.resolution.median),
        "ttr_p90": _secs(f.resolution.p90),
        "ttr_count": f.resolution.count,
        "csat": "—" if f.csat_average is None else f"{f.csat_average:.2f}",
        "csat_count": f.csat_count,
    }


def _range(start: str, end: str, today: date) -> tuple[date, date, str | None]:
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    if not start and not end:
        return (*default, None)
    try:
        first = date.fromisoformat(start) if start else default[0]
        last = date.fromisoformat(end) if end else today
    except ValueError:
        return (*default, "Dates must look like 2026-01-31; showing the last 30 days.")
    return first, last, None


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    start: str = "",
    end: str = "",
) -> Response:
    """Auto-resolution, escalations, response and resolution times, CSAT and intents."""
    today = _now().date()
    first, last, error = _range(start[:10], end[:10], today)
    faq = [n for n, i in services.models.config().intents.items() if i.category == "faq"]
    hours = services.models.config().hours  # response times count business time (issue 16)
    try:
        d = metrics.dashboard(db, staff.principal, first, last, faq_intents=faq, hours=hours)
    except InvalidInput as exc:
        error = f"{exc}; showing the last 30 days."
        first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
        d = metrics.dashboard(db, staff.principal, first, last, faq_intents=faq, hours=hours)
    weekly = metrics.not_knowing_weekly(db, staff.principal, today)
    short = "%d %b" if first.year == last.year else "%d %b %Y"
    per_day = [(day.strftime(short), n) for day, n in d.escalations_per_day]
    values = {
        "nav": "dashboard",
        "start": first.isoformat(),
        "end": last.isoformat(),
        "error": error,
        "scope": "Your accounts" if d.scoped else "All accounts",
        "canned_usage": [
            {"title": t, "kind": "shared" if shared else "personal", "uses": n}
            for t, shared, n in canned.usage(db, *metrics.date_window(first, last))
        ],
        "business_time": not hours.always_open,
        "total": _row(d.total),
        "tiers": [_row(t) for t in d.tiers],
        "deflection_chart": charts.hbars(
            [(_row(t)["tier"], round((t.deflection_rate or 0) * 100, 1)) for t in d.tiers]
        ),
        "reasons": [{"code": c, "label": _label(c), "count": n} for c, n in d.reasons],
        "not_knowing": [
            {
                "week": w.start.isoformat(),
                "label": w.start.strftime("%d %b"),
                "handoffs": w.handoffs,
                "not_knowing": w.not_knowing,
                "share": _pct(w.share),
            }
            for w in weekly
        ],
        "not_knowing_chart": charts.line_chart(
            [(w.start.strftime("%d %b"), round((w.share or 0) * 100, 1)) for w in weekly]
        ),
        "reasons_chart": charts.hbars([(_label(c), n) for c, n in d.reasons]),
        "per_day_chart": charts.line_chart(per_day),
        "escalations_total": sum(n for _, n in d.escalations_per_day),
        "csat_chart": charts.bar_chart([(str(s), n) for s, n in d.csat_scores.items()], 320, 150),
        "csat_scores": d.csat_scores,
        "intents": [{"label": _label(i), "count": n} for i, n in d.top_intents],
        "intents_chart": charts.hbars([(_label(i), n) for i, n in d.top_intents]),
        "feedback": [
            {
                "intent": _label(f.intent),
                "answers": f.answers,
                "helpful": f.helpful,
                "didnt_help": f.didnt_help,
                "rate": _pct(f.didnt_help_rate),
            }
            for f in d.intent_feedback
        ],
    }
    return _page(request, "dashboard.html", staff, values)
