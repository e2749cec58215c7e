"""The log-control DAG's task bodies: plan a pause, resume or stop of the cluster's live log backup (refusing bad
input before anything changes), and the run's note once the operator has done it.

They run on workers at task run time only; nothing here runs when a DAG file is parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.inventory import load_inventory
from ...hooks.kubernetes import hook_for
from ...planning.notes import log_control_note, with_details
from ...planning.pause import LogControlRefused, plan_log_control


def plan_control(cluster: ClusterConfig, params: dict[str, Any], run: str) -> dict[str, Any]:
    """The checked request (`planning.pause.plan_log_control`), or AirflowFailException saying why not."""
    if cluster.legacy_log_stop:
        raise AirflowFailException(f"{cluster.namespace}/{cluster.name} runs TiDB Operator <= v1.5.4 / v1.6.0, "
                                   "whose log Backup has no logSubcommand: it cannot pause or resume a log backup")
    live = load_inventory(hook_for(cluster), cluster).live_logs()
    try:
        if len(live) > 1:
            raise LogControlRefused(f"{len(live)} live log backups ({', '.join(v.name for v in live)}): run the guard "
                                    f"{cluster.dag_id('log_guard')}, which says which to stop")
        return plan_log_control(action=params.get("action"), pause_minutes=params.get("pause_minutes"),
                                confirm=params.get("confirm"), reason=params.get("reason"), cluster=cluster.name,
                                view=live[0] if live else None, now=datetime.now(UTC), run=run)
    except LogControlRefused as refused:
        raise AirflowFailException(f"log control refused, nothing changed: {refused}") from None


def control_note(cluster: ClusterConfig, planned: dict[str, Any], result: dict[str, Any] | None,
                 failed: list[str]) -> str:
    """The run's note: what was done, or which step failed and what it left."""
    action, name = planned["action"], planned["log_backup"]
    if failed or result is None:
        return with_details(f"Log {action} of {name} failed: {', '.join(failed) or action} failed",
                            f"The {action} of log backup {name} failed (see the task's log); the CR is as the "
                            "operator left it, and a pause's annotation went only with its patch")
    pause = planned.get("pause") or {}
    until = datetime.fromisoformat(pause["until"].replace("Z", "+00:00")) if action == "pause" else None
    checkpoint = result.get("checkpoint_ts")
    reason = str(planned.get("reason") or "")
    return log_control_note(action, name, until=until, reason=reason,
                            checkpoint=int(checkpoint) if checkpoint else None, timezone=cluster.timezone)
