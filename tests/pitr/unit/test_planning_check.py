"""`check`'s verdicts: rows ordered failed first, the note's headline, the exit code, the RBAC comparison with
include/rbac.yaml, the clock skew and checkpoint thresholds, and the probe's confinement to its own folder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.hooks.storage import BackupStorageHook
from tidb_pitr.planning.check import (
    FAILED,
    OK,
    ROLE_GRANTS,
    WARNING,
    CheckRow,
    access_rows,
    check_note,
    drill_gc_row,
    exit_code,
    grants_row,
    log_backup_rows,
    needed_access,
    new_failures,
    ordered,
    parse_version,
    schedule_rows,
    secret_row,
    skew_row,
    triggerer_row,
    version_row,
)
from tidb_pitr.planning.notes import HEADLINE

ROLE = Path(__file__).resolve().parents[3] / "include" / "rbac.yaml"

rows_st = st.lists(st.builds(CheckRow, name=st.text("abcdefgh ", min_size=1, max_size=30),
                             status=st.sampled_from([OK, WARNING, FAILED]), value=st.text(max_size=40),
                             action=st.text(max_size=40)), max_size=25)


@given(rows_st)
def test_failed_rows_come_first_and_nothing_is_lost(rows):
    out = ordered(rows)
    assert sorted(map(repr, out)) == sorted(map(repr, rows))
    ranks = [{FAILED: 0, WARNING: 1, OK: 2}[r.status] for r in out]
    assert ranks == sorted(ranks)
    assert [r for r in out if r.status == FAILED] == [r for r in rows if r.status == FAILED]  # in run order


@given(rows_st)
def test_the_exit_code_and_the_note_say_whether_something_failed(rows):
    failed = [r for r in rows if r.status == FAILED]
    assert exit_code(rows) == (2 if failed else 0)
    note = check_note("test1/demo1", rows)
    head = note.split("\n\n")[0]
    assert len(head) <= HEADLINE
    assert head.startswith(f"Check test1/demo1: {len(failed)} FAILED, ")
    body = note.split("\n\n")[-1]
    for row in rows:
        if row.status != OK:
            assert " ".join(f"{row.status:<7} {row.name}".split()) in " ".join(body.split())


def test_a_new_failure_is_told_once():
    rows = [CheckRow("rbac delete backups", FAILED, "denied"), CheckRow("clock skew", FAILED, "2m"),
            CheckRow("storage probe", OK, "fine")]
    assert [r.name for r in new_failures(rows, ["clock skew"])] == ["rbac delete backups"]
    assert new_failures(rows, ["clock skew", "rbac delete backups"]) == []


@given(st.floats(-600, 600, allow_nan=False))
def test_clock_skew_thresholds(skew):
    row = skew_row(skew)
    expected = FAILED if abs(skew) > 60 else WARNING if abs(skew) > 5 else OK
    assert row.status == expected
    assert ("ahead of" if skew >= 0 else "behind") in row.value


def _role_pairs() -> set[tuple[str, str]]:
    docs = [d for d in yaml.safe_load_all(ROLE.read_text()) if d]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "tidb-pitr-airflow")
    return {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}


def test_the_reference_grants_are_include_rbac_yaml_and_cover_every_need():
    assert set(ROLE_GRANTS) == _role_pairs()
    kinds = ["log_guard", "snapshot", "retention", "restore", "rpo_alert", "compaction", "drill"]
    for group in ("pingcap.com", "br.pingcap.com"):
        needs = needed_access(kinds, group, schedule=False)
        assert {(r, v) for _, r, v in needs} <= set(ROLE_GRANTS)


def test_a_missing_verb_fails_naming_the_dags_and_an_extra_one_warns():
    needed = needed_access(["log_guard", "retention", "snapshot"], "pingcap.com", schedule=False)
    granted = {k: True for k in needed}
    assert [r.status for r in access_rows(needed, granted, set(ROLE_GRANTS))] == [OK]

    without_delete = {**granted, ("pingcap.com", "backups", "delete"): False}
    rows = access_rows(needed, without_delete, set(ROLE_GRANTS))
    assert [(r.name, r.status) for r in rows] == [("rbac delete backups", FAILED)]
    assert "retention" in rows[0].action and "snapshot" not in rows[0].action

    wider = {**granted, ("", "secrets", "get"): True, ("pingcap.com", "restores", "create"): True}
    rows = access_rows(needed, wider, set(ROLE_GRANTS))
    assert [(r.status, r.value) for r in rows] == [(WARNING, "get secrets")]  # creating restores is the Role's


def test_a_storage_checkpoint_that_stopped_while_the_crs_moved_fails():
    live = [("demo1-log-backup", "demo1/log-backup")]
    common = {"observed_for": 5.0, "warn": 600.0, "critical": 1800.0}
    fine = log_backup_rows(live, "demo1", cr_lag=3, storage_lag=4, cr_advanced=True, storage_advanced=True,
                           **common)
    assert [r.status for r in fine] == [OK] * 4
    stalled = log_backup_rows(live, "demo1", cr_lag=3, storage_lag=40, cr_advanced=True, storage_advanced=False,
                              **common)
    row = next(r for r in stalled if r.name == "log checkpoint (storage)")
    assert row.status == FAILED and "PD's moved" in row.action
    elsewhere = log_backup_rows([("x", "other/log-backup")], "demo1", cr_lag=3, storage_lag=4, cr_advanced=True,
                                storage_advanced=True, **common)
    assert next(r for r in elsewhere if r.name == "log backup storage").status == FAILED
    two = log_backup_rows(live * 2, "demo1", cr_lag=None, storage_lag=None, cr_advanced=None, storage_advanced=None,
                          **common)
    assert [r.status for r in two] == [FAILED]


@pytest.mark.parametrize(("version", "compaction", "status"), [
    ("v8.5.2", False, OK), ("8.0.11-TiDB-v8.5.5", True, OK), ("v8.5.2", True, FAILED), ("v6.1.7", False, FAILED),
    ("nightly", False, WARNING), (None, False, WARNING)])
def test_the_tidb_version_against_what_is_configured(version, compaction, status):
    assert version_row(version, compaction=compaction).status == status


def test_parse_version():
    assert parse_version("8.0.11-TiDB-v8.5.2") == (8, 5, 2)
    assert parse_version("v7.5.0") == (7, 5, 0)
    assert parse_version("v7.5") is None


def test_the_probe_is_written_only_under_its_own_folder(tmp_path):
    hook = BackupStorageHook("local", conn_id=None, bucket=str(tmp_path), managed_root="demo1")
    key = hook.write_probe("probe-1", b"x")
    assert key == "demo1/.tidb-pitr-check/probe-1" and (tmp_path / key).read_bytes() == b"x"
    hook.delete_probe("probe-1")
    assert not (tmp_path / "demo1" / ".tidb-pitr-check").exists()
    for bad in ("../snapshot-20260101000000/backupmeta", "a/b", ""):
        with pytest.raises(ValueError, match="one path segment"):
            hook.write_probe(bad, b"x")


def test_a_probe_that_never_came_back_means_no_triggerer():
    assert triggerer_row(None, 300).status == FAILED
    assert "airflow triggerer" in triggerer_row(None, 300).action
    assert triggerer_row({"deferrable": True, "resumed": True, "waited_seconds": 1.2}, 300).status == OK
    assert triggerer_row({"deferrable": False, "resumed": False}, 300).status == OK


def test_a_notifier_whose_connection_is_missing_fails(monkeypatch):
    from tidb_pitr.config import ClusterConfig
    from tidb_pitr.flows.tasks.check import notifier_rows

    notifier = {"class": "airflow.providers.http.notifications.HttpNotifier",
                "args": {"http_conn_id": "check_alerts", "endpoint": "/hook"}}
    config = ClusterConfig.model_validate({
        "name": "demo1", "namespace": "test1", "api_group": "pingcap.com", "notifiers": [notifier],
        "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "secret_name": "s",
                    "conn_id": "aws"}})
    monkeypatch.delenv("AIRFLOW_CONN_CHECK_ALERTS", raising=False)
    assert [(r.name, r.status) for r in notifier_rows(config)] == [("notifier connection check_alerts", FAILED)]
    monkeypatch.setenv("AIRFLOW_CONN_CHECK_ALERTS", '{"conn_type": "http", "host": "127.0.0.1"}')
    assert [(r.name, r.status) for r in notifier_rows(config)] == [("notifier connection check_alerts", OK)]


def test_a_schedule_without_a_log_template_fails_and_its_other_hazards_warn():
    from tidb_pitr.planning.schedule import hazards

    no_log = schedule_rows("daily", hazards({"maxReservedTime": "72h"}, retention=timedelta(days=3)))
    assert [r.status for r in no_log] == [FAILED] and "no point-in-time" in no_log[0].value
    spec = {"logBackupTemplate": {"backupMode": "log"}}
    untruncated = schedule_rows("daily", hazards(spec, retention=timedelta(days=3)))
    assert [r.status for r in untruncated] == [WARNING] and "never truncates" in untruncated[0].value
    assert [r.status for r in schedule_rows("daily", [])] == [OK]


@given(st.floats(1, 1e6), st.floats(1, 1e6))
def test_the_drill_fails_when_the_gc_life_time_is_shorter_than_its_read(life, needed):
    row = drill_gc_row(life, needed, "the comparison reads ...")
    assert row.status == (FAILED if life < needed else OK)
    assert row.value.startswith("tidb_gc_life_time ")


@pytest.mark.parametrize("extra", [{}, {"compaction": True},
                                   {"managed_by": "backup_schedule", "backup_schedule": "bs"}])
def test_the_checked_dags_are_the_ones_the_factory_builds(extra):
    """`check` asks for the verbs of the DAGs a cluster has; its list must follow the factory's."""
    from tidb_pitr.config import ClusterConfig
    from tidb_pitr.factory import dags_for_cluster
    from tidb_pitr.flows.tasks.check import dag_kinds

    config = ClusterConfig.model_validate({
        "name": "demo1", "namespace": "test1", "api_group": "pingcap.com", **extra,
        "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "secret_name": "s",
                    "conn_id": "aws"}})
    built = {d.dag_id for d in dags_for_cluster(config)}
    assert built == {config.dag_id(kind) for kind in [*dag_kinds(config), "check"]}


