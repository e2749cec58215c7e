"""On-demand restore to a point in time chosen in the trigger form."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from ..config import ClusterConfig
from ..planning.tables import RULE_HELP
from ..runtime.context import run_key
from ..units import format_duration
from .common import dag_kwargs, republish_status
from .restore_steps import proceed_task, publish_plan, read_source_at_t, restore_steps, verify_restored

DOC = """
### Restore `{ns}/{name}` to a point in time

Trigger it from the UI: type **Restore to** with its timezone (`2026-11-21T05:30:00Z`, or
`2026-11-21 13:30:00+08:00`; a time without one is refused with what to add), or paste an exact **restore_tso**, and choose the empty **target cluster** from the list (`restore_targets` in
clusters.yaml). The recoverable window is printed by every run of the guard (`{guard}`) and in this DAG's
`plan` log and run note: Airflow draws this form from the DAG file alone, which reads no cluster state (nothing
may touch the network while a DAG file is parsed), so the form cannot show the live window.

Airflow 3.3's Trigger form always shows its own **Logical Date** for a DAG like this one (it hides it only for
partitioned DAGs): leave it as it is, it has no effect on the restore. The restore point is **Restore to**.

| task | what it does |
|---|---|
| `plan` | validates every field, reads the recoverable window, picks the base snapshot (the newest Complete full-cluster one at or before the time, or `base_snapshot`), checks the target exists, is not being restored into and, over SQL (`sql_conn_id`), holds no user database, lists earlier restores into it, estimates the duration from the snapshot's size and the log volume in storage, waits for a running retention (up to {retention_wait}, then refuses), takes a lease that keeps retention from deleting the base, and logs the plan with the Restore CR body. Any refusal happens here, before a CR exists, as one line that starts with the reason and gives the window; the run's note carries it too |
| `plan`, with **Tables** | a point-in-time restore of only those tables (BR table-filter rules; `Restore.spec.tableFilter`) into a target that may hold other data: refuses a target older than TiDB v8.5.5, rules that match no table of the source at the time (read over SQL when the cluster has `sql_conn_id`), and a target that already holds one of the tables (over SQL), naming them; `verify` then compares only those tables |
| `proceed` | stops here when `dry_run` is set |
| `wait_for_checkpoint` | when the time is recent, waits until the log checkpoint has passed it |
| `wait_for_storage_checkpoint` | and until the checkpoint in storage, which BR checks, has passed it too |
| `read_source_at_t` | with `verify`: `ADMIN CHECKSUM TABLE` and the row fingerprint of every user table on the source as of the restore time, right away, while the source can still be read at that time (its GC life time) |
| `restore` | creates the `pitr` Restore CR (named after the run: a second run to the same time makes its own) and waits (deferred) for Complete; a failure is reported as the operator's message and the CR's name |
| `verify` | skipped unless `verify` is on; with it: the same checksums on the restored target, compared table by table (the table lists too); fails naming the first differing tables. A time older than the source's GC safe point is reported as not verified, never as passed |
| `report` | the restore point, how long it took against the estimate; releases the lease, also when the restore failed |
| `publish_status` | what the TiDB PITR page shows (the targets' states among it), published again at once |
"""


RESTORE_TIME_HELP = ("Date and time to restore to, with its timezone: 2026-11-21T05:30:00Z (UTC) or "
                     "2026-11-21 13:30:00+08:00. A time without one is refused, not guessed. It must be inside the "
                     "recoverable window (the guard {guard} logs it at every run; a refused run shows it in its "
                     "note). Or leave empty and give restore_tso.")


# What the list shows before a target is chosen: Airflow's form offers None as one of the enum's choices.
CHOOSE_TARGET = "choose the empty cluster to restore into"


def _target_param(cluster: ClusterConfig) -> Param:
    """The targets a user may restore into: every restore target but the drill's scratch clusters (drills only),
    none chosen by default. The form is drawn from the DAG file alone and cannot know which target is empty now; a
    default would be whatever is listed first, which the demo or an earlier restore may have filled. Left empty, the
    run's plan refuses it naming the field and the targets allowed (tasks/restore.py `_target`)."""
    choices = cluster.user_target_choices()
    scratch = [value.rpartition("/")[2] for value in cluster.scratch_choices()]
    title = "Target cluster" + (f" (not {', '.join(scratch)}: scratch, drills only)" if scratch else "")
    left_out = (f" Not listed: {', '.join(cluster.scratch_choices())} (scratch: the drill's, which it empties; "
                "drills only)." if scratch else "")
    if choices:
        return Param(None, type=["null", "string"], enum=[None, *choices],
                     values_display={None: CHOOSE_TARGET, **choices}, title=title,
                     description="The empty cluster to restore into (restore_targets in clusters.yaml); none is "
                                 "chosen for you: the TiDB PITR page shows which are empty, and plan refuses one "
                                 "that holds data." + left_out)
    return Param(None, type=["null", "string"], title=title,
                 description="The empty TidbCluster / Cluster to restore into: a name in namespace "
                             f"{cluster.namespace}, or namespace/name. Not the source. (List restore_targets "
                             "in clusters.yaml to choose from a list.)" + left_out)


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, retention_wait=format_duration(
        cluster.waits.retention_wait), guard=cluster.dag_id("log_guard"))
    params = {
        # No `format: date-time`: Airflow would refuse a time without a zone with its raw JSON-schema dump before
        # the run exists; as a plain string it reaches `plan`, whose refusal says what to add (tso.parse_user_time).
        "restore_time": Param(None, type=["null", "string"], title="Restore to",
                              description=RESTORE_TIME_HELP.format(guard=cluster.dag_id("log_guard"))),
        "restore_tso": Param(None, type=["null", "string"], pattern="^[0-9]*$", title="Restore to TSO (optional)",
                             description="An exact TiDB TSO instead of Restore to."),
        "target_cluster": _target_param(cluster),
        "tables": Param([], type=["null", "array"], items={"type": "string"}, title="Tables (optional)",
                        description="Restore only these tables, next to whatever else the target holds: "
                                    f"{RULE_HELP}. The target must not hold any of them and must run TiDB v8.5.5 or "
                                    "later; plan checks both and lists what will be restored."),
        "base_snapshot": Param(None, type=["null", "string"], title="Base snapshot (optional)",
                               description="A Backup CR name to start from instead of the newest one that fits."),
        "verify": Param(False, type="boolean", title="Verify: compare every table with the source afterwards",
                        description="Row fingerprints (and ADMIN CHECKSUM TABLE where BR kept the table ID) on the "
                                    "target against the source read as of the restore time; needs sql_conn_id on the cluster and the target, and a time inside the "
                                    "source's GC life time (tidb_gc_life_time)."),
        "dry_run": Param(False, type="boolean", title="Dry run: plan and check only, create nothing",
                         description="Validate, check the target and plan; no lease, no Restore CR."),
    }
    with DAG(schedule=None, params=params, render_template_as_native_obj=True,
             **dag_kwargs(cluster, "restore", doc)) as dag:

        @task(retries=0)
        def plan(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            from ..operators.labels import run_hash
            from .tasks.restore import plan_restore_for

            return publish_plan(context, lambda: plan_restore_for(cluster, dict(params or {}), run=run_key(context),
                                                                 run_hash=run_hash(context)))

        proceed = proceed_task()
        planned = plan()
        wait, storage_caught_up, restore = restore_steps(cluster)

        @task(trigger_rule="all_done", retries=0)
        def report(**context: Any) -> dict[str, Any]:
            from ..operators.labels import run_hash
            from .tasks.restore import release_restore, restore_report

            release_restore(cluster, run_hash(context))
            return restore_report(cluster, context)

        source = read_source_at_t(planned)
        proceed(planned) >> source >> wait >> storage_caught_up >> restore
        checked = verify_restored(planned, source)
        restore >> checked
        [planned, restore, checked] >> (reported := report())
        reported >> republish_status(cluster)  # the target's new state and the lease gone: on the page at once
    return dag
