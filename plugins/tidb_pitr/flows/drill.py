"""Restore drill: on a schedule, restore into a scratch cluster and prove, table by table, that it equals the
source at the restore time; then empty the scratch cluster and record the verdict and the RTO."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, Param, task
from airflow.timetables.trigger import CronTriggerTimetable

from ..config import ClusterConfig
from ..planning.drill import MODES
from ..runtime.context import failed_upstream, run_key
from .common import dag_kwargs, republish_status
from .restore_steps import read_source_at_t, restore_steps, verify_restored

DOC = """
### Restore drill of `{ns}/{name}` into scratch cluster `{target}` ({schedule}, {tz})

A backup is only as good as its last restore. Each run picks a restore time T (`recent`: {margin} before the
log checkpoint, inside the source's GC life time; `random`: anywhere in the recoverable window, gaps excluded),
restores into the empty scratch cluster through the same plan and operators as `{restore}`, and compares
every selected table ({tables}) with the source read as of T (`@@tidb_snapshot`): a row fingerprint
(COUNT(*) and BIT_XOR(CRC32) of every row's columns), which has no table ID in it, and `ADMIN CHECKSUM TABLE`
where BR kept the table's ID (from the second drill into the same scratch cluster on it gives new ones). That
read is exact only while T is after the source's GC safe point: when it is not, or a table was compared by
neither, the tables are reported **not verified**, never passed. With **Tables** (`drill.restore_tables`, BR
table-filter rules) the drill restores only those tables (TiDB v8.5.5+) next to the scratch cluster's other data,
compares them, and `empty_target` drops only them, so drills of a large cluster can rotate through its tables.

| task | what it does |
|---|---|
| `plan` | checks the target is a `scratch: true` restore target, reads the source's GC life time and safe point over SQL, picks T, sizes the comparison's read of the source (table sizes over the configured `source_scan_rate`, plus `gc_headroom`) and refuses a `recent` T the GC would pass first, with the numbers (naming a lagging log backup when it holds the GC), then plans the restore exactly as `{restore}` does (empty-target check over SQL, base snapshot, estimate, lease). Refusals are one line, before anything changes |
| `read_source_at_t` | `ADMIN CHECKSUM TABLE`, table IDs and row fingerprints of each selected table on the source as of T, right away, while T is still readable |
| `wait_for_checkpoint`, `wait_for_storage_checkpoint` | until the log (and the log in storage, which BR checks) has passed T |
| `restore` | the `pitr` Restore CR into the scratch cluster, waited for (deferred) |
| `verify` | the same reads on the restored cluster; the table lists must match too; fails naming the first differing tables; says how each table was compared |
| `empty_target` | drops the user databases the drill restored (only on a `scratch: true` target, only when this run made a Restore), so the next drill or restore finds it empty |
| `record` | T, base snapshot, log range, tables compared, mismatches, RTO (run start to Restore Complete) against the estimate: an Asset event `{asset}`, this task's XCom (the last drill), the metric `tidb_pitr.drill_rto_seconds`, the run's note; calls the cluster's notifiers when the drill failed |
| `publish_status` | what the TiDB PITR page shows, published again (the scratch target empty again) |
| `verdict` | fails the run unless the drill passed (a `random` or given T the source can no longer be read at may end restored but not verified; a `recent` drill must compare) |
"""


def drill_asset(cluster: ClusterConfig) -> Asset:
    return Asset(f"tidb://{cluster.namespace}/{cluster.name}/drills", group="tidb-pitr")


def _params(cluster: ClusterConfig) -> dict[str, Param]:
    assert cluster.drill is not None
    choices = cluster.scratch_choices()
    target = cluster.drill_target()
    assert target is not None  # the config's own check
    default = f"{target.namespace}/{target.name}"
    return {
        "mode": Param(cluster.drill.mode, type="string", enum=list(MODES), title="Mode",
                      values_display={"recent": "recent: just before the log checkpoint, fully verified",
                                      "random": "random: anywhere in the recoverable window"}),
        "target_cluster": Param(default, type="string", enum=list(choices), values_display=choices,
                                title="Scratch cluster", description="Restored into, compared, then emptied."),
        "restore_tables": Param(list(cluster.drill.restore_tables), type=["null", "array"], items={"type": "string"},
                                title="Tables (optional): drill only these",
                                description="BR table-filter rules ('shop.*', 'crm.orders'); empty drills the whole "
                                            "cluster. Restored next to the scratch cluster's other data (TiDB v8.5.5+), "
                                            "compared, then dropped; the other data stays."),
        "restore_tso": Param(None, type=["null", "string"], pattern="^[0-9]*$", title="Drill at TSO (optional)",
                             description="An exact restore time instead of the mode's choice."),
    }


def build(cluster: ClusterConfig) -> DAG:
    assert cluster.drill is not None
    asset = drill_asset(cluster)
    schedule = cluster.drill_schedule()
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, target=cluster.drill.target, schedule=schedule,
                     tz=cluster.timezone, margin=cluster.drill.margin, restore=cluster.dag_id("restore"),
                     tables=", ".join(cluster.drill.tables), asset=asset.uri)
    timetable = CronTriggerTimetable(schedule, timezone=cluster.timezone)
    with DAG(schedule=timetable, params=_params(cluster), render_template_as_native_obj=True,
             **dag_kwargs(cluster, "drill", doc)) as dag:

        @task(retries=0)
        def plan(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            from ..operators.labels import run_hash
            from ..planning.notes import refusal_note
            from ..runtime.notes import publish_note
            from .tasks.drill import plan_drill
            from .tasks.restore import RestoreRefused

            try:
                planned = plan_drill(cluster, dict(params or {}), run=run_key(context), run_hash=run_hash(context))
            except RestoreRefused as refused:
                publish_note(context, refusal_note("Drill refused:", str(refused), refused.window))
                raise
            publish_note(context, "Drilling: " + planned["notes"][0])
            return planned

        planned = plan()
        source = read_source_at_t(planned)
        wait, storage_caught_up, restore = restore_steps(cluster)

        @task(trigger_rule="all_done", retries=1)
        def empty_target(**context: Any) -> dict[str, Any]:
            from .tasks.drill import empty_scratch_target

            return empty_scratch_target(cluster, context["ti"].xcom_pull(task_ids="plan"))

        @task(trigger_rule="all_done", retries=0, outlets=[asset])
        def record(**context: Any) -> dict[str, Any]:
            from ..operators.labels import run_hash
            from ..runtime.notes import NOTE_KEY
            from .tasks.drill import FAILED, drill_record, publish_drill
            from .tasks.restore import release_restore

            ti = context["ti"]
            planned = ti.xcom_pull(task_ids="plan")
            if planned:
                release_restore(cluster, run_hash(context))
            checked = ti.xcom_pull(task_ids="verify") or ti.xcom_pull(task_ids="verify", key="result")
            result = drill_record(cluster, planned, ti.xcom_pull(task_ids="restore"), checked,
                                  ti.xcom_pull(task_ids="empty_target"), failed_upstream(context),
                                  context["dag_run"], refused=ti.xcom_pull(task_ids="plan", key=NOTE_KEY))
            publish_drill(cluster, context, asset, result, notify_failure=result["verdict"] == FAILED)
            return result

        @task(trigger_rule="all_done", retries=0)
        def verdict(result: dict[str, Any]) -> str:
            from airflow.sdk.exceptions import AirflowFailException

            from .tasks.drill import FAILED, NOT_VERIFIED

            if not result or result.get("verdict") == FAILED:
                raise AirflowFailException((result or {}).get("summary") or "the drill failed")
            if result["verdict"] == NOT_VERIFIED and result.get("mode") == "recent":
                # A recent drill exists to prove the restore equal; one that could not compare proves nothing.
                raise AirflowFailException(result["summary"])
            return result["verdict"]

        checked = verify_restored(planned, source)
        source >> wait >> storage_caught_up >> restore >> checked >> empty_target() >> (done := record())
        verdict(done)
        done >> republish_status(cluster)  # the scratch target emptied again, the lease gone: on the page at once
    return dag
