"""Domain exceptions, in one place.

Each boundary translates them once: the CLI prints the message, pages show it with
``st.error``, the emulator renders its problem+json shape. Messages are written for the
person who has to fix the problem: they name the bad value and say what is allowed.
"""


class TunerError(Exception):
    """Base for every error the product reports to a person."""


class InvalidInput(TunerError):
    """User input (an axis value, an upload, a form field) that cannot be used as given."""


class NotFound(TunerError):
    """A sweep, generation, scenario or image id that does not exist."""


class BudgetExceeded(TunerError):
    """A submission or dispatch that would cross a spending cap."""


class StorageError(TunerError):
    """The media store could not read or write an object (disk full, bucket unreachable)."""


class ConfigurationError(TunerError):
    """A setting is missing or malformed."""


class ServiceUnavailable(TunerError):
    """Redis, the database or Replicate did not answer."""


class RedisUnavailable(ServiceUnavailable):
    """Redis did not answer (restarting, unreachable, timed out): see core.data.redisio."""
