"""Fault corrupt_restore: one restored row of the named table is wrong, as a restore drill's checksums see."""

from __future__ import annotations

import random
from typing import Any

import pymysql
from tidb_sandbox.client import sql_params

from .conftest import VERSION, s3_storage, unique, wait_for
from .test_operator_backup import _get, _phase, _snapshot, storage_checkpoint
from .test_operator_log_restore import _ckpt, _start_log

GROUP = "pingcap.com"
TABLES = "shop.orders, shop.customers, crm.accounts, crm.events"


def _restore(sandbox: Any, crs: Any, ns: str, spec: dict[str, Any]) -> str:
    """A Restore into a new empty cluster, waited for until Complete: the target's name."""
    target, name = unique("target"), unique("restore")
    sandbox.create_cluster(ns, target)
    body = {"metadata": {"name": name}, "spec": {"br": {"cluster": target}, **spec}}
    crs.create_namespaced_custom_object(GROUP, VERSION, ns, "restores", body)
    done = wait_for(lambda: _get(crs, GROUP, ns, name, "restores"), lambda o: _phase(o) in ("Complete", "Failed"))
    assert _phase(done) == "Complete", done["status"]
    return target


def _checksums(sandbox: Any, ns: str, cluster: str, at: int | None = None) -> list[tuple]:
    url = sandbox.call("GET", f"/clusters/{ns}/{cluster}")["sql"]
    with pymysql.connect(connect_timeout=10, **sql_params(url)) as db, db.cursor() as cursor:
        if at is not None:
            cursor.execute(f"SET @@tidb_snapshot = '{at}'")
        cursor.execute(f"ADMIN CHECKSUM TABLE {TABLES}")
        return list(cursor.fetchall())


def _differing(restored: dict[str, Any], source: dict[str, Any]) -> list[str]:
    assert restored.keys() == source.keys()
    return [key for key in sorted(source) if restored[key] != source[key]]


def test_one_row_of_the_table_is_wrong_after_the_next_restore_then_restores_are_exact(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    log_name, _ = _start_log(crs, GROUP, ns, cluster, s3_storage(f"{cluster}/log"))
    # The snapshot must hold rows of both tables the fault names below: wait for the workload to write them (a
    # clean-clone run once took the snapshot before the first shop.orders row).
    wait_for(lambda: sandbox.rows(ns, cluster)["rows"],
             lambda rows: all(any(k.startswith(p) for k in rows) for p in ("shop/orders/", "crm/events/")))
    snap = unique("snap")
    crs.create_namespaced_custom_object(GROUP, VERSION, ns, "backups",
                                        _snapshot(snap, cluster, s3_storage(f"{cluster}/{snap}")))
    commit_ts = int(wait_for(lambda: _get(crs, GROUP, ns, snap), lambda o: _phase(o) == "Complete")
                    ["status"]["commitTs"])
    snapshot_spec = s3_storage(f"{cluster}/{snap}")
    source = sandbox.rows(ns, cluster, commit_ts)["rows"]
    try:
        # A restore without a row of the table leaves the fault armed and restores exactly.
        sandbox.set_faults(corrupt_restore="nodb.nope")
        exact = _restore(sandbox, crs, ns, snapshot_spec)
        assert sandbox.rows(ns, exact)["rows"] == source
        assert sandbox.call("GET", "/faults")["corrupt_restore"] == "nodb.nope"

        # Snapshot restore: the smallest key of shop.orders has its first column after id (customer_id) + 1.
        sandbox.set_faults(corrupt_restore="shop.orders")
        corrupted = _restore(sandbox, crs, ns, snapshot_spec)
        assert sandbox.call("GET", "/faults")["corrupt_restore"] is None, "consumed by that restore"
        restored = sandbox.rows(ns, corrupted)["rows"]
        first = min(k for k in source if k.startswith("shop/orders/"))
        assert _differing(restored, source) == [first]
        assert restored[first] == {**source[first], "customer_id": source[first]["customer_id"] + 1}
        # What a restore drill sees: the table's checksum differs from the source's at the restore TS.
        at_backup, after = _checksums(sandbox, ns, cluster, commit_ts), _checksums(sandbox, ns, corrupted)
        assert after[0][:2] == ("shop", "orders") and after[0][2] != at_backup[0][2]
        assert after[0][3] == at_backup[0][3] and after[1:] == at_backup[1:]

        # The next restore, a pitr one, is exact again.
        checkpoint = _ckpt(wait_for(lambda: _get(crs, GROUP, ns, log_name), lambda o: _ckpt(o) > commit_ts))
        restored_ts = random.Random(commit_ts).randint(commit_ts, checkpoint)
        wait_for(lambda: None, lambda _: storage_checkpoint(sandbox, "s3", f"{cluster}/log") >= restored_ts)
        pitr = {"restoreMode": "pitr", "pitrRestoredTs": str(restored_ts),
                "pitrFullBackupStorageProvider": snapshot_spec, **s3_storage(f"{cluster}/log")}
        at_t = sandbox.rows(ns, cluster, restored_ts)
        assert sandbox.rows(ns, _restore(sandbox, crs, ns, pitr))["digest"] == at_t["digest"]

        # A pitr restore takes the fault as well.
        sandbox.set_faults(corrupt_restore="crm.events")
        restored = sandbox.rows(ns, _restore(sandbox, crs, ns, pitr))["rows"]
        first = min(k for k in at_t["rows"] if k.startswith("crm/events/"))
        assert _differing(restored, at_t["rows"]) == [first]
        assert restored[first]["account_id"] == at_t["rows"][first]["account_id"] + 1
        assert sandbox.call("GET", "/faults")["corrupt_restore"] is None
    finally:
        sandbox.set_faults(corrupt_restore=None)
