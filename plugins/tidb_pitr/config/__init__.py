"""Per-cluster configuration (`include/clusters.yaml`), one job per module:

- `fields`: the frozen base model, the `Duration` field and the shared name / time zone / cron checks;
- `sections`: storage, RPO, BR passthrough, log backup, waits, restore targets, drill, notifiers, logical backup;
- `cluster`: `ClusterConfig` (one cluster, the checks across its sections) and `ProjectConfig` (the file);
- `errors` and `report`: `ConfigError` and the reporter that turns pydantic's errors into one line each;
- `loader`: `config_path` and `load_config`, what a DAG file calls at parse time (reads the one file only).

Durations are parsed and formatted by `tidb_pitr.units`. The names below are the public import path
(`from tidb_pitr.config import load_config, ClusterConfig`).
"""

from __future__ import annotations

from ..units import DURATION_FORMS, format_duration, parse_duration
from .cluster import ClusterConfig, ProjectConfig
from .errors import ConfigError, Problem
from .fields import MAX_NAME, Duration, check_anchor, check_cron, check_timezone
from .loader import CONFIG_RELPATH, ENV_CONFIG, config_path, load_config
from .sections import (
    DUMPLING_DEFAULT_OPTIONS,
    BrPassthrough,
    DrillConfig,
    LogBackupConfig,
    LogicalBackupConfig,
    LogicalKeepConfig,
    NotifierConfig,
    RestoreRatesConfig,
    RestoreTarget,
    RpoConfig,
    StorageConfig,
    WaitsConfig,
)

__all__ = [
    "CONFIG_RELPATH", "DUMPLING_DEFAULT_OPTIONS", "DURATION_FORMS", "ENV_CONFIG", "MAX_NAME", "BrPassthrough",
    "ClusterConfig", "ConfigError", "DrillConfig", "Duration", "LogBackupConfig", "LogicalBackupConfig",
    "LogicalKeepConfig", "NotifierConfig", "Problem", "ProjectConfig", "RestoreRatesConfig", "RestoreTarget",
    "RpoConfig", "StorageConfig", "WaitsConfig", "check_anchor", "check_cron", "check_timezone", "config_path",
    "format_duration", "load_config", "parse_duration",
]
