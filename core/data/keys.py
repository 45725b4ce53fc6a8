"""Every Redis key the product uses, in one place."""

import hashlib

PREFIX = "tuner"
QUEUE_NAME = "tuner-cells"


def cell_lease(generation_id: int) -> str:
    return f"{PREFIX}:lease:gen:{generation_id}"


def slot_holder(generation_id: int) -> str:
    return f"gen:{generation_id}"


def sweep_cancel(sweep_id: int) -> str:
    return f"{PREFIX}:sweep:{sweep_id}:cancel"


def file_url(base_url: str, image_sha256: str) -> str:
    endpoint = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return f"{PREFIX}:file-url:{endpoint}:{image_sha256}"


REAPER_LOCK = f"{PREFIX}:reaper-lock"
