from datetime import UTC, datetime

from tidb_pitr.cr.api import V1_GROUP, V2_GROUP
from tidb_pitr.cr.model import BackupView, CompactView, RestoreView, State, storage_url
from tidb_pitr.tso import parse_user_time

from .crs import backup_cr


def seed_log_backup() -> dict:
    """The v1 log backup status from the TiDB Operator docs (`kubectl describe backup`), as JSON."""
    return {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
        "metadata": {"name": "demo1-log-backup-s3", "namespace": "test1",
                     "creationTimestamp": "2022-10-10T04:45:19Z"},
        "spec": {"backupMode": "log", "logSubcommand": "log-start",
                 "br": {"cluster": "demo1", "sendCredToTikv": True},
                 "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1",
                        "bucket": "my-bucket", "prefix": "my-log-backup-folder"}},
        "status": {
            "backupPath": "s3://my-bucket/my-log-backup-folder/",
            "commitTs": "436568622965194754",
            "conditions": [
                {"lastTransitionTime": "2022-10-10T04:45:20Z", "status": "True", "type": "Scheduled"},
                {"lastTransitionTime": "2022-10-10T04:45:31Z", "status": "True", "type": "Prepare"},
                {"lastTransitionTime": "2022-10-10T04:45:31Z", "status": "True", "type": "Running"},
            ],
            "logCheckpointTs": "436569119308644661",
            "phase": "Running",
        },
    }


def test_seed_log_backup():
    view = BackupView.from_cr(seed_log_backup())
    assert (view.name, view.namespace, view.group, view.mode) == ("demo1-log-backup-s3", "test1", V1_GROUP, "log")
    assert view.phase == "Running" and view.state == State.RUNNING and not view.error_paused
    assert view.commit_ts == 436568622965194754
    assert view.checkpoint_ts == 436569119308644661
    assert view.log_min_ts == 436568622965194754
    assert view.cluster == "demo1" and view.cluster_namespace == "test1"
    assert view.storage == {"s3": seed_log_backup()["spec"]["s3"]}
    assert view.storage_url == view.backup_path == "s3://my-bucket/my-log-backup-folder/"
    assert view.prefix == "my-log-backup-folder"
    assert view.clean_policy == "Retain"
    assert view.created == datetime(2022, 10, 10, 4, 45, 19, tzinfo=UTC)
    assert view.time_started is None and not view.deleting
    assert view.log_subcommand == "log-start" and view.truncate_until is None and view.truncated_until is None
    assert view.message == "" and view.sub_statuses == {}


def test_v2_complete_snapshot_with_metav1_conditions():
    obj = {
        "apiVersion": "br.pingcap.com/v1alpha1", "kind": "Backup",
        "metadata": {"name": "snapshot-20261121000000", "namespace": "tidb-admin",
                     "creationTimestamp": "2026-11-21T00:00:00Z"},
        "spec": {"backupType": "full", "backupMode": "snapshot", "cleanPolicy": "Delete",
                 "br": {"cluster": "basic", "clusterNamespace": "tidb"},
                 "azblob": {"container": "backups", "prefix": "/basic/snapshot-20261121000000/",
                            "secretName": "azblob-secret"}},
        "status": {
            "phase": "Complete", "commitTs": "436568622965194754", "backupSize": 1073741824,
            "backupSizeReadable": "1.1 GB", "backupPath": "azure://backups/basic/snapshot-20261121000000/",
            "timeStarted": "2026-11-21T00:00:05Z", "timeCompleted": "2026-11-21T00:20:05Z", "timeTaken": "20m0s",
            "conditions": [
                {"type": "Scheduled", "status": "True", "reason": "Scheduled", "message": "",
                 "lastTransitionTime": "2026-11-21T00:00:01Z", "observedGeneration": 1},
                {"type": "Prepare", "status": "True", "reason": "Prepare", "message": "",
                 "lastTransitionTime": "2026-11-21T00:00:04Z", "observedGeneration": 1},
                {"type": "Running", "status": "True", "reason": "Running", "message": "",
                 "lastTransitionTime": "2026-11-21T00:00:05Z", "observedGeneration": 1},
                {"type": "Complete", "status": "True", "reason": "BackupComplete", "message": "backup succeeded",
                 "lastTransitionTime": "2026-11-21T00:20:05Z", "observedGeneration": 1},
            ],
        },
    }
    view = BackupView.from_cr(obj)
    assert view.group == V2_GROUP and view.mode == "snapshot"
    assert view.state == State.COMPLETE and view.state.terminal
    assert (view.reason, view.message) == ("BackupComplete", "backup succeeded")
    assert view.backup_size == 1073741824 and view.commit_ts == 436568622965194754
    assert view.cluster_namespace == "tidb" and view.clean_policy == "Delete"
    assert view.storage_url == "azure://backups/basic/snapshot-20261121000000/"
    assert view.time_completed - view.time_started == datetime(2000, 1, 1, 0, 20) - datetime(2000, 1, 1)
    assert view.checkpoint_ts is None


