"""The one path to Replicate: the official ``replicate`` client, pointed at api.replicate.com
or at the local emulator through its base URL.

The client never retries a POST and retries GETs only on 429/503/504, so what a create
failure means is decided here (``classify``), and the worker decides what to do about it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import functools
import math
import ssl

import httpx
import replicate
from replicate.exceptions import ReplicateError

from core.config import Settings, mask_token

REPLICATE_DEFAULT_BASE_URL = "https://api.replicate.com"
EMULATOR_TOKEN = "r8_emulator-local-token"  # the emulator accepts any non-empty token

# Seconds Replicate asked us to wait, from the last 429 seen by this task; ReplicateError
# keeps neither the body's retry_after nor the Retry-After header, so the transport notes it.
_last_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "replicate_retry_after", default=None)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    base_url: str
    token: str = dataclasses.field(repr=False)
    is_emulator: bool

    @property
    def name(self) -> str:
        return "emulator" if self.is_emulator else "replicate"

    def __repr__(self) -> str:
        return f"Endpoint({self.name} at {self.base_url}, token {mask_token(self.token)})"


EMULATOR_HEADER = "X-Replicate-Emulator"  # the emulator sends it on every API reply


def resolve_endpoint(settings: Settings) -> Endpoint:
    """The emulator only when the server at the base URL says it is one (its reply header);
    any other server is real Replicate, wherever it runs, and needs a token. Without a
    token or base URL, nothing can be resolved."""
    base_url = (settings.replicate_base_url or "").rstrip("/")
    token = settings.replicate_api_token.get_secret_value() if settings.replicate_api_token else None
    if token and not base_url:
        return Endpoint(REPLICATE_DEFAULT_BASE_URL, token, is_emulator=False)
    if base_url:
        says_emulator = _is_emulator(base_url)
        if says_emulator is False and token:
            return Endpoint(base_url, token, is_emulator=False)
        if says_emulator is False:
            from core.errors import ConfigurationError

            raise ConfigurationError(
                f"The server at REPLICATE_BASE_URL={base_url} is not the emulator (it does not "
                "say so), so it is treated as real Replicate, and no REPLICATE_API_TOKEN is "
                "set: set the token, or point REPLICATE_BASE_URL at the emulator.")
        if says_emulator is None and token:  # not answering: real unless it says otherwise
            return Endpoint(base_url, token, is_emulator=False)
    if not base_url:
        from core.errors import ConfigurationError

        raise ConfigurationError(
            "No REPLICATE_API_TOKEN is set and no emulator address is known: set "
            "REPLICATE_API_TOKEN for real Replicate, or start the emulator "
            "(python -m core emulator) and set REPLICATE_BASE_URL to its address."
        )
    return Endpoint(base_url, token or EMULATOR_TOKEN, is_emulator=True)


_identified: dict[str, bool] = {}


def _is_emulator(base_url: str) -> bool | None:
    """Whether the server at ``base_url`` identifies as the emulator; None when it does not
    answer (an answer is remembered for the process, no answer is asked again)."""
    if base_url not in _identified:
        try:
            reply = httpx.get(f"{base_url}/v1/predictions", timeout=3.0, verify=tls_context())
        except httpx.HTTPError:
            return None
        _identified[base_url] = reply.headers.get(EMULATOR_HEADER) == "1"
    return _identified[base_url]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one costs ~15 ms of CPU, and every chunk
    would otherwise build two."""
    return httpx.create_ssl_context()


class _RetryAfterNotingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(
            verify=tls_context(),
            # httpcore scans every pooled connection for each request; a small idle pool
            # keeps that cheap with many predictions in flight.
            limits=httpx.Limits(max_connections=128, max_keepalive_connections=16))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code == 429:
            await response.aread()
            _last_retry_after.set(_retry_after_of(response))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _retry_after_of(response: httpx.Response) -> float | None:
    try:
        value = response.json().get("retry_after")
        if value is not None:
            return float(value)
    except (ValueError, AttributeError):
        pass
    header = response.headers.get("retry-after")
    try:
        return float(header) if header else None
    except ValueError:
        return None


# The async client's time-outs, and what they add up to: a create sent this long ago has
# landed on Replicate or failed, so a worker taking over a cell can look for it after that.
_ASYNC_TIMEOUT = httpx.Timeout(10.0, read=20.0, write=10.0, connect=5.0, pool=10.0)
CREATE_REPLY_BOUND_S = sum(t or 0.0 for t in (_ASYNC_TIMEOUT.pool, _ASYNC_TIMEOUT.connect,
                                              _ASYNC_TIMEOUT.write, _ASYNC_TIMEOUT.read)) + 1


def build_async_client(endpoint: Endpoint) -> replicate.Client:
    """A client for one event loop. Read time-out is generous: ``Prefer: wait`` is not used,
    but a busy API can still take seconds to answer a create."""
    return replicate.Client(
        api_token=endpoint.token,
        base_url=endpoint.base_url,
        timeout=_ASYNC_TIMEOUT,
        transport=_RetryAfterNotingTransport(),
    )


def build_client(endpoint: Endpoint, *, timeout_s: float = 10.0) -> replicate.Client:
    """A synchronous client for short calls from the CLI and pages (schema, check)."""
    return replicate.Client(api_token=endpoint.token, base_url=endpoint.base_url,
                            timeout=httpx.Timeout(timeout_s))


class Failure(str, enum.Enum):
    THROTTLED = "throttled"  # 429: not created; wait retry_after
    NOT_SENT = "not_sent"  # connect failed: provably never reached Replicate
    AMBIGUOUS = "ambiguous"  # 5xx, reset, read time-out: may or may not have been created
    REJECTED = "rejected"  # 4xx: Replicate refused it; retrying will not help


