"""Edit the escalation thresholds and the strategic terms of ``policy.yaml`` without a redeploy.

The editable values are the VIP rule (tiers, minimum ARR, QBR and renewal within N days),
the at-risk maximum health score and the low-confidence threshold (``min_confidence``). The
changed file is validated by :class:`handoff.escalation.PolicyConfig` before it atomically
replaces the old one. Each value is rewritten on its own line, so the file's comments stay;
if a key is not found where expected, the whole file is dumped instead (keeping only the
header comment).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from handoff.errors import InvalidInput
from handoff.escalation import PolicyConfig

logger = logging.getLogger(__name__)

_write_lock = threading.Lock()


@dataclass(frozen=True)
class Thresholds:
    """The values an admin may change from the console."""

    vip_tiers: list[str]
    vip_min_arr: float
    vip_qbr_within_days: int
    vip_renewal_within_days: int
    at_risk_max_health_score: int
    min_confidence: float

    @classmethod
    def of(cls, policy: PolicyConfig) -> Thresholds:
        return cls(
            vip_tiers=list(policy.vip.tiers),
            vip_min_arr=policy.vip.min_arr,
            vip_qbr_within_days=policy.vip.qbr_within_days,
            vip_renewal_within_days=policy.vip.renewal_within_days,
            at_risk_max_health_score=policy.at_risk.max_health_score,
            min_confidence=policy.min_confidence,
        )

    def changes(self) -> dict[tuple[str, ...], Any]:
        """The values by their path in the file."""
        arr = int(self.vip_min_arr) if float(self.vip_min_arr).is_integer() else self.vip_min_arr
        return {
            ("vip", "tiers"): list(self.vip_tiers),
            ("vip", "min_arr"): arr,
            ("vip", "qbr_within_days"): self.vip_qbr_within_days,
            ("vip", "renewal_within_days"): self.vip_renewal_within_days,
            ("at_risk", "max_health_score"): self.at_risk_max_health_score,
            ("min_confidence",): self.min_confidence,
        }


def _validate(data: Any) -> PolicyConfig:
    try:
        return PolicyConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"the policy is not valid: {problems}") from exc


def _check_ranges(t: Thresholds) -> None:
    if t.vip_min_arr < 0:
        raise InvalidInput("VIP minimum ARR cannot be negative")
    if t.vip_qbr_within_days < 0 or t.vip_renewal_within_days < 0:
        raise InvalidInput("days cannot be negative")
    if not 0 <= t.at_risk_max_health_score <= 100:
        raise InvalidInput("the at-risk health score must be between 0 and 100")
    if any(not re.fullmatch(r"[a-z0-9_-]{1,50}", tier) for tier in t.vip_tiers):
        raise InvalidInput("tiers are lowercase words (letters, digits, - and _)")


def _flow(value: Any) -> str:
    """One YAML value on one line (``[a, b]``, ``50000``, ``0.5``)."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000)
        .strip()
        .removesuffix("\n...")
        .strip()
    )


def _replace_line(lines: list[str], path: tuple[str, ...], value: Any) -> bool:
    """Rewrite ``key: value`` of ``path`` (top level, or one level under a section)."""
    if len(path) == 1:
        pattern = re.compile(rf"^({re.escape(path[0])}:)[ \t]*[^#\n]*?([ \t]+#.*)?$")
        for i, line in enumerate(lines):
            match = pattern.match(line.rstrip("\n"))
            if match:
                lines[i] = f"{match.group(1)} {_flow(value)}{match.group(2) or ''}\n"
                return True
        return False
    section, key = path
    inside = False
    pattern = re.compile(rf"^(\s+{re.escape(key)}:)[ \t]*[^#\n]*?([ \t]+#.*)?$")
    for i, line in enumerate(lines):
        text = line.rstrip("\n")
        if re.match(r"^\S", text) and not text.startswith("#"):
            inside = text.split(":", 1)[0].strip() == section and text.rstrip().endswith(":")
            continue
        match = pattern.match(text) if inside else None
        if match:
            lines[i] = f"{match.group(1)} {_flow(value)}{match.group(2) or ''}\n"
            return True
    return False


def header_comments(text: str) -> str:
    """The comment lines at the top of a YAML file (kept when the body is rewritten)."""
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (a temporary file, fsync, rename: never half written)."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_thresholds(policy_path: Path, thresholds: Thresholds) -> PolicyConfig:
    """Write ``thresholds`` into the policy file (validated, atomic) and return the policy."""
    _check_ranges(thresholds)
    path = Path(policy_path)
    with _write_lock:
        text = path.read_text(encoding="utf-8")
        data: dict[str, Any] = yaml.safe_load(text) or {}
        for keys, value in thresholds.changes().items():
            node = data
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
        policy = _validate(data)
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        edited = all(_replace_line(lines, k, v) for k, v in thresholds.changes().items())
        new_text = "".join(lines)
        if not edited or yaml.safe_load(new_text) != data:
            logger.info("policy file layout not recognised: rewriting it whole")
            body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            new_text = header_comments(text) + body
        write_atomically(path, new_text)
    logger.info("escalation thresholds changed in %s", path.name)
    return policy


MAX_TERMS = 500
MAX_TERM_CHARS = 100


def clean_terms(raw: str) -> list[str]:
    """One term per line: trimmed, inner spacing collapsed, duplicates (any case) dropped."""
    terms: list[str] = []
    seen: set[str] = set()
    for line in raw.splitlines():
        term = " ".join(line.split())
        if not term:
            continue
        if len(term) > MAX_TERM_CHARS:
            raise InvalidInput(f"a term is at most {MAX_TERM_CHARS} characters: {term[:40]}…")
        if not term.isprintable() or not any(ch.isalnum() for ch in term):
            raise InvalidInput(
                f"a term needs letters or digits and no control characters: {term!r}"
            )
        if term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    if len(terms) > MAX_TERMS:
        raise InvalidInput(f"at most {MAX_TERMS} terms")
    return terms


def _terms_block(terms: list[str]) -> list[str]:
    """The ``strategic_terms`` entry as YAML lines, one ``  - term`` per term."""
    if not terms:
        return ["strategic_terms: []\n"]
    return ["strategic_terms:\n", *(f"  - {_flow(t)}\n" for t in terms)]


def _replace_terms_block(lines: list[str], terms: list[str]) -> bool:
    """Replace the top-level ``strategic_terms:`` entry and its ``  - item`` lines."""
    for i, line in enumerate(lines):
        if re.match(r"^strategic_terms:", line):
            end = i + 1
            while end < len(lines) and re.match(r"^\s+-\s", lines[end]):
                end += 1
            lines[i:end] = _terms_block(terms)
            return True
    return False


def save_strategic_terms(policy_path: Path, terms: list[str]) -> PolicyConfig:
    """Write the policy's ``strategic_terms`` (validated, atomic; other lines and comments
    kept) and return the policy."""
    path = Path(policy_path)
    with _write_lock:
        text = path.read_text(encoding="utf-8")
        data: dict[str, Any] = yaml.safe_load(text) or {}
        data["strategic_terms"] = list(terms)
        policy = _validate(data)
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        if not _replace_terms_block(lines, terms):
            lines += ["\n", *_terms_block(terms)]
        new_text = "".join(lines)
        if yaml.safe_load(new_text) != data:
            logger.info("policy file layout not recognised: rewriting it whole")
            body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            new_text = header_comments(text) + body
        write_atomically(path, new_text)
    logger.info("strategic terms changed in %s (%d terms)", path.name, len(terms))
    return policy
