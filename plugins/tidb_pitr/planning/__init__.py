"""Pure planning over CR views: the recoverable window, the retention plan, the restore plan. No I/O."""

from .restore import PlanError, RestorePlan, plan_restore
from .retention import DEFAULT_RETENTION, RetentionPlan, active_log, plan_retention
from .window import Segment, Window, is_usable_log, is_usable_snapshot, log_segments, recoverable_window

__all__ = [
    "DEFAULT_RETENTION", "PlanError", "RestorePlan", "RetentionPlan", "Segment", "Window", "active_log",
    "is_usable_log", "is_usable_snapshot", "log_segments", "plan_restore", "plan_retention", "recoverable_window",
]