def test_error_paused_log_backup():
    message = "Log backup paused due to error: Paused by error(store 1): disk full"
    view = BackupView.from_cr(backup_cr("log", mode="log", phase="RetryFailed", commit_ts=436568622965194754,
                                        checkpoint_ts=436569119308644661, reason="LogBackupErrorPaused",
                                        message=message))
    assert view.state == State.PAUSED and view.error_paused
    assert (view.reason, view.message) == ("LogBackupErrorPaused", message)


def test_other_retry_failed():
    snap = BackupView.from_cr(backup_cr("s", phase="RetryFailed", reason="RetryFailedBackup", message="pod evicted"))
    assert snap.state == State.RUNNING and not snap.error_paused
    log = BackupView.from_cr(backup_cr("l", mode="log", phase="RetryFailed", message="create job failed"))
    assert log.state == State.RUNNING and not log.error_paused and log.message == "create job failed"


def test_log_phases():
    for phase, state in [("Running", State.RUNNING), ("Paused", State.PAUSED), ("Stopped", State.STOPPED),
                         ("Failed", State.FAILED), ("Scheduled", State.PENDING), ("Prepare", State.PENDING),
                         ("", State.PENDING)]:
        assert BackupView.from_cr(backup_cr("l", mode="log", phase=phase)).state == state, phase


def test_snapshot_phases():
    for phase, state in [("Complete", State.COMPLETE), ("Failed", State.FAILED), ("Invalid", State.INVALID),
                         ("Running", State.RUNNING), ("Scheduled", State.PENDING), ("", State.PENDING)]:
        assert BackupView.from_cr(backup_cr("s", phase=phase)).state == state, phase
    assert BackupView.from_cr({"metadata": {"name": "bare"}}).state == State.PENDING


def test_invalid_spec():
    view = BackupView.from_cr(backup_cr("bad", phase="Invalid", reason="InvalidSpec",
                                        message="invalid backup spec: missing cluster config in spec"))
    assert view.state == State.INVALID and view.reason == "InvalidSpec"
    assert view.message == "invalid backup spec: missing cluster config in spec"


def test_message_falls_back_to_last_condition_with_one():
    obj = backup_cr("s", phase="Running")
    obj["status"]["conditions"][0]["message"] = "job created"
    assert BackupView.from_cr(obj).message == "job created"


def test_clean_phase_while_deleting_keeps_the_life_cycle_state():
    obj = backup_cr("s", commit_ts=436568622965194754, deleting=True)
    obj["status"]["conditions"].append({"type": "Clean", "status": "True",
                                        "lastTransitionTime": "2030-01-01T00:00:00Z"})
    obj["status"]["phase"] = "Clean"
    view = BackupView.from_cr(obj)
    assert view.deleting and view.phase == "Clean" and view.state == State.COMPLETE


def _truncating(phase: str, until: str, success: str | None, message: str = "") -> BackupView:
    conditions = [{"type": phase, "status": "True", "lastTransitionTime": "2026-11-21T00:00:00Z"}]
    if message:
        conditions[0]["message"] = message
    subs = {"log-start": {"command": "log-start", "phase": "Complete"},
            "log-truncate": {"command": "log-truncate", "phase": phase, "logTruncatingUntil": until,
                             "conditions": conditions}}
    return BackupView.from_cr(backup_cr("log", mode="log", phase="Running", commit_ts=436568622965194754,
                                        checkpoint_ts=436569119308644661, truncated_until=success,
                                        spec={"logTruncateUntil": until}, sub_statuses=subs))


def test_truncate_done():
    view = _truncating("Complete", "436569000000000000", "436569000000000000")
    assert view.truncate_result("436569000000000000")[0] == "done"
    assert view.truncated_until == 436569000000000000
    assert view.truncate_until == "436569000000000000"


def test_truncate_skip_case_is_done():
    # Until is before the log start: the operator skips BR, marks the sub-command Complete and leaves
    # logSuccessTruncateUntil where it was.
    view = _truncating("Complete", "436568000000000000", None)
    assert view.truncated_until is None
    assert view.truncate_result("436568000000000000")[0] == "done"


def test_truncate_failed_and_pending():
    failed = _truncating("Failed", "436569000000000000", None, message="truncating.lock exists")
    result, message = failed.truncate_result("436569000000000000")
    assert result == "failed" and "truncating.lock exists" in message
    assert _truncating("Running", "436569000000000000", None).truncate_result("436569000000000000")[0] == "pending"
    # An older truncate's Complete does not count for a new value.
    old = _truncating("Complete", "436568900000000000", "436568900000000000")
    assert old.truncate_result("436569000000000000")[0] == "pending"


def test_truncated_until_written_as_a_date():
    view = _truncating("Complete", "2022-10-10T15:21:00+08:00", "2022-10-10T15:21:00+08:00")
    assert view.truncated_until == parse_user_time("2022-10-10T15:21:00+08:00")
    assert view.truncate_result("2022-10-10T15:21:00+08:00")[0] == "done"
    legacy = _truncating("Complete", "x", "2022-10-10 07:21:00")
    assert legacy.truncated_until == parse_user_time("2022-10-10T07:21:00Z")
    assert _truncating("Complete", "x", "garbage").truncated_until is None
    assert _truncating("Complete", "x", "2022-10-10 07:21:00").sub_statuses["log-truncate"].phase == "Complete"


