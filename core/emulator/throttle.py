"""Token bucket for prediction creates, like Replicate's per-account create limit."""

from __future__ import annotations

import math

from core.emulator.config import EmulatorConfig


class CreateThrottle:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._tokens = float(self.config.bucket_size)
        self._updated: float | None = None

    def _refill(self, now: float) -> float:
        rate = (self.config.rate_limit_per_minute or 0) / 60.0
        if self._updated is not None:
            self._tokens = min(float(self.config.bucket_size), self._tokens + (now - self._updated) * rate)
        self._updated = now
        return rate

    def try_acquire(self, now: float) -> int | None:
        """Take one token; None when allowed, else the seconds to wait before retrying."""
        if not self.config.rate_limit_per_minute:
            return None
        rate = self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / rate))

    def remaining(self) -> int:
        if not self.config.rate_limit_per_minute:
            return self.config.bucket_size
        return int(self._tokens)
