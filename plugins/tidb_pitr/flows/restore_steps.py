"""The steps a restore and a drill share: wait for the log to pass T (in the CR, then in storage), the Restore
CR, and the comparison with the source (read at T before the restore, the target after it). All read the
`plan` task's XCom, which both DAGs' plans write in the same shape."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from airflow.sdk import task

from ..config import ClusterConfig
from ..operators.restore import TidbRestoreOperator
from ..sensors.backup import TidbLogCheckpointSensor
from ..sensors.storage import TidbStorageCheckpointSensor
from ..units import format_bytes, format_duration
from .common import cr_args

log = logging.getLogger(__name__)


def from_plan(key: str) -> str:
    """A template reading one field of the `plan` task's XCom."""
    return "{{ ti.xcom_pull(task_ids='plan')['" + key + "'] }}"


def publish_plan(context: Any, make_plan: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a restore's plan (PITR or logical) and say its outcome on the run: a refusal first, on one line, in
    the log and the note (it is what the user reads), else the plan's first note."""
    import logging

    from ..planning.notes import dry_run_note, refusal_note, with_details
    from ..runtime.notes import publish_note
    from .tasks.restore import RestoreRefused

    try:
        planned = make_plan()
    except RestoreRefused as refused:
        logging.getLogger(__name__).error("Refused: %s", refused)
        publish_note(context, refusal_note("Refused:", str(refused), refused.window))
        raise
    first = planned["notes"][0]
    publish_note(context, dry_run_note(first) if planned["dry_run"] else with_details(f"Planned: {first}", ""))
    return planned


def proceed_task() -> Any:
    """`proceed`: the run stops here (its later tasks skipped) when the plan is a dry run."""

    @task.short_circuit
    def proceed(planned: dict[str, Any]) -> bool:
        return not planned["dry_run"]

    return proceed


def restore_steps(cluster: ClusterConfig) -> tuple[Any, Any, Any]:
    """The waits and the Restore CR, from the `plan` task's XCom: shared by the restore and drill DAGs."""
    wait = TidbLogCheckpointSensor(task_id="wait_for_checkpoint", cr_name=from_plan("log_backup"),
                                   target_ts=from_plan("target_ts"), poll_interval=15.0, **cr_args(cluster))
    storage_caught_up = TidbStorageCheckpointSensor(
        task_id="wait_for_storage_checkpoint", storage=cluster.storage.hook_kwargs(),
        log_prefix=from_plan("log_prefix"), target_ts=from_plan("target_ts"),
        timeout=cluster.rpo.critical.total_seconds())
    restore = TidbRestoreOperator(task_id="restore", body=from_plan("body"), pitr_cluster=cluster.name, retries=0,
                                  **{**cr_args(cluster), "namespace": from_plan("target_namespace")})
    return wait, storage_caught_up, restore


@task
def read_source_at_t(planned: dict[str, Any]) -> dict[str, Any]:
    """ADMIN CHECKSUM TABLE and the row fingerprints on the source as of the restore time, when the plan asks
    for a comparison."""
    check = planned.get("verify")
    if not check:
        return {"requested": False}
    # Imported only now: it brings the Kubernetes clients, seconds of a task's start that a run without verify
    # need not wait for.
    from .tasks.drill import read_source

    started = time.monotonic()
    source = read_source(check["source_conn_id"], int(planned["target_ts"]), check["tables"], check["verifiable"],
                         **_limits(check))
    return {"requested": True, **source, **measured_read(planned, source, time.monotonic() - started)}


def _limits(check: dict[str, Any]) -> dict[str, Any]:
    """The comparison's bounds from the plan (plans made before they existed: the defaults)."""
    return {k: check[k] for k in ("parallel", "timeout_seconds") if k in check}


def measured_read(planned: dict[str, Any], source: dict[str, Any], seconds: float) -> dict[str, Any]:
    """How fast the source was read, against the rate the drill planned with (drill.source_scan_rate): the
    figure to configure when the plan's estimate of the read was off."""
    expected = (planned.get("drill") or {}).get("source_read")
    if not source.get("read") or not expected or seconds <= 0:
        return {}
    rate = expected["bytes"] * expected.get("passes", 1) / seconds
    log.info("Read the source at T in %s: %s, %s/s (the plan assumed %s/s)", format_duration(seconds),
             format_bytes(expected["bytes"]), format_bytes(rate), format_bytes(expected["rate_bytes_per_second"]))
    return {"read_seconds": seconds, "read_rate_bytes_per_second": rate}


@task(task_id="verify", retries=0)
def verify_restored(planned: dict[str, Any], source: dict[str, Any], **context: Any) -> dict[str, Any]:
    """The same checksums on the restored target, compared; fails naming the first differing tables. Skipped (not
    green) when the run did not ask for it: a success here always means the tables were compared."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    if not source.get("requested"):
        raise AirflowSkipException("verify was not asked for (the run's `verify` param is off): nothing compared")
    from .tasks.drill import FAILED, differs_line, verify_restore  # the Kubernetes clients: only when comparing

    result = verify_restore(planned["verify"]["target_conn_id"], source, planned["verify"]["tables"],
                            **_limits(planned["verify"]))
    if result["verdict"] == FAILED:
        context["ti"].xcom_push(key="result", value=result)
        raise AirflowFailException(f"the restore differs from the source at {planned['target_time']}: "
                                   f"{differs_line(result['comparison'])}")
    return result
