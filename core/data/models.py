"""Database tables (SQLAlchemy 2 typed models).

Timestamps are timezone-aware UTC. Enums are stored as their lowercase string values.
Aggregations for charts run in SQL over these columns, so the columns that charts group
or filter by (state, completed_at, sweep_id, scenario, model) are indexed.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    TypeDecorator,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,

)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend: SQLite keeps no zone, so it is restored on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, values_callable=lambda e: [m.value for m in e], native_enum=False,
                validate_strings=True, length=16)


class GenerationState(str, enum.Enum):
    PENDING = "pending"
    SUBMITTING = "submitting"  # create sent, prediction id not yet known
    SUBMITTED = "submitted"  # prediction id committed; Replicate is working on it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {GenerationState.SUCCEEDED, GenerationState.FAILED, GenerationState.CANCELED}
)


class ScenarioStatus(str, enum.Enum):
    DRAFT = "draft"
    CALIBRATED = "calibrated"
    PRODUCTION = "production"


class Endpoint(str, enum.Enum):
    REPLICATE = "replicate"
    EMULATOR = "emulator"


class ModelSpec(Base):
    __tablename__ = "model_spec"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(200), unique=True)  # owner/name
    version_id: Mapped[str | None] = mapped_column(String(80))
    strength_input: Mapped[str] = mapped_column(String(64), default="strength")
    image_input: Mapped[str] = mapped_column(String(64), default="image")
    input_schema: Mapped[dict[str, Any] | None]  # the version's openapi_schema, cached
    schema_fetched_at: Mapped[dt.datetime | None]
    # How predictions are created: "versioned" (POST /v1/predictions with a version),
    # "official" (POST /v1/models/{owner}/{name}/predictions, no version) or "deployment"
    # (POST /v1/deployments/{deployment}/predictions).
    create_via: Mapped[str] = mapped_column(String(16), default="versioned")
    deployment: Mapped[str | None] = mapped_column(String(200))  # owner/name of a deployment
    # The price table (core.planning.pricing): kind None = no price yet, planning refuses.
    pricing_kind: Mapped[str | None] = mapped_column(String(16))
    hardware: Mapped[str | None] = mapped_column(String(80))
    usd_per_second: Mapped[float | None] = mapped_column(Float)
    usd_per_image: Mapped[float | None] = mapped_column(Float)
    usd_per_megapixel: Mapped[float | None] = mapped_column(Float)
    usd_per_input_megapixel: Mapped[float | None] = mapped_column(Float)
    usd_per_run: Mapped[float | None] = mapped_column(Float)
    price_as_of: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD the price was read
    inflight_cap: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Scenario(Base):
    __tablename__ = "scenario"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    prompt_template: Mapped[str] = mapped_column(Text, default="")
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_ref: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[ScenarioStatus] = mapped_column(_enum(ScenarioStatus),
                                                   default=ScenarioStatus.DRAFT)
    version: Mapped[int] = mapped_column(default=1)
    # The approved version production reads; later versions are candidates until approved.
    production_version: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="")

    versions: Mapped[list[ScenarioVersion]] = relationship(
        back_populates="scenario", order_by="ScenarioVersion.version",
        cascade="all, delete-orphan")


class ScenarioVersion(Base):
    __tablename__ = "scenario_version"
    __table_args__ = (UniqueConstraint("scenario_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenario.id", ondelete="CASCADE"))
    version: Mapped[int]
    snapshot: Mapped[dict[str, Any]]
    diff: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(120))
    approved_at: Mapped[dt.datetime | None]
    approval_reason: Mapped[str | None] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text)  # approved despite a failed gate

    scenario: Mapped[Scenario] = relationship(back_populates="versions")


class InputImage(Base):
    __tablename__ = "input_image"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    storage_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int]
    label: Mapped[str] = mapped_column(String(200), default="")  # display only, never a key
    uploaded_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Sweep(Base):
    __tablename__ = "sweep"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    scenario_id: Mapped[int | None] = mapped_column(
        ForeignKey("scenario.id", ondelete="SET NULL"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_spec.id"))
    model_ref: Mapped[str] = mapped_column(String(200), index=True)
    version_id: Mapped[str] = mapped_column(String(80))
    axes: Mapped[dict[str, Any]]  # axis name -> list of values, as swept
    fixed_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    endpoint: Mapped[Endpoint] = mapped_column(_enum(Endpoint))
    created_by: Mapped[str] = mapped_column(String(120), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    estimated_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    estimated_duration_s: Mapped[float | None] = mapped_column(Float)  # as shown before submit
    fresh_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # Cancel-After sent with every create: a prediction not started by then ends aborted.
    cancel_after_s: Mapped[int | None] = mapped_column(Integer)
    cancel_requested_at: Mapped[dt.datetime | None]
    halted_reason: Mapped[str | None] = mapped_column(Text)  # e.g. budget reached
    # Reviews wanted per generation: None = every reviewer rates everything; N = a
    # generation leaves the review queue once N people have reviewed it.
    min_ratings: Mapped[int | None] = mapped_column(Integer)
    # The API base URL fixed at submission: a worker configured for another endpoint refuses
    # the sweep's cells rather than create predictions where the sweep was not meant to run.
    base_url: Mapped[str | None] = mapped_column(String(300))

    scenario: Mapped[Scenario | None] = relationship()
    model: Mapped[ModelSpec] = relationship()
    generations: Mapped[list[Generation]] = relationship(
        back_populates="sweep", cascade="all, delete-orphan", order_by="Generation.cell_index")


class Generation(Base):
    """One grid cell: one prediction, its parameters, timings, cost and stored output."""

    __tablename__ = "generation"
    __table_args__ = (
        UniqueConstraint("sweep_id", "cell_index"),
        # Covers the chart queries (finished cells in a date range) without touching the table.
        Index("ix_generation_finished", "state", "completed_at", "endpoint", "reused_from_id",
              "sweep_id", "cost_usd", "latency_s", "queue_s", "replicate_queue_s",
              "predict_time_s"),
        Index("ix_generation_sweep_state", "sweep_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweep.id", ondelete="CASCADE"))
    cell_index: Mapped[int]
    input_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("input_image.id", ondelete="CASCADE"), index=True)
    # The cell's model when a sweep runs several (the model axis); None: the sweep's model.
    model_id: Mapped[int | None] = mapped_column(ForeignKey("model_spec.id"))
    strength: Mapped[float | None] = mapped_column(Float)
    steps: Mapped[int | None]
    guidance: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int | None] = mapped_column(BigInteger)  # seeds go up to 2**32 - 1
    prompt: Mapped[str] = mapped_column(Text)
    prompt_label: Mapped[str] = mapped_column(String(200), default="")
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    model_input: Mapped[dict[str, Any]]  # full Replicate input, image excluded
    request_hash: Mapped[str] = mapped_column(String(64), index=True)
    endpoint: Mapped[Endpoint] = mapped_column(_enum(Endpoint))

    state: Mapped[GenerationState] = mapped_column(
        _enum(GenerationState), default=GenerationState.PENDING)
    replicate_status: Mapped[str | None] = mapped_column(String(16))
    prediction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    create_attempts: Mapped[int] = mapped_column(default=0)
    # Fencing token: every pick-up by a worker increments it, and that worker's writes
    # (begin submit, record the prediction, finish) only apply while it still matches, so a
    # worker that lost the cell to another can neither create for it nor finish it.
    fence: Mapped[int] = mapped_column(default=0, server_default="0")
    # Cost bound reserved before the create was sent, held against the caps until the cell
    # ends and its true cost is settled into cost_usd.
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    reused_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("generation.id", ondelete="SET NULL"))

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[dt.datetime | None]
    claimed_at: Mapped[dt.datetime | None]  # a worker picked the cell up
    submitting_at: Mapped[dt.datetime | None]  # the first create of this attempt was sent
    create_sent_at: Mapped[dt.datetime | None]  # the latest create was sent
    submitted_at: Mapped[dt.datetime | None]
    replicate_created_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]  # Replicate began predicting
    replicate_completed_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]  # output stored, or final failure recorded

    predict_time_s: Mapped[float | None] = mapped_column(Float)
    queue_s: Mapped[float | None] = mapped_column(Float)  # our queue: enqueued → claimed
    replicate_queue_s: Mapped[float | None] = mapped_column(Float)  # created → started
    overhead_s: Mapped[float | None] = mapped_column(Float)  # download + store
    latency_s: Mapped[float | None] = mapped_column(Float)  # enqueued → completed
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)

    output_key: Mapped[str | None] = mapped_column(String(200))
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    output_width: Mapped[int | None]
    output_height: Mapped[int | None]
    # Outputs after the first, when a prediction returns several images:
    # [{"output_key", "thumbnail_key", "width", "height"}, ...]
    extra_outputs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)

    sweep: Mapped[Sweep] = relationship(back_populates="generations")
    input_image: Mapped[InputImage | None] = relationship()
    reviews: Mapped[list[Review]] = relationship(
        back_populates="generation", cascade="all, delete-orphan")


class FailedAttempt(Base):
    """A failed attempt of a cell, kept when the cell is retried (the cell's own row then
    moves on), so failure rates and reasons count every failure. Its parameters are the
    cell's; its cost is already in the cell's ``cost_usd``."""

    __tablename__ = "failed_attempt"
    __table_args__ = (Index("ix_failed_attempt_failed_at", "failed_at", "endpoint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), index=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweep.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(default=1)
    error: Mapped[str] = mapped_column(Text, default="")
    prediction_id: Mapped[str | None] = mapped_column(String(64))
    endpoint: Mapped[Endpoint] = mapped_column(_enum(Endpoint))
    failed_at: Mapped[dt.datetime]


class Review(Base):
    __tablename__ = "review"
    __table_args__ = (UniqueConstraint("generation_id", "reviewer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    rating: Mapped[int | None]  # 1–5
    thumbs: Mapped[int | None]  # +1 / -1
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    generation: Mapped[Generation] = relationship(back_populates="reviews")


class AppSetting(Base):
    """Settings edited in the dashboard (budgets, caps), overriding the environment defaults."""

    __tablename__ = "app_setting"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(80))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class OutputMetrics(Base):
    """How far one stored output departs from its input (``core.insight.metrics``), measured
    when the output is stored or by ``python -m core metrics backfill``."""

    __tablename__ = "output_metrics"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), primary_key=True)
    similarity: Mapped[float] = mapped_column(Float)  # SSIM, 1 = same
    phash_distance: Mapped[int]  # 0–64
    change: Mapped[float] = mapped_column(Float)  # mean |Δ| of RGB, 0–1
    sharpness: Mapped[float] = mapped_column(Float)  # variance of the Laplacian
    identity: Mapped[float | None] = mapped_column(Float)  # 1 − face distance; None: no face
    identity_distance: Mapped[float | None] = mapped_column(Float)
    face_in_input: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(default=1)
    measured_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# -- production gate: test sets, gate runs, blind pairwise judgments -------------------------------
class TestSet(Base):
    """A named, versioned set of input photos to check scenarios on (one scenario's or shared)."""

    __tablename__ = "test_set"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    scenario_id: Mapped[int | None] = mapped_column(
        ForeignKey("scenario.id", ondelete="SET NULL"), index=True)  # None: shared
    version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    items: Mapped[list[TestSetItem]] = relationship(
        back_populates="test_set", cascade="all, delete-orphan", order_by="TestSetItem.position")


class TestSetItem(Base):
    __tablename__ = "test_set_item"
    __table_args__ = (UniqueConstraint("test_set_id", "input_image_id"),)
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    test_set_id: Mapped[int] = mapped_column(ForeignKey("test_set.id", ondelete="CASCADE"))
    input_image_id: Mapped[int] = mapped_column(
        ForeignKey("input_image.id", ondelete="CASCADE"), index=True)
    note: Mapped[str] = mapped_column(Text, default="")  # e.g. "side view, dark skin, low light"
    position: Mapped[int] = mapped_column(default=0)

    test_set: Mapped[TestSet] = relationship(back_populates="items")
    input_image: Mapped[InputImage] = relationship()


class TestSetVersion(Base):
    """What a test set held at each version: ``items`` is ``[{"image_id", "note"}]``."""

    __tablename__ = "test_set_version"
    __table_args__ = (UniqueConstraint("test_set_id", "version"),)
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    test_set_id: Mapped[int] = mapped_column(ForeignKey("test_set.id", ondelete="CASCADE"))
    version: Mapped[int]
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GateRun(Base):
    """A candidate version against the production version of a scenario, on one test set
    version with the same seeds: two sweeps (one per version) and the pairs between them."""

    __tablename__ = "gate_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenario.id", ondelete="CASCADE"),
                                             index=True)
    candidate_version: Mapped[int]
    production_version: Mapped[int]
    test_set_id: Mapped[int | None] = mapped_column(ForeignKey("test_set.id", ondelete="SET NULL"))
    test_set_version: Mapped[int]
    seeds: Mapped[list[int]] = mapped_column(JSON)
    candidate_sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweep.id", ondelete="SET NULL"))
    production_sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweep.id", ondelete="SET NULL"))
    reviewers_per_pair: Mapped[int] = mapped_column(default=1)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    estimated_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    order_salt: Mapped[str] = mapped_column(String(32))  # left/right order, per pair and reviewer
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    pairs: Mapped[list[GatePair]] = relationship(
        back_populates="gate_run", cascade="all, delete-orphan", order_by="GatePair.id")