def test_storage_urls():
    assert storage_url({"s3": {"bucket": "b", "prefix": "a/b/"}}) == "s3://b/a/b/"
    assert storage_url({"s3": {"bucket": "b"}}) == "s3://b/"
    assert storage_url({"gcs": {"bucket": "g", "prefix": "p"}}) == "gcs://g/p/"
    assert storage_url({"azblob": {"container": "c", "prefix": "p"}}) == "azure://c/p/"
    assert storage_url({"local": {"volumeMount": {"mountPath": "/backup/"}, "prefix": "p"}}) == "local:///backup/p/"
    assert storage_url({}) is None
    # The operator takes the first provider in its own order.
    view = BackupView.from_cr({"spec": {"local": {"prefix": "x"}, "s3": {"bucket": "b", "prefix": "y"}}})
    assert list(view.storage) == ["s3"] and view.storage_url == "s3://b/y/"


def test_restore_view():
    obj = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Restore",
        "metadata": {"name": "pitr-basic-restore-20261121-053000", "namespace": "tidb-restore"},
        "spec": {"restoreMode": "pitr", "pitrRestoredTs": "436568622965194754",
                 "br": {"cluster": "basic-restore"}, "s3": {"provider": "aws", "bucket": "b", "prefix": "log"},
                 "pitrFullBackupStorageProvider": {"s3": {"provider": "aws", "bucket": "b", "prefix": "snap"}}},
        "status": {"phase": "Complete", "commitTs": "0", "timeStarted": "2026-11-21T06:00:00Z",
                   "timeCompleted": "2026-11-21T07:00:00Z",
                   "progresses": [
                       {"step": "Full Restore", "progress": 100, "lastTransitionTime": "2026-11-21T06:30:00Z"},
                       {"step": "Restore KV Files", "progress": 42.5}],
                   "conditions": [{"type": "Scheduled", "status": "True"}, {"type": "Running", "status": "True"},
                                  {"type": "Complete", "status": "True"}]},
    }
    view = RestoreView.from_cr(obj)
    assert view.mode == "pitr" and view.state == State.COMPLETE
    assert view.pitr_restored_ts == "436568622965194754" and view.restored_ts == 436568622965194754
    assert view.commit_ts is None  # "0" in pitr mode means nothing
    assert view.cluster == "basic-restore" and view.cluster_namespace == "tidb-restore"
    assert view.storage_url == "s3://b/log/" and view.full_backup_storage == {"s3": {"provider": "aws", "bucket": "b",
                                                                                     "prefix": "snap"}}
    assert [p.step for p in view.progresses] == ["Full Restore", "Restore KV Files"]
    assert view.progresses[1].progress == 42.5
    for phase, state in [("Scheduled", State.PENDING), ("Running", State.RUNNING), ("RetryFailed", State.RUNNING),
                         ("Failed", State.FAILED), ("Invalid", State.INVALID), ("PruneComplete", State.FAILED),
                         ("LogRestore", State.RUNNING)]:
        obj["status"]["phase"] = phase
        assert RestoreView.from_cr(obj).state == state, phase


def test_compact_view():
    obj = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "CompactBackup",
        "metadata": {"name": "compact-1", "namespace": "tidb"},
        "spec": {"startTs": "436568622965194754", "endTs": "2022-10-10 07:21:00", "concurrency": 4,
                 "br": {"cluster": "basic", "clusterNamespace": "tidb"}, "s3": {"bucket": "b", "prefix": "log"}},
        "status": {"state": "Complete", "progress": "[READ_META(17/17),COMPACT_WORK(1291/1291)]",
                   "message": "", "endTs": "436569119308644661"},
    }
    view = CompactView.from_cr(obj)
    assert view.state == State.COMPLETE and view.phase == "Complete"
    assert view.progress_steps() == {"READ_META": (17, 17), "COMPACT_WORK": (1291, 1291)}
    assert view.start_ts == 436568622965194754
    assert view.end_ts == parse_user_time("2022-10-10T07:21:00Z")
    assert view.status_end_ts == 436569119308644661
    assert view.storage_url == "s3://b/log/"
    for state, expected in [("", State.PENDING), ("Scheduled", State.PENDING), ("Prepare", State.PENDING),
                            ("Running", State.RUNNING), ("RetryFailed", State.RUNNING), ("Failed", State.FAILED)]:
        obj["status"]["state"] = state
        assert CompactView.from_cr(obj).state == expected


def test_views_tolerate_junk():
    junk = {"metadata": "x", "spec": {"br": None, "s3": "y"}, "status": {"conditions": [1, None, {"type": 3}],
                                                                      "commitTs": "abc", "backupSize": "12"}}
    view = BackupView.from_cr(junk)
    assert view.state == State.PENDING and view.commit_ts is None and view.backup_size == 12
    assert view.storage == {} and view.storage_url is None
    RestoreView.from_cr(junk)
    CompactView.from_cr(junk)