@pytest.mark.parametrize(("waits", "watch"), [({}, 2 * 60 + 180), ({"tracker_interval": "1s",
                                                                   "log_flush_interval": "2s"}, 4)])
def test_the_check_dag_watches_the_checkpoints_for_two_tracker_polls_and_one_tikv_flush(waits, watch):
    """TiDB Operator's minute and TiKV's 3-minute flush by default; a TiKV told to flush faster, sooner."""
    from tidb_pitr.config import ClusterConfig
    from tidb_pitr.flows.check import build

    config = ClusterConfig.model_validate({
        "name": "demo1", "namespace": "test1", "api_group": "pingcap.com", "waits": waits,
        "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "secret_name": "s",
                    "conn_id": "aws"}})
    assert build(config).params["observe_seconds"] == watch


@given(keys=st.sets(st.sampled_from(["access_key", "secret_key", "region", "AZURE_STORAGE_ACCOUNT",
                                     "AZURE_STORAGE_KEY", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                                     "AZURE_TENANT_ID"])), provider=st.sampled_from(["s3", "azblob"]))
def test_a_readable_secret_fails_exactly_when_a_key_the_operator_reads_is_missing(keys, provider):
    row = secret_row(provider, "backup-secret", keys, readable=True, evidence=None)
    if provider == "s3":
        complete = {"access_key", "secret_key"} <= keys
    else:
        complete = "AZURE_STORAGE_ACCOUNT" in keys and ("AZURE_STORAGE_KEY" in keys or {
            "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"} <= keys)
    assert (row.status == OK) == complete, (keys, row)
    if not complete:
        assert row.value.startswith("Secret backup-secret lacks ")


