"""What lives in the TiDB cluster itself rather than in TiDB Operator: the log backup tasks of TiKV and PD.

The operator's Jobs start, pause, resume and stop these tasks (as `br log ...` does), its checkpoint
tracker reads their checkpoint from PD, and its kernel-state sync reads their state; the tasks go on
flushing to storage whatever the operator does, including while it restarts.
"""

from .logtasks import CheckpointGCed, KernelState, LogKernel, LogTask, TaskExists

__all__ = ["CheckpointGCed", "KernelState", "LogKernel", "LogTask", "TaskExists"]
