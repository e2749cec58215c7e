"""The sandbox's options and fixed names: what `up` is told, and the seed bucket, container and region.

A leaf module (it imports only the settings' own dataclasses), so that the process (`app`), its control API
(`control`) and the history seeder (`seed`) can all read it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .operator.context import SimConfig
from .sql.config import SqlConfig

HOST = "127.0.0.1"
SEED_BUCKET = "my-bucket"
SEED_CONTAINER = "my-container"
SEED_REGION = "us-west-1"
DEFAULT_NAMESPACES = ("test1", "backup-test")


@dataclass
class WorkloadRates:
    inserts_per_s: float = 2.0
    updates_per_s: float = 2.0
    deletes_per_s: float = 0.5
    # Which of the workload's tables ("db.table") it writes; None: all. A cluster holding only some of the
    # source's tables is the target of a filtered restore (operator/restore_filter.py).
    tables: tuple[str, ...] | None = None


@dataclass
class SandboxOptions:
    workdir: Path
    port: int = 0
    kubeconfig: Path | None = None
    env_file: Path | None = None
    api_group: str = "pingcap.com"  # group of the demo cluster; discovery lists it first
    storage: str = "s3"  # storage of the demo cluster's backups: s3, azblob or local
    seed_days: float = 0.0
    cluster: str = "demo1"
    namespace: str = "test1"
    restore_target: str = "demo1-restore"
    v1_line: str = "v1.6.6"
    workload: WorkloadRates = field(default_factory=WorkloadRates)
    with_azurite: bool = True
    config: SimConfig = field(default_factory=SimConfig)
    sql_config: SqlConfig = field(default_factory=SqlConfig)
    faults: dict[str, Any] = field(default_factory=dict)
    watch_history: int = 2000
    seed: int | None = None