class GatePair(Base):
    """The two outputs made from one photo with one seed: candidate's and production's."""

    __tablename__ = "gate_pair"
    __table_args__ = (UniqueConstraint("gate_run_id", "input_image_id", "seed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gate_run_id: Mapped[int] = mapped_column(ForeignKey("gate_run.id", ondelete="CASCADE"),
                                             index=True)
    input_image_id: Mapped[int] = mapped_column(ForeignKey("input_image.id", ondelete="CASCADE"))
    seed: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")  # the test set's note on the photo
    candidate_generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"))
    production_generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"))

    gate_run: Mapped[GateRun] = relationship(back_populates="pairs")
    judgments: Mapped[list[GateJudgment]] = relationship(
        back_populates="pair", cascade="all, delete-orphan")


class GateJudgment(Base):
    """One reviewer's blind choice on one pair: which version's output was better, or same."""

    __tablename__ = "gate_judgment"
    __table_args__ = (UniqueConstraint("pair_id", "reviewer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("gate_pair.id", ondelete="CASCADE"),
                                         index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    choice: Mapped[str] = mapped_column(String(16))  # candidate | production | same
    candidate_side: Mapped[str] = mapped_column(String(8))  # left | right, as it was shown
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    pair: Mapped[GatePair] = relationship(back_populates="judgments")


class GateRule(Base):
    """A scenario's pass rules for its gate (see core.scenarios.gate.PassRules)."""

    __tablename__ = "gate_rule"

    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenario.id", ondelete="CASCADE"),
                                             primary_key=True)
    rules: Mapped[dict[str, Any]]
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
