"""Emulator settings: one dataclass, two presets, and the CLI flags that fill it."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Literal

PredictTimeDist = Literal["fixed", "uniform", "lognormal"]
QueueDelayDist = Literal["fixed", "exponential"]


@dataclass
class EmulatorConfig:
    """How the emulated Replicate behaves. Defaults resemble stability-ai/sdxl on an A40."""

    valid_tokens: set[str] | None = None
    """Accepted API tokens; None accepts any non-empty token."""

    queue_delay_s: float = 0.5
    """Time a prediction spends in ``starting`` before it is picked up (the mean, when
    ``queue_delay_dist`` is exponential)."""
    queue_delay_dist: QueueDelayDist = "fixed"
    cold_boot_share: float = 0.0
    """Share of predictions that wait for a cold boot of the model in ``starting``."""
    cold_boot_range_s: tuple[float, float] = (30.0, 120.0)
    """Bounds of a cold boot's length (uniform)."""
    predict_time_dist: PredictTimeDist = "uniform"
    predict_time_s: float = 4.0
    """The fixed predict time, or the median of the lognormal distribution."""
    predict_time_range_s: tuple[float, float] = (2.0, 6.0)
    """Bounds of the uniform distribution; the lognormal one is clamped to them."""
    predict_time_sigma: float = 0.35

    failure_rate: float = 0.0
    """Share of predictions that end ``failed`` with a model error."""
    server_error_rate: float = 0.0
    """Share of API requests answered with a random 5xx before reaching a handler."""

    rate_limit_per_minute: int | None = 600
    """Create-prediction rate (token bucket refill); None disables throttling."""
    burst: int | None = None
    """Bucket size; None means as large as one minute of the rate."""

    retention_s: float = 3600.0
    """Outputs are deleted this long after completion (``data_removed``)."""
    max_wait_s: float = 60.0
    """Upper bound of ``Prefer: wait=N``."""
    fault_hang_s: float = 120.0
    """How long the ``timeout`` fault holds a request before dropping the connection."""
    output_cache_bytes: int = 256 * 1024 * 1024
    """Memory for generated PNGs; evicted ones are regenerated (they are deterministic)."""
    page_size: int = 100
    """Predictions per page of ``GET /v1/predictions``."""
    random_seed: int | None = None
    """Seed for latencies, failures and missing input seeds; None is nondeterministic."""
    deployments: dict[str, str] = dataclasses.field(default_factory=dict)
    """Deployments the emulator serves: ``owner/name`` → the model they run."""

    @classmethod
    def low_credit(cls, **overrides: Any) -> EmulatorConfig:
        """Replicate's limit for accounts with little credit: 6 creates a minute, burst 1."""
        return dataclasses.replace(cls(rate_limit_per_minute=6, burst=1), **overrides)

    @classmethod
    def fast(cls, **overrides: Any) -> EmulatorConfig:
        """Short latencies for tests and demos."""
        base = cls(
            queue_delay_s=0.05,
            predict_time_dist="fixed",
            predict_time_s=0.1,
            predict_time_range_s=(0.05, 0.2),
        )
        return dataclasses.replace(base, **overrides)

    @classmethod
    def realistic(cls, **overrides: Any) -> EmulatorConfig:
        """Uneven latency as Replicate shows it: a log-normal predict time with a long tail,
        an exponential queue wait, and 2 % of predictions waiting 30–120 s for a cold boot."""
        base = cls(queue_delay_dist="exponential", queue_delay_s=1.0,
                   predict_time_dist="lognormal", predict_time_s=4.0, predict_time_sigma=0.5,
                   predict_time_range_s=(1.0, 60.0), cold_boot_share=0.02,
                   cold_boot_range_s=(30.0, 120.0))
        return dataclasses.replace(base, **overrides)

    def latency_profile(self) -> dict[str, object]:
        """The latency model's parameters, for a benchmark's JSON."""
        names = ("queue_delay_dist", "queue_delay_s", "predict_time_dist", "predict_time_s",
                 "predict_time_sigma", "predict_time_range_s", "cold_boot_share",
                 "cold_boot_range_s")
        return {name: getattr(self, name) for name in names}

    @property
    def bucket_size(self) -> int:
        if self.burst is not None:
            return max(1, self.burst)
        return max(1, self.rate_limit_per_minute or 1)


