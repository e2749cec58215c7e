"""What restores leave in and demand of their target, as real BR and Lightning do (sandbox/FIDELITY.md, rows
"Partial restores", "Protected targets", "Lightning into a non-empty target", "Dumpling/Lightning volume", "Accounts"):
a failed restore leaves what it wrote and resumes over it, a target with its own log backup is refused, Lightning
merges rows until the first duplicate, dumps must fit the Job's PVC, and a full restore brings the source's
accounts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pymysql
from tidb_sandbox.client import sql_params

from .conftest import VERSION, s3_storage, unique, wait_for
from .test_operator_backup import _get, _phase, _snapshot
from .test_operator_dumpling import _run, _seed_backup
from .test_operator_log_restore import _start_log

GROUP = "pingcap.com"


def _data(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rows.items() if k.count("/") == 2}


def _tables(rows: dict[str, Any]) -> set[str]:
    return {k.rsplit("/", 1)[0] for k in _data(rows)}


def _every_table_has_three_rows(rows: dict[str, Any]) -> bool:
    per_table = Counter(k.rsplit("/", 1)[0] for k in _data(rows))
    return len(per_table) >= 4 and min(per_table.values()) >= 3  # the workload's four tables


def _restore(crs: Any, ns: str, target: str, spec: dict[str, Any]) -> dict[str, Any]:
    name = unique("restore")
    crs.create_namespaced_custom_object(GROUP, VERSION, ns, "restores",
                                        {"metadata": {"name": name}, "spec": {"br": {"cluster": target}, **spec}})
    return wait_for(lambda: _get(crs, GROUP, ns, name, "restores"), lambda o: _phase(o) in ("Complete", "Failed"))


def _message(obj: dict[str, Any]) -> str:
    return obj["status"]["conditions"][-1]["message"]


def _snapshot_of(sandbox: Any, crs: Any, ns: str, cluster: str) -> tuple[dict[str, Any], int]:
    wait_for(lambda: sandbox.rows(ns, cluster)["rows"], lambda rows: len(_tables(rows)) >= 3)
    snap = unique("snap")
    spec = s3_storage(f"{cluster}/{snap}")
    crs.create_namespaced_custom_object(GROUP, VERSION, ns, "backups", _snapshot(snap, cluster, spec))
    done = wait_for(lambda: _get(crs, GROUP, ns, snap), lambda o: _phase(o) == "Complete")
    return spec, int(done["status"]["commitTs"])


def test_a_failed_restore_leaves_its_first_tables_and_the_same_restore_resumes_over_them(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    spec, commit_ts = _snapshot_of(sandbox, crs, ns, cluster)
    everything = sandbox.rows(ns, cluster, commit_ts)["rows"]
    source, defined = _data(everything), sorted(k for k in everything if k.count("/") == 1)
    target = unique("target")
    sandbox.create_cluster(ns, target)
    try:
        sandbox.set_faults(fail_restore_after=0.5)
        failed = _restore(crs, ns, target, spec)
        assert _phase(failed) == "Failed" and "[BR:KV:ErrKVIngestFailed]" in _message(failed)
        written = sandbox.rows(ns, target)["rows"]
        half = defined[:len(defined) // 2]
        # The first half of the tables, in key order, with all their rows; nothing of the others.
        assert half and sorted(k for k in written if k.count("/") == 1) == half
        assert _data(written) == {k: v for k, v in source.items() if k.rsplit("/", 1)[0] in half}
        assert f"{len(half)} of {len(defined)} tables restored" in _message(failed)

        # Another backup into that target meets BR's fresh-cluster check ...
        other_spec, _ = _snapshot_of(sandbox, crs, ns, cluster)
        refused = _restore(crs, ns, target, other_spec)
        assert _phase(refused) == "Failed" and "ErrDatabasesAlreadyExisted" in _message(refused)
        # ... the same backup resumes from BR's checkpoint (no fresh check) and completes with the source's rows.
        resumed = _restore(crs, ns, target, spec)
        assert _phase(resumed) == "Complete", resumed["status"]
        assert _data(sandbox.rows(ns, target)["rows"]) == source
    finally:
        sandbox.set_faults(fail_restore_after=None)


def test_a_target_with_its_own_log_backup_is_refused_as_each_br_version_refuses(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    spec, _ = _snapshot_of(sandbox, crs, ns, cluster)
    target = unique("target")
    sandbox.create_cluster(ns, target)
    task, _ = _start_log(crs, GROUP, ns, target, s3_storage(f"{target}/log"))
    # BR before v9 (the default v8.5.2 here): checkTaskExists refuses every restore.
    old = _restore(crs, ns, target, spec)
    assert _phase(old) == "Failed"
    assert _message(old).startswith(f"failed to check task exists: log backup task is running: {task}, please stop "
                                    "the task before restore")
    # BR v9: checkTaskCompat refuses a whole-cluster snapshot restore with its own words.
    new = _restore(crs, ns, target, {**spec, "toolImage": "pingcap/br:v9.0.0"})
    assert _phase(new) == "Failed"
    assert "you want to restore a whole cluster" in _message(new) and f"log backup task is running: {task}, and " \
        "isn't compatible with your restore" in _message(new)
    assert sandbox.rows(ns, target)["count"] == 0, "nothing was written"


def test_lightning_merges_until_the_first_duplicate_and_dumps_must_fit_the_pvc(sandbox, crs, new_cluster):
    namespace, cluster = new_cluster()
    # The dump's first table (in key order) needs three rows below; the workload spreads its inserts at random.
    wait_for(lambda: sandbox.rows(namespace, cluster)["rows"], _every_table_has_three_rows)
    dump = _seed_backup("22-backup-demo1-backup-s3.yaml", sandbox, namespace, cluster, f"{cluster}/logical")
    status = _run(crs, dump)["status"]
    assert status["phase"] == "Complete", status
    size = int(status["backupSize"])
    target_ns, target = new_cluster(workload={})

    def lightning(storage_size: str) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Restore",
                "metadata": {"name": unique("import"), "namespace": target_ns},
                "spec": {"to": {"host": f"{target}-tidb.{target_ns}.svc", "port": 4000, "user": "root",
                                "secretName": f"backup-{target}-tidb-secret"},
                         "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1",
                                "path": status["backupPath"]},
                         "storageSize": storage_size}}
        return _run(crs, body, "restores")["status"]

    # The archive fits the PVC but not with the dump unpacked beside it: the import fails before writing.
    small = lightning(str(size + 1))
    assert (small["phase"], small["conditions"][-1]["reason"]) == ("Failed", "UnarchiveBackupDataFailed")
    assert "no space left on device" in small["conditions"][-1]["message"]
    assert sandbox.rows(target_ns, target)["count"] == 0

    assert lightning("1Gi")["phase"] == "Complete"
    full = sandbox.rows(target_ns, target)["rows"]
    first_table = sorted(_tables(full))[0]
    keys = sorted(k for k in _data(full) if k.startswith(first_table + "/"))
    assert len(keys) >= 3
    database, table = first_table.split("/")
    for key in (keys[0], keys[2]):  # the target now lacks two rows of the dump's first table
        sandbox.write_row(target_ns, target, database, table, int(key.rsplit("/", 1)[1]), delete=True)

    # Again into the (non-empty) target: no precheck; the first row goes back in, the second is a duplicate and
    # fails the task, and the third stays missing.
    again = lightning("1Gi")
    assert (again["phase"], again["conditions"][-1]["reason"]) == ("Failed", "LoaderBackupDataFailed")
    handle = int(keys[1].rsplit("/", 1)[1])
    assert (f"[Lightning:Restore:ErrRestoreTable]restore table `{database}`.`{table}` failed: Error 1062 (23000): "
            f"Duplicate entry '{handle}' for key '{table}.PRIMARY'") in again["conditions"][-1]["message"]
    after = sandbox.rows(target_ns, target)["rows"]
    assert after[keys[0]] == full[keys[0]] and keys[2] not in after

    # An export whose dump and archive do not fit its PVC fails with the operator's reason.
    tight = _seed_backup("22-backup-demo1-backup-s3.yaml", sandbox, namespace, cluster, f"{cluster}/tight")
    tight["spec"]["storageSize"] = str(size)
    failed = _run(crs, tight)["status"]
    assert failed["phase"] == "Failed"
    assert failed["conditions"][-1]["reason"] in ("DumpTidbClusterFailed", "ArchiveBackupDataFailed")
    assert "no space left on device" in failed["conditions"][-1]["message"]


def _login(sandbox: Any, ns: str, cluster: str, user: str, password: str) -> str:
    """'ok', or TiDB's refusal as the client sees it."""
    params = {**sql_params(sandbox.call("GET", f"/clusters/{ns}/{cluster}")["sql"]), "user": user, "password": password}
    try:
        with pymysql.connect(connect_timeout=10, **params) as db, db.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except pymysql.err.OperationalError as err:
        return str(err.args[1])