@dataclasses.dataclass(frozen=True)
class ClassifiedError:
    kind: Failure
    message: str
    retry_after_s: float | None = None


def classify(exc: BaseException) -> ClassifiedError:
    if isinstance(exc, ReplicateError):
        status = exc.status or 0
        text = exc.detail or exc.title or f"HTTP {status}"
        if status == 429:
            return ClassifiedError(Failure.THROTTLED, f"Replicate throttled the request: {text}",
                                   _last_retry_after.get())
        if status >= 500:
            return ClassifiedError(Failure.AMBIGUOUS, f"Replicate answered {status}: {text}")
        return ClassifiedError(Failure.REJECTED, f"Replicate refused the request ({status}): {text}")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ClassifiedError(Failure.NOT_SENT, f"Could not connect to Replicate: {exc!s}")
    if isinstance(exc, httpx.TransportError):
        name = type(exc).__name__
        return ClassifiedError(Failure.AMBIGUOUS, f"Connection to Replicate broke ({name}): {exc!s}")
    return ClassifiedError(Failure.AMBIGUOUS, f"{type(exc).__name__}: {exc!s}")


async def aclose_client(client: replicate.Client) -> None:
    """Close the connections an async client opened (the client has no close of its own)."""
    http = getattr(client, "_Client__async_client", None)
    if http is not None:
        await http.aclose()


# -- creating and reading predictions -------------------------------------------------------------
# Replicate's end states. ``aborted``: a prediction whose Cancel-After deadline passed before it
# started (never billed; replicate.com/changelog/2025-10-16-prediction-deadlines). The official
# client 1.0.x cannot parse it (its Prediction.status Literal lacks it: a pydantic
# ValidationError, replicate/replicate-python#449) and its wait loops never end on it (#460),
# so predictions are created and read here as plain JSON through the client's own transport
# (base URL, token, retries), never as its Prediction objects.
FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})


@dataclasses.dataclass(frozen=True)
class CreateTarget:
    """Where a model's predictions are created: ``versioned`` (POST /v1/predictions with
    ``version``), ``official`` (POST /v1/models/{owner}/{name}/predictions, no version) or
    ``deployment`` (POST /v1/deployments/{owner}/{name}/predictions)."""

    create_via: str
    model_ref: str
    version_id: str | None = None
    deployment: str | None = None

    def request(self, model_input: dict) -> tuple[str, dict]:
        """The path and JSON body of the create."""
        if self.create_via == "official":
            return f"/v1/models/{self.model_ref}/predictions", {"input": model_input}
        if self.create_via == "deployment":
            if not self.deployment:
                raise ValueError(f"{self.model_ref} is set to run on a deployment but names none")
            return f"/v1/deployments/{self.deployment}/predictions", {"input": model_input}
        if not self.version_id:
            raise ValueError(f"{self.model_ref} has no version to create by")
        return "/v1/predictions", {"version": self.version_id, "input": model_input}

    @property
    def endpoint_text(self) -> str:
        """``POST /v1/models/owner/name/predictions`` and the like, for exports and pages."""
        if self.create_via == "official":
            return f"POST /v1/models/{self.model_ref}/predictions"
        if self.create_via == "deployment":
            return f"POST /v1/deployments/{self.deployment}/predictions"
        return f"POST /v1/predictions (version {self.version_id})"


def cancel_after_header(seconds: float | None) -> dict[str, str]:
    """``Cancel-After: 300s``: the deadline measured from the create (at least 5 s)."""
    if not seconds:
        return {}
    return {"Cancel-After": f"{max(5, int(math.ceil(seconds)))}s"}


async def create_prediction(client: replicate.Client, target: CreateTarget, model_input: dict,
                            *, cancel_after_s: float | None) -> dict:
    """Create one prediction; its JSON as the API answered (``status`` may be any value)."""
    path, body = target.request(model_input)
    response = await client._async_request(
        "POST", path, json=body, headers=cancel_after_header(cancel_after_s))
    return response.json()


async def get_prediction(client: replicate.Client, prediction_id: str) -> dict:
    response = await client._async_request(
        "GET", f"/v1/predictions/{prediction_id}")
    return response.json()


def output_urls(output: object) -> list[str]:
    """Every file a prediction returned, in order: a single URL or data URI, a list of them,
    or (for a few models) a dict of them; other values are not files."""
    if isinstance(output, str):
        return [output] if output else []
    if isinstance(output, (list, tuple)):
        return [item for item in output if isinstance(item, str) and item]
    if isinstance(output, dict):
        return [item for item in output.values() if isinstance(item, str) and item]
    return []


FILE_PAGES_MAX = 50  # a photo's copies are looked for this far back in the Files API's list


def file_id(url: str, base_url: str) -> str | None:
    """The Files-API id in an upload's URL (``{base_url}/v1/files/{id}…``); None for any
    other URL (a data URI, another host)."""
    prefix = f"{base_url.rstrip('/')}/v1/files/"
    if not url.startswith(prefix):
        return None
    return url[len(prefix):].split("/")[0] or None


def uploaded_files(client: replicate.Client) -> list[dict]:
    """The account's Files-API uploads as JSON, newest first, following the list's ``next``
    pages (the official client's ``files.list`` reads the first page only)."""
    found: list[dict] = []
    path: str | None = "/v1/files"
    for _ in range(FILE_PAGES_MAX):
        if not path:
            break
        page = client._request("GET", path).json()
        found.extend(page.get("results") or [])
        path = page.get("next")
    return found
