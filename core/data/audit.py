"""Who did what, and when: one row per write that matters (uploads, deletes, submits, edits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.data.models import AuditEntry


def record(session: Session, actor: str, action: str, target_type: str, target_id: Any,
           detail: dict[str, Any] | None = None) -> None:
    session.add(AuditEntry(actor=actor, action=action, target_type=target_type,
                           target_id=str(target_id), detail=detail or {}))
