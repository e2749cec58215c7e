"""What this project may touch: the CRs it made for a cluster, stored where that cluster's backups go.

A snapshot is managed here when it carries `app.kubernetes.io/managed-by: tidb-pitr-airflow` and the
cluster's `tidb-pitr-airflow/cluster` label, and its storage is exactly the configured bucket (container,
volume) at `<root>/snapshot-<14 digits>`. Retention deletes nothing else and relies on nothing else; a
DBA's own backups are still restore bases when they qualify.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .api import LABEL_MANAGED_BY, LABEL_PITR_CLUSTER, MANAGED_BY
from .model import BackupView
from .names import is_snapshot_prefix

_PLACE = {"s3": "bucket", "azblob": "container"}


def made_here(view: BackupView, cluster_name: str) -> str | None:
    """None when this project made the CR for this cluster; otherwise what says it did not."""
    if view.label(LABEL_MANAGED_BY) != MANAGED_BY:
        owner = view.label(LABEL_MANAGED_BY)
        return f"{LABEL_MANAGED_BY} is {owner!r}, not {MANAGED_BY!r}" if owner else f"no {LABEL_MANAGED_BY} label"
    if view.label(LABEL_PITR_CLUSTER) != cluster_name:
        return f"{LABEL_PITR_CLUSTER} is {view.label(LABEL_PITR_CLUSTER)!r}, not {cluster_name!r}"
    return None


def _same_place(block: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """Same provider and the same bucket / container / volume (and mount path) as the configured block."""
    if set(block) != set(expected) or len(expected) != 1:
        return False
    provider = next(iter(expected))
    have, want = block[provider] or {}, expected[provider] or {}
    if provider == "local":
        def place(conf: Mapping[str, Any]) -> tuple[Any, Any]:
            return (conf.get("volume") or {}).get("name"), (conf.get("volumeMount") or {}).get("mountPath")
        return place(have) == place(want)
    key = _PLACE.get(provider, "bucket")
    return bool(have.get(key)) and have.get(key) == want.get(key)


def snapshot_problem(view: BackupView, *, cluster_name: str, storage: Mapping[str, Any], root: str) -> str | None:
    """None when `view` is a snapshot this project made for `cluster_name`, in `storage` (the cluster's storage
    block, without prefix) at `<root>/snapshot-<14 digits>`; otherwise why it is not ours to delete."""
    foreign = made_here(view, cluster_name)
    if foreign is not None:
        return foreign
    if not _same_place(view.storage, storage):
        return f"stored at {view.storage_url}, not in this cluster's storage"
    if not is_snapshot_prefix(root, view.prefix):
        return f"prefix {view.prefix!r} is not {root}/snapshot-<14 digits>"
    return None


def snapshot_ownership(cluster_name: str, storage: Mapping[str, Any], root: str) -> Callable[[BackupView], str | None]:
    return lambda view: snapshot_problem(view, cluster_name=cluster_name, storage=storage, root=root)