def test_a_full_restore_replaces_the_targets_accounts_other_than_root_with_the_sources(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    sandbox.write_account(ns, cluster, "app", "source-app")
    sandbox.write_account(ns, cluster, "reader", "source-reader")
    spec, _ = _snapshot_of(sandbox, crs, ns, cluster)
    target = unique("target")
    sandbox.create_cluster(ns, target)
    sandbox.write_account(ns, target, "app", "target-app")
    sandbox.write_account(ns, target, "ops", "target-ops")
    assert _login(sandbox, ns, target, "ops", "target-ops") == "ok"
    # Accounts are not user data: BR's fresh-cluster check lets the restore in.
    assert _phase(_restore(crs, ns, target, spec)) == "Complete"
    assert _login(sandbox, ns, target, "app", "source-app") == "ok"  # replaced by the source's row
    assert "Access denied for user 'app'" in _login(sandbox, ns, target, "app", "target-app")
    assert "Access denied for user 'ops'" in _login(sandbox, ns, target, "ops", "target-ops")  # gone
    assert _login(sandbox, ns, target, "reader", "source-reader") == "ok"  # copied
    root = sql_params(sandbox.call("GET", f"/clusters/{ns}/{target}")["sql"])
    assert _login(sandbox, ns, target, "root", root["password"]) == "ok"  # root stays the target's own
