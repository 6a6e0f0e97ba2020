"""The admin page's business hours form (admins only): validated, saved, reloaded.

The form is ``handoff.hours_edit``'s text fields; a refusal names the field, shows the
admin's input again and saves nothing. Other instances pick the file up on their next
check (``CONFIG_RELOAD_SECONDS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from bot.web.console import CSRF, StaffDep, _page, _redirect
from bot.web.deps import ServicesDep
from bot.web.forms import refuse_unstorable_input
from handoff import access
from handoff.errors import InvalidInput
from handoff.hours import DAYS
from handoff.hours_edit import from_form, save_hours

router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    dependencies=[Depends(refuse_unstorable_input)],
)

Field = Annotated[str, Form(max_length=500)]


@router.post("/admin/hours", dependencies=CSRF)
async def edit_hours(
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    timezone: Field = "",
    holidays: Annotated[str, Form(max_length=60_000)] = "",
    always: Field = "",
) -> Response:
    """Replace the business hours: time zone, hours per day, holidays, 24/7 priorities."""
    if not access.is_admin(staff.principal):
        values = {"nav": "", "what": "the admin page"}
        return _page(request, "forbidden.html", staff, values, status=403)
    form = await request.form()
    days = {day: str(form.get(day) or "")[:500] for day in DAYS}
    try:
        data = from_form(timezone, days, holidays, always)
        cfg = save_hours(Path(services.settings.hours_path), data)
    except InvalidInput as exc:
        return _redirect(request, "/console/admin#hours", f"Not saved: {exc}", "error")
    services.models.load()
    state = "open 24/7" if cfg.always_open else f"time zone {cfg.timezone}"
    return _redirect(request, "/console/admin#hours", f"Business hours saved ({state}).")