PRESETS: dict[str, Callable[[], EmulatorConfig]] = {
    "default": EmulatorConfig, "fast": EmulatorConfig.fast,
    "low-credit": EmulatorConfig.low_credit, "realistic": EmulatorConfig.realistic}


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's flags (``--port`` included) to an argparse parser."""
    d = EmulatorConfig()
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="Address to bind (default: 127.0.0.1).")
    add("--port", type=int, default=8787, help="Port to bind; 0 picks a free one (default: 8787).")
    add("--preset", choices=sorted(PRESETS), default="default", help="Start from a preset.")
    add("--token", action="append", dest="tokens", metavar="TOKEN",
        help="Accept only this API token (repeatable); default accepts any non-empty token.")
    add("--queue-delay", type=float, metavar="S", help=f"Seconds in 'starting' (default: {d.queue_delay_s}).")
    add("--queue-dist", choices=["fixed", "exponential"], help="Queue delay distribution.")
    add("--cold-boot-share", type=float, metavar="P",
        help="Share of predictions that wait for a cold boot (default: 0).")
    add("--cold-boot-range", type=float, nargs=2, metavar=("LO", "HI"),
        help="Uniform bounds of a cold boot in seconds (default: 30 120).")
    add("--predict-time", choices=["fixed", "uniform", "lognormal"], help="Predict-time distribution.")
    add("--predict-seconds", type=float, metavar="S",
        help=f"Fixed predict time or lognormal median (default: {d.predict_time_s}).")
    add("--predict-range", type=float, nargs=2, metavar=("LO", "HI"),
        help="Uniform bounds of the predict time (default: 2 6).")
    add("--latency", type=float, metavar="S",
        help="Shorthand for a fixed predict time of S seconds with no queue delay.")
    add("--failure-rate", type=float, metavar="P", help="Share of predictions that fail (default: 0).")
    add("--server-error-rate", type=float, metavar="P", help="Share of requests answered 5xx (default: 0).")
    add("--rate-limit", type=int, metavar="N", help="Creates per minute; 0 disables (default: 600).")
    add("--burst", type=int, metavar="N", help="Create burst size (default: one minute of the rate).")
    add("--retention", type=float, metavar="S", help="Seconds outputs are kept (default: 3600).")
    add("--seed", type=int, help="Seed the emulator's randomness for reproducible runs.")


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Build an EmulatorConfig from the flags added by add_cli_arguments."""
    config = PRESETS[getattr(args, "preset", None) or "default"]()
    overrides: dict[str, Any] = {}
    pairs = {
        "queue_delay": "queue_delay_s",
        "queue_dist": "queue_delay_dist",
        "cold_boot_share": "cold_boot_share",
        "predict_time": "predict_time_dist",
        "predict_seconds": "predict_time_s",
        "failure_rate": "failure_rate",
        "server_error_rate": "server_error_rate",
        "burst": "burst",
        "retention": "retention_s",
        "seed": "random_seed",
    }
    for arg_name, field_name in pairs.items():
        value = getattr(args, arg_name, None)
        if value is not None:
            overrides[field_name] = value
    if getattr(args, "latency", None) is not None:
        overrides.update(predict_time_dist="fixed", predict_time_s=args.latency, queue_delay_s=0.0)
    if getattr(args, "cold_boot_range", None):
        overrides["cold_boot_range_s"] = tuple(args.cold_boot_range)
    if getattr(args, "predict_range", None):
        overrides["predict_time_range_s"] = tuple(args.predict_range)
    if getattr(args, "rate_limit", None) is not None:
        overrides["rate_limit_per_minute"] = args.rate_limit or None
    if getattr(args, "tokens", None):
        overrides["valid_tokens"] = set(args.tokens)
    return dataclasses.replace(config, **overrides)
