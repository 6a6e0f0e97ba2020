"""Approved WhatsApp message templates: the only thing an agent may send outside the 24-hour
customer-service window (Cloud API error 131047 otherwise).

``data/whatsapp_templates.yaml`` lists what an admin registered in Meta's WhatsApp Manager and
got approved: the template's name and language code, the names of its body parameters (in
order: ``{{1}}``, ``{{2}}``...) and a preview of its body for agents. The file is validated
(:func:`load_catalog`); a missing file means no templates. :func:`fill` checks an agent's
parameters against a template and returns the values in order plus the text the customer
will see, or raises ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from handoff.errors import InvalidInput

WINDOW = timedelta(hours=24)
MAX_PARAMETER_CHARS = 1024  # WhatsApp's limit for a body parameter
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


class MessageTemplate(BaseModel):
    """One approved template (body parameters only: ``{{1}}`` .. ``{{n}}``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    parameters: list[str] = Field(default_factory=list, max_length=20)
    preview: str = Field(min_length=1, max_length=1024)
    description: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _placeholders_match(self) -> MessageTemplate:
        used = sorted({int(n) for n in _PLACEHOLDER.findall(self.preview)})
        expected = list(range(1, len(self.parameters) + 1))
        if used != expected:
            raise ValueError(
                f"template {self.name}: the preview uses {len(used)} placeholder(s) "
                f"({', '.join('{{' + str(n) + '}}' for n in used) or 'none'}) but "
                f"{len(self.parameters)} parameter(s) are named"
            )
        if len(set(self.parameters)) != len(self.parameters):
            raise ValueError(f"template {self.name}: parameter names repeat")
        return self

    @property
    def key(self) -> str:
        return f"{self.name}:{self.language}"


class TemplateCatalog(BaseModel):
    """The validated contents of ``whatsapp_templates.yaml``."""

    model_config = ConfigDict(extra="forbid")

    templates: list[MessageTemplate] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _unique(self) -> TemplateCatalog:
        keys = [t.key for t in self.templates]
        if len(set(keys)) != len(keys):
            raise ValueError("a template name and language pair is listed twice")
        return self

    def find(self, name: str, language: str) -> MessageTemplate:
        """The template, or InvalidInput naming what is unknown."""
        for template in self.templates:
            if template.name == name and template.language == language:
                return template
        raise InvalidInput(f"template: no approved template {name!r} in language {language!r}")


def load_catalog(path: str | Path | None) -> TemplateCatalog:
    """Read and validate a templates file (a missing file: no templates); ValueError names
    the field."""
    if path is None or not Path(path).exists():
        return TemplateCatalog()
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    try:
        return TemplateCatalog.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ValueError(f"invalid WhatsApp templates {path}: {problems}") from exc


def fill(template: MessageTemplate, parameters: list[str]) -> tuple[list[str], str]:
    """The parameter values (trimmed, in order) and the text the customer will see.

    InvalidInput names the field: a wrong number of parameters, or an empty or too long one.
    """
    if len(parameters) != len(template.parameters):
        raise InvalidInput(
            f"parameters: template {template.name} takes {len(template.parameters)} "
            f"parameter(s) ({', '.join(template.parameters) or 'none'}), {len(parameters)} given"
        )
    values: list[str] = []
    for index, (name, raw) in enumerate(zip(template.parameters, parameters, strict=True)):
        value = " ".join(str(raw).split())  # WhatsApp refuses newlines and tabs in parameters
        if not value:
            raise InvalidInput(f"parameters[{index}] ({name}) is empty")
        if len(value) > MAX_PARAMETER_CHARS:
            raise InvalidInput(
                f"parameters[{index}] ({name}) is longer than {MAX_PARAMETER_CHARS} characters"
            )
        values.append(value)
    text = _PLACEHOLDER.sub(lambda m: values[int(m.group(1)) - 1], template.preview)
    return values, text


def window_closes_at(last_inbound: datetime | None) -> datetime | None:
    """When the customer-service window closes (None: the customer never wrote)."""
    return last_inbound + WINDOW if last_inbound is not None else None
