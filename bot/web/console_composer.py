"""What the conversation page's reply box offers, as plain values for the template.

The canned replies the agent may use, rendered for this conversation (``canned.js`` filters
them as the agent types ``/`` and words), and on WhatsApp the 24-hour window's time left or,
once it closed, the approved templates with a field per parameter.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from bot import canned_replies
from bot.web import console_views as views
from handoff import canned, desk, template_replies
from handoff.access import Principal
from handoff.models import utcnow

logger = logging.getLogger(__name__)


def composer(
    db: Session, principal: Principal, agent_name: str, detail: desk.HandoffDetail, config: Any
) -> dict[str, Any]:
    """Canned replies rendered for this conversation, and WhatsApp's window and templates."""
    values = canned_replies.variables(detail, dict(config.links), agent_name)
    offered = []
    for reply in canned.list_replies(db, principal):
        try:
            text = canned_replies.render(reply.body, values)
        except ValueError:
            logger.warning("canned reply %s does not render; not offered", reply.id)
            continue
        offered.append(
            {
                "id": reply.id,
                "title": reply.title,
                "text": text,
                "shared": reply.owner_user_id is None,
            }
        )
    window: dict[str, Any] = {"whatsapp": False, "open": True, "text": ""}
    if detail.conversation.channel == template_replies.WHATSAPP:
        found = template_replies.window(db, detail.conversation)
        now = utcnow()
        is_open = found.open(now)
        window = {
            "whatsapp": True,
            "open": is_open,
            "text": (
                f"{views.duration(found.seconds_left(now))} left to reply freely"
                if is_open
                else "closed: only an approved template can reach the customer"
            ),
        }
    return {
        "canned": offered,
        "window": window,
        "templates": [
            {
                "key": t.key,
                "name": t.name,
                "language": t.language,
                "parameters": t.parameters,
                "preview": t.preview,
                "description": t.description,
            }
            for t in config.whatsapp_templates.templates
        ],
    }
