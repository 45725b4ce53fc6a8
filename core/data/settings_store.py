"""Settings edited in the dashboard (budgets, caps) layered over the environment's.

The Settings page and ``python -m core settings show|set`` both read and write through
here: the same names (the README's configuration table, lower case), the same validation,
one audit entry per change."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.config import Settings
from core.errors import ConfigurationError, InvalidInput
from core.data.models import AppSetting, utcnow

EDITABLE = ("daily_budget_usd", "monthly_budget_usd", "sweep_budget_usd", "inflight_cap",
            "max_cells_per_sweep", "chunk_size")


DEPLOYMENT_KEY = "deployment_id"


def deployment_id(session: Session) -> str:
    """This database's random id (written by migration 0010): the prefix of its Redis queue."""
    row = session.get(AppSetting, DEPLOYMENT_KEY)
    if row is None:
        raise ConfigurationError("The database has no deployment id: run `python -m core "
                                 "migrate` (migration 0010 writes it).")
    return str(row.value["value"])


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
        validated = Settings.model_validate({**base.model_dump(), **changes})
    except Exception as exc:  # pydantic's message names the field and the rule
        raise InvalidInput(f"Settings not saved: {exc}") from exc
    changes = {key: getattr(validated, key) for key in changes}  # stored as typed, "2" → 2
    for key, value in changes.items():
        row = session.get(AppSetting, key)
        if row is None:
            session.add(AppSetting(key=key, value={"value": value}, updated_by=actor))
        else:
            row.value, row.updated_by, row.updated_at = {"value": value}, actor, utcnow()
    record(session, actor, "edit_settings", "settings", "-", changes)


@dataclasses.dataclass(frozen=True)
class SettingRow:
    """One setting as ``settings show`` lists it: what is in effect and where it comes from."""

    name: str
    value: Any
    source: str  # "stored" (Settings page / CLI), "environment" or "default"
    editable: bool
    updated_by: str | None = None
    updated_at: dt.datetime | None = None
    environment_value: Any = None


def describe_settings(session: Session, base: Settings) -> list[SettingRow]:
    """Every setting of the README's table with its effective value; secrets masked."""
    stored = {row.key: row for row in session.scalars(select(AppSetting)) if row.key in EDITABLE}
    current = effective_settings(session, base)
    rows = []
    for name in Settings.model_fields:
        env_value = _shown(name, getattr(base, name))
        if name in stored:
            row = stored[name]
            rows.append(SettingRow(name, _shown(name, getattr(current, name)), "stored", True,
                                   row.updated_by, row.updated_at, env_value))
        else:
            source = "environment" if name in base.model_fields_set else "default"
            rows.append(SettingRow(name, env_value, source, name in EDITABLE,
                                   environment_value=env_value))
    return rows


def _shown(name: str, value: Any) -> Any:
    if name == "replicate_api_token":
        from core.config import mask_token

        return mask_token(value.get_secret_value() if value is not None else None)
    return value


def set_setting(session: Session, base: Settings, name: str, text: str, *, actor: str) -> Any:
    """Store one editable setting given as text (as typed on a command line); the value
    stored, after the same validation as the Settings page."""
    key = name.strip().lower().replace("-", "_")
    if key not in EDITABLE:
        known = "is set by the environment only" if key in Settings.model_fields else "is unknown"
        raise InvalidInput(f"{name} {known}; editable here: {', '.join(EDITABLE)}.")
    save_settings(session, base, {key: text.strip()}, actor=actor)
    return effective_settings(session, base).model_dump()[key]
