"""Settings edited in the dashboard (budgets, caps) layered over the environment's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.config import Settings
from core.errors import InvalidInput
from core.data.models import AppSetting, utcnow

EDITABLE = ("daily_budget_usd", "monthly_budget_usd", "sweep_budget_usd", "inflight_cap",
            "max_cells_per_sweep", "chunk_size")


def effective_settings(session: Session, base: Settings) -> Settings:
    overrides = {row.key: row.value["value"] for row in session.scalars(select(AppSetting))
                 if row.key in EDITABLE}
    return base.model_copy(update=overrides) if overrides else base


def save_settings(session: Session, base: Settings, changes: dict[str, Any], *, actor: str) -> None:
    """Validate through the Settings model, then store only what differs."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"{', '.join(sorted(unknown))} cannot be edited here; "
                           f"editable: {', '.join(EDITABLE)}.")
    try:
        Settings.model_validate({**base.model_dump(), **changes})
    except Exception as exc:  # pydantic's message names the field and the rule
        raise InvalidInput(f"Settings not saved: {exc}") from exc
    for key, value in changes.items():
        row = session.get(AppSetting, key)
        if row is None:
            session.add(AppSetting(key=key, value={"value": value}, updated_by=actor))
        else:
            row.value, row.updated_by, row.updated_at = {"value": value}, actor, utcnow()
    record(session, actor, "edit_settings", "settings", "-", changes)
