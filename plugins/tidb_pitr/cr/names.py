"""Names of the CRs this project creates: deterministic, distinct between clusters, and short enough.

TiDB Operator derives Job names from CR names (`backup-<name>`, `backup-<name>-log-truncate`,
`restore-<name>-prune`, a CompactBackup's own name), and Kubernetes copies a Job's name into a pod label,
which holds at most 63 characters: a longer CR name makes every Job of that CR fail to be created. A name
that does not fit is shortened, with a hash of the full name so that two shortened names still differ.
Every name starts with the configured cluster's name, so two clusters in one namespace never collide.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

LABEL_MAX = 63
LOG_NAME_MAX = LABEL_MAX - len("backup-") - len("-log-truncate")  # 43
SNAPSHOT_NAME_MAX = LABEL_MAX - len("backup-")  # 56
RESTORE_NAME_MAX = LABEL_MAX - len("restore-") - len("-prune")  # 49
COMPACT_NAME_MAX = LABEL_MAX
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
STAMP = re.compile(r"^\d{14}$")


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def fit(name: str, limit: int) -> str:
    """`name` as a DNS label of at most `limit` characters; shortened ones end in a hash of the whole."""
    clean = _NOT_DNS.sub("-", name.lower()).strip("-") or "x"
    if len(clean) <= limit:
        return clean
    tail = "-" + short_hash(clean)
    return clean[: limit - len(tail)].rstrip("-") + tail


def _stamp(stamp: str) -> str:
    if not STAMP.match(stamp):
        raise ValueError(f"a snapshot stamp is 14 digits (YYYYMMDDHHMMSS); got {stamp!r}")
    return stamp


def snapshot_name(cluster: str, stamp: str, attempt: int = 1) -> str:
    """`<cluster>-snapshot-YYYYMMDDHHMMSS`, and `-a<n>` for the n-th attempt of the same run."""
    suffix = f"-snapshot-{_stamp(stamp)}" + (f"-a{attempt}" if attempt > 1 else "")
    return fit(cluster, SNAPSHOT_NAME_MAX - len(suffix)) + suffix


_SLOT = re.compile(r"-snapshot-(\d{14})(?:-a\d+)?$")


def snapshot_slot(name: str) -> datetime | None:
    """The slot a snapshot CR belongs to: its name's 14 digits, the snapshot run's `run_after` (its scheduled time,
    or a manual run's trigger time) in UTC; None for a name not made by `snapshot_name`."""
    found = _SLOT.search(name)
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def snapshot_folder(stamp: str) -> str:
    """The storage folder below the cluster's root: `snapshot-YYYYMMDDHHMMSS`, whatever the CR is called."""
    return f"snapshot-{_stamp(stamp)}"


def is_snapshot_prefix(root: str, prefix: str | None) -> bool:
    """Whether `prefix` is one of the cluster's snapshot folders, `<root>/snapshot-<14 digits>`: the only
    kind of folder retention may delete."""
    folder = (prefix or "").strip("/")
    return re.fullmatch(rf"{re.escape(root.strip('/'))}/snapshot-\d{{14}}", folder) is not None


def log_backup_name(base: str, generation: int = 1) -> str:
    """The log backup CR: the configured name, then `<name>-<n>` for the n-th task after a Stopped one."""
    suffix = "" if generation <= 1 else f"-{generation}"
    return fit(base, LOG_NAME_MAX - len(suffix)) + suffix


def log_folder(generation: int = 1) -> str:
    """The log backup's storage folder below the root: `log-backup`, then `log-backup-<n>`."""
    return "log-backup" if generation <= 1 else f"log-backup-{generation}"


def restore_name(cluster: str, stamp: str, run_hash: str) -> str:
    """`<cluster>-pitr-YYYYMMDDHHMMSS-<run>`: the restore time for people, the DAG run for uniqueness, so that
    a second run to the same time after a failure makes its own CR and a retry of one run adopts it."""
    suffix = f"-pitr-{_stamp(stamp)}-{run_hash[:6]}"
    return fit(cluster, RESTORE_NAME_MAX - len(suffix)) + suffix


def compact_name(cluster: str, stamp: str) -> str:
    suffix = f"-compact-{_stamp(stamp)}"
    return fit(cluster, COMPACT_NAME_MAX - len(suffix)) + suffix


def run_label(dag_id: str, run_id: str) -> str:
    """A short, stable label value for one DAG run (run ids contain ':' and '+', which labels forbid)."""
    return short_hash(dag_id, run_id, length=16)
