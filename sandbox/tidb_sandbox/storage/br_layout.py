"""BR's on-storage layout, modelled: snapshot backups, log backups, truncation and restore checks.

File and directory names, write order and the TSO arithmetic follow BR and TiKV (backupmeta written
last; v1/backupmeta/*.meta per flush; v1/global_checkpoint/<store>.ts; v1_stream_trancate_safepoint.txt).
The contents are JSON (metadata) and JSON lines (data) instead of protobuf and SST / KV-event files, so a
person can read them in a bucket browser; checksums are sha256 over those bytes.
"""

from __future__ import annotations

from .br_common import BACKUPMETA, BRError, store_of, ts_text
from .br_compact import COMPACTION_DIR, CompactResult, compact_log
from .br_log import (
    CHECKPOINT_DIR,
    META_DIR,
    TRUNCATE_LOCK,
    TRUNCATE_SAFEPOINT,
    FlushInfo,
    LogFile,
    LogMeta,
    LogRange,
    TruncateResult,
    flush_log,
    flush_log_history,
    global_checkpoint,
    list_metas,
    log_bytes,
    log_metadata,
    read_log,
    read_safepoint,
    start_log,
    truncate_log,
    write_global_checkpoint,
)
from .br_restore import (
    PointRestore,
    TableIds,
    apply_changes,
    check_restore_range,
    check_same_cluster,
    prealloc_table_ids,
    restore_point,
)
from .br_snapshot import (
    LOCK_FILE,
    FileMeta,
    SnapshotInfo,
    SnapshotMeta,
    read_snapshot,
    snapshot_meta,
    write_snapshot,
)

__all__ = [
    "BACKUPMETA",
    "CHECKPOINT_DIR",
    "COMPACTION_DIR",
    "LOCK_FILE",
    "META_DIR",
    "TRUNCATE_LOCK",
    "TRUNCATE_SAFEPOINT",
    "BRError",
    "CompactResult",
    "FileMeta",
    "FlushInfo",
    "LogFile",
    "LogMeta",
    "LogRange",
    "PointRestore",
    "SnapshotInfo",
    "SnapshotMeta",
    "TableIds",
    "TruncateResult",
    "apply_changes",
    "check_restore_range",
    "check_same_cluster",
    "compact_log",
    "flush_log",
    "flush_log_history",
    "global_checkpoint",
    "list_metas",
    "log_bytes",
    "log_metadata",
    "prealloc_table_ids",
    "read_log",
    "read_safepoint",
    "read_snapshot",
    "restore_point",
    "snapshot_meta",
    "start_log",
    "store_of",
    "truncate_log",
    "ts_text",
    "write_global_checkpoint",
    "write_snapshot",
]