def test_an_unreadable_secret_is_judged_by_the_operators_answer_to_the_crs_naming_it():
    failed = secret_row("s3", "s", None, readable=False, evidence=(
        "demo1-full-1", "RetryFailed", "s3KeyNotExist", "s3 secret test1/s missing some keys secret_key"))
    assert failed.status == FAILED and "missing some keys secret_key" in failed.value
    used = secret_row("s3", "s", None, readable=False, evidence=("demo1-log-backup", "Running", "", ""))
    assert used.status == OK and "demo1-log-backup" in used.value
    unknown = secret_row("s3", "s", None, readable=False, evidence=None)
    assert unknown.status == WARNING and "not checked" in unknown.value
    assert secret_row("s3", "s", None, readable=True, evidence=None).status == FAILED  # not found
    assert secret_row("s3", None, None, readable=False, evidence=None).status == OK  # pod identity
    assert secret_row("local", None, None, readable=False, evidence=None) is None


PRIVILEGES = ["SELECT", "DROP", "INSERT", "PROCESS", "BACKUP_ADMIN"]


@given(global_=st.sets(st.sampled_from(PRIVILEGES)), schema=st.sets(st.sampled_from(PRIVILEGES)),
       needed=st.sets(st.sampled_from(["SELECT", "DROP"]), min_size=1))
def test_an_account_passes_exactly_when_its_global_grants_hold_what_is_needed(global_, schema, needed):
    """TiDB's SHOW GRANTS lines: only `ON *.*` reaches every schema; a schema grant does not count."""
    lines = [f"GRANT {','.join(sorted(global_))} ON *.* TO 'u'@'%'" if global_ else "GRANT USAGE ON *.* TO 'u'@'%'"]
    if schema:
        lines.append(f"GRANT {','.join(sorted(schema))} ON `shop`.* TO 'u'@'%'")
    row = grants_row("src", lines, sorted(needed), "the drill's reads")
    assert (row.status == OK) == (needed <= global_), (lines, row)
    if row.status == FAILED:
        assert row.name == "sql grants src" and all(p in row.value for p in needed - global_)
        assert row.action.startswith("GRANT ") and "the drill's reads" in row.action


def test_root_passes_and_a_role_grant_warns():
    root = ["GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION"]
    assert grants_row("src", root, ["SELECT", "DROP"], "x").status == OK
    roles = ["GRANT USAGE ON *.* TO 'u'@'%'", "GRANT 'reader'@'%' TO 'u'@'%'"]
    assert grants_row("src", roles, ["SELECT"], "x").status == WARNING


def test_a_version_read_over_sql_is_judged_the_same_and_says_where_it_came_from():
    row = version_row("8.0.11-TiDB-v8.5.2", compaction=True, source="SELECT VERSION()")
    assert row.status == FAILED and row.value == "8.0.11-TiDB-v8.5.2 (SELECT VERSION())" and "v8.5.5" in row.action
    assert version_row("8.0.11-TiDB-v8.5.5", compaction=True, source="SELECT VERSION()").status == OK
