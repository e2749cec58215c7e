"""A filtered point-in-time restore as BR v8.5.5+ runs it (sandbox/FIDELITY.md row "Filtered PITR"): only the
tables the filter takes, into a target that holds other data, which stays as it was; BR's refusals (a table that
exists, a filter that takes a system schema, a BR without filtered PITR) fail before anything is written."""

from __future__ import annotations

from typing import Any

from .conftest import s3_storage, unique, wait_for
from .test_operator_backup import _get, _phase, storage_checkpoint
from .test_operator_log_restore import _ckpt, _start_log
from .test_restore_targets import _message, _restore, _snapshot_of

GROUP = "pingcap.com"
BR_WITH_FILTER = "pingcap/br:v8.5.5"


def _of(rows: dict[str, Any], *tables: str) -> dict[str, Any]:
    """The keys (definitions and rows) of the given "db/table" tables."""
    return {k: v for k, v in rows.items() if any(k == t or k.startswith(t + "/") for t in tables)}


def _others(rows: dict[str, Any], table: str) -> dict[str, Any]:
    return {k: v for k, v in rows.items() if not (k == table or k.startswith(table + "/"))}


def test_a_filtered_pitr_restores_only_its_tables_next_to_the_targets_data(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    log, _ = _start_log(crs, GROUP, ns, cluster, s3_storage(f"{cluster}/log"))
    snapshot, commit_ts = _snapshot_of(sandbox, crs, ns, cluster)
    checkpoint = _ckpt(wait_for(lambda: _get(crs, GROUP, ns, log), lambda o: _ckpt(o) > commit_ts + (500 << 18)))
    target_ts = checkpoint - (200 << 18)
    wait_for(lambda: None, lambda _: storage_checkpoint(sandbox, "s3", f"{cluster}/log") >= target_ts)
    source = sandbox.rows(ns, cluster, target_ts)["rows"]
    # The target holds crm.* and another shop table, and no shop.orders; its data must not move.
    target = unique("target")
    sandbox.create_cluster(ns, target, workload={"inserts_per_s": 40, "updates_per_s": 5, "deletes_per_s": 0,
                                                 "tables": ["crm.accounts", "crm.events", "shop.customers"]})
    wait_for(lambda: sandbox.rows(ns, target)["rows"], lambda rows: len(_of(rows, "crm/events")) > 3)
    sandbox.stop_workload(ns, target)
    before = sandbox.rows(ns, target)["rows"]
    spec = {"restoreMode": "pitr", "pitrRestoredTs": str(target_ts), "pitrFullBackupStorageProvider": snapshot,
            **s3_storage(f"{cluster}/log")}

    # BR before v8.5.5 (the target's v8.5.2) has no filtered PITR; a filter that may take mysql is refused.
    old = _restore(crs, ns, target, {**spec, "tableFilter": ["shop.orders"]})
    assert _phase(old) == "Failed" and "needs v8.5.5 or later" in _message(old)
    system = _restore(crs, ns, target, {**spec, "tableFilter": ["*.orders"], "toolImage": BR_WITH_FILTER})
    assert _phase(system) == "Failed"
    assert _message(system).startswith("PiTR doesn't support custom filter to include system db")
    assert sandbox.rows(ns, target)["rows"] == before

    done = _restore(crs, ns, target, {**spec, "tableFilter": ["shop.orders", "!mysql.*"],
                                      "toolImage": BR_WITH_FILTER})
    assert _phase(done) == "Complete", done["status"]
    after = sandbox.rows(ns, target)["rows"]
    restored = _of(after, "shop/orders")
    expected = _of(source, "shop/orders")
    assert {k: v for k, v in restored.items() if k.count("/") == 2} == {
        k: v for k, v in expected.items() if k.count("/") == 2}
    # A new table ID, as for any restore into a cluster that has allocated past the source's.
    assert restored["shop/orders"]["id"] > max(v["id"] for k, v in before.items() if k.count("/") == 1 and "id" in v)
    assert _others(after, "shop/orders") == before, "the target's other tables and databases are as they were"

    # Again: shop.orders exists now, so BR's checkTableExistence refuses before writing.
    again = _restore(crs, ns, target, {**spec, "tableFilter": ["shop.*"], "toolImage": BR_WITH_FILTER})
    assert _phase(again) == "Failed"
    assert _message(again) == "[BR:Restore:ErrTablesAlreadyExisted]table already exists: shop.customers shop.orders "
    assert sandbox.rows(ns, target)["rows"] == after


def test_filter_rules_take_system_schemas_as_tidbs_match_schema_does():
    from tidb_sandbox.operator.restore_filter import filter_refusal, match_schema

    assert match_schema(["*.orders"], "mysql") and not match_schema(["*.orders", "!mysql.*"], "mysql")
    assert match_schema(["!mysql.user", "*.*"], "mysql") and not match_schema(["shop.*"], "sys")
    assert filter_refusal("v8.5.5", ["shop.*"]) is None
    assert filter_refusal("v9.0.0", ["*.*", "!mysql.*"]) is not None  # still takes sys
    assert "needs v8.5.5" in (filter_refusal("v8.1.2", ["shop.*"]) or "")

