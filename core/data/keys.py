"""Every Redis key the product uses, in one place."""

import hashlib

PREFIX = "tuner"


def queue_name(deployment: str) -> str:
    """The cell queue of one deployment (its database's id, ``settings_store.deployment_id``):
    two deployments sharing a Redis database never take each other's jobs. Every producer and
    consumer (dispatch, workers, the reaper, queue-length displays) names it through here."""
    return f"{PREFIX}-cells-{deployment}"


# Keys named after a cell or a sweep carry the deployment too: ids are per database, and
# two deployments may share a Redis database.
def cell_lease(deployment: str, generation_id: int) -> str:
    return f"{PREFIX}:{deployment}:lease:gen:{generation_id}"


def slot_holder(deployment: str, generation_id: int) -> str:
    return f"{deployment}:gen:{generation_id}"


def sweep_cancel(deployment: str, sweep_id: int) -> str:
    return f"{PREFIX}:{deployment}:sweep:{sweep_id}:cancel"


def file_url(base_url: str, image_sha256: str) -> str:
    endpoint = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return f"{PREFIX}:file-url:{endpoint}:{image_sha256}"


def reaper_lock(deployment: str) -> str:
    """One reaper at a time per deployment (each deployment's reaper runs its own rounds)."""
    return f"{PREFIX}:{deployment}:reaper-lock"


def reaper_round(deployment: str) -> str:
    """Set for a round's interval by the worker that runs it: one round per interval for the
    whole deployment, however many worker processes there are."""
    return f"{PREFIX}:{deployment}:reaper-round"
