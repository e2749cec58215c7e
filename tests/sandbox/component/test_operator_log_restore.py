"""Log backups (sub-commands, checkpoint, truncate, error pause), restores and compaction, both groups."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import GROUPS, VERSION, advancing, azblob_storage, s3_storage, unique, wait_for, wrote_after
from .test_operator_backup import _get, _phase, _s3_keys, _snapshot, storage_checkpoint


def _log_backup(name: str, cluster: str, storage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"backupMode": "log", "br": {"cluster": cluster, "sendCredToTikv": True}, **storage, **extra},
    }


def _ckpt(obj: dict[str, Any]) -> int:
    """The CR's checkpoint; 0 until the operator's tracker has written one."""
    return int((obj.get("status") or {}).get("logCheckpointTs") or 0)


def _sub(obj: dict[str, Any], command: str) -> dict[str, Any]:
    return ((obj.get("status") or {}).get("logSubCommandStatuses") or {}).get(command) or {}


def _patch(crs: Any, group: str, ns: str, name: str, spec: dict[str, Any]) -> None:
    crs.patch_namespaced_custom_object(group, VERSION, ns, "backups", name, {"spec": spec})


def _start_log(crs: Any, group: str, ns: str, cluster: str, storage: dict[str, Any],
               wait: Callable[..., Any] = wait_for) -> tuple[str, dict]:
    name = unique("log")
    crs.create_namespaced_custom_object(
        group, VERSION, ns, "backups", _log_backup(name, cluster, storage, logSubcommand="log-start")
    )
    running = wait(
        lambda: _get(crs, group, ns, name),
        lambda o: _phase(o) == "Running" and _sub(o, "log-start").get("phase") == "Complete",
    )
    return name, running


@pytest.mark.parametrize("group", GROUPS)
def test_log_backup_lifecycle(manual_sandbox, manual_crs, new_manual_cluster, group):
    sandbox, crs, new_cluster = manual_sandbox, manual_crs, new_manual_cluster  # on the manual clock
    wait = advancing(sandbox)
    ns, cluster = new_cluster(api_group=group)
    name, running = _start_log(crs, group, ns, cluster, s3_storage(f"{cluster}/log"), wait=wait)
    status = running["status"]
    assert status["commitTs"] and status["backupPath"] == f"s3://my-bucket/{cluster}/log"
    assert [c["type"] for c in status["conditions"]] == ["Scheduled", "Prepare", "Running"]
    # log-start writes no checkpoint: it appears when the operator's tracker polls PD.
    assert "logCheckpointTs" not in status
    first = int(wait(lambda: _get(crs, group, ns, name),
                         lambda o: o["status"].get("logCheckpointTs"))["status"]["logCheckpointTs"])
    advanced = wait(lambda: _get(crs, group, ns, name), lambda o: _ckpt(o) > first)
    assert "timeSynced" in advanced["status"] if group == "pingcap.com" else "timeSynced" not in advanced["status"]
    keys = _s3_keys(sandbox, f"{cluster}/log/")
    assert f"{cluster}/log/backupmeta" in keys
    assert any("/v1/backupmeta/" in k and k.endswith(".meta") for k in keys)
    assert any("/v1/global_checkpoint/" in k for k in keys)

    _patch(crs, group, ns, name, {"logSubcommand": "log-pause"})
    paused = wait(lambda: _get(crs, group, ns, name), lambda o: _phase(o) == "Paused")
    frozen = paused["status"]["logCheckpointTs"]
    sandbox.advance(1.0)
    assert _get(crs, group, ns, name)["status"]["logCheckpointTs"] == frozen

    _patch(crs, group, ns, name, {"logSubcommand": "log-start"})
    resumed = wait(lambda: _get(crs, group, ns, name), lambda o: _phase(o) == "Running")
    assert _sub(resumed, "log-resume").get("phase") == "Complete"
    assert _sub(resumed, "log-pause").get("phase") == "Repeatable", "so that the next pause runs"
    wait(lambda: _get(crs, group, ns, name), lambda o: _ckpt(o) > int(frozen))

    _patch(crs, group, ns, name, {"logSubcommand": "log-stop"})
    stopped = wait(lambda: _get(crs, group, ns, name), lambda o: _phase(o) == "Stopped")
    assert stopped["status"]["commitTs"] == status["commitTs"]
    # Stopped is terminal: asking to start again does not start a new task on the same CR. On v1.6.5+ the
    # start counts as done (commitTs is set) and the kernel sync finds no task: the CR becomes Failed.
    _patch(crs, group, ns, name, {"logSubcommand": "log-start"})
    if group == "pingcap.com":
        # The operator notices on its next kernel sync (resync_interval): slower on a loaded machine.
        failed = wait(lambda: _get(crs, group, ns, name), lambda o: _phase(o) == "Failed", timeout=90)
        assert failed["status"]["conditions"][-1]["reason"] == "LogBackupTaskNotFound"
    else:
        sandbox.advance(1.0)
        assert _phase(_get(crs, group, ns, name)) == "Stopped"


def test_legacy_log_stop_field(crs, new_cluster):
    ns, cluster = new_cluster()
    name = unique("log")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _log_backup(name, cluster, s3_storage(f"{cluster}/log"))
    )
    wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Running")
    _patch(crs, "pingcap.com", ns, name, {"logStop": True})
    wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Stopped")


def test_v2_controller_rejects_log_resume(manual_sandbox, manual_crs, new_manual_cluster):
    sandbox, crs, new_cluster = manual_sandbox, manual_crs, new_manual_cluster  # on the manual clock
    ns, cluster = new_cluster(api_group="br.pingcap.com")
    name = unique("log")
    crs.create_namespaced_custom_object(
        "br.pingcap.com",
        VERSION,
        ns,
        "backups",
        _log_backup(name, cluster, s3_storage(f"{cluster}/log"), logSubcommand="log-resume"),
    )
    # The controller records RetryFailed on a `log-unknown` sub-command with the error text as its reason,
    # which v2's CRD refuses (reason must be CamelCase): the update fails, and the CR never gets a status.
    sandbox.advance(3)
    obj = _get(crs, "br.pingcap.com", ns, name)
    assert not obj.get("status"), obj.get("status")


def test_one_log_task_per_cluster(crs, new_cluster):
    ns, cluster = new_cluster()
    _start_log(crs, "pingcap.com", ns, cluster, s3_storage(f"{cluster}/log"))
    second = unique("log")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _log_backup(second, cluster, s3_storage(f"{cluster}/log2"))
    )
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, second), lambda o: _phase(o) == "Failed")
    assert "ErrStreamLogTaskExist" in done["status"]["conditions"][-1]["message"]


@pytest.mark.parametrize("group,storage", [("pingcap.com", "s3"), ("br.pingcap.com", "azblob")])
def test_truncate_confirmation_and_skip(sandbox, crs, new_cluster, group, storage):
    ns, cluster = new_cluster(api_group=group)
    store = s3_storage(f"{cluster}/log") if storage == "s3" else azblob_storage(f"{cluster}/log")
    name, running = _start_log(crs, group, ns, cluster, store)
    start_ts = int(running["status"]["commitTs"])
    wait_for(
        lambda: _get(crs, group, ns, name),
        lambda o: _ckpt(o) > start_ts + (2 << 18) * 1000,
    )
    until = str(int(_get(crs, group, ns, name)["status"]["logCheckpointTs"]) - (1 << 18) * 500)
    _patch(crs, group, ns, name, {"logTruncateUntil": until})
    done = wait_for(
        lambda: _get(crs, group, ns, name),
        lambda o: (
            _sub(o, "log-truncate").get("phase") == "Complete"
            and _sub(o, "log-truncate").get("logTruncatingUntil") == until
        ),
    )
    assert done["status"]["logSuccessTruncateUntil"] == until
    assert _phase(done) == "Running", "a truncate does not change the whole phase"
    # A value not beyond the last truncate is skipped: confirmed without running BR.
    lower = str(start_ts + 1)
    _patch(crs, group, ns, name, {"logTruncateUntil": lower})
    skipped = wait_for(
        lambda: _get(crs, group, ns, name),
        lambda o: (
            _sub(o, "log-truncate").get("logTruncatingUntil") == lower
            and _sub(o, "log-truncate").get("phase") == "Complete"
        ),
    )
    assert skipped["status"]["logSuccessTruncateUntil"] == until


def test_truncate_without_timezone_fails_in_br(crs, new_cluster):
    ns, cluster = new_cluster()
    name, _ = _start_log(crs, "pingcap.com", ns, cluster, s3_storage(f"{cluster}/log"))
    _patch(crs, "pingcap.com", ns, name, {"logTruncateUntil": "2099-10-10 15:21:00"})
    done = wait_for(
        lambda: _get(crs, "pingcap.com", ns, name), lambda o: _sub(o, "log-truncate").get("phase") == "Failed"
    )
    assert "must set timezone" in _sub(done, "log-truncate")["conditions"][-1]["message"]


def test_error_pause_v1_and_frozen_checkpoint(manual_sandbox, manual_crs, new_manual_cluster):
    sandbox, crs, new_cluster = manual_sandbox, manual_crs, new_manual_cluster  # on the manual clock
    wait = advancing(sandbox)
    ns, cluster = new_cluster()
    name, _ = _start_log(crs, "pingcap.com", ns, cluster, s3_storage(f"{cluster}/log"), wait=wait)
    sandbox.set_faults(log_error_pause="[BR:KV:ErrKVStorage] injected disk full", log_error_pause_target=f"{ns}/{name}")
    try:
        paused = wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "RetryFailed")
    finally:
        sandbox.set_faults(log_error_pause=None)
    cond = paused["status"]["conditions"][-1]
    assert cond["reason"] == "LogBackupErrorPaused"
    assert cond["message"].startswith("Log backup paused due to error: Paused by error(store 1)")
    # Written on the current sub-command, log-start: its entry is RetryFailed too.
    assert _sub(paused, "log-start")["phase"] == "RetryFailed"
    # Recovery: pause, then start again (resume). The kernel state is cached for a tracker interval, so a
    # pause that completes sooner can be overwritten by the cached error, then redone: wait it out first.
    _patch(crs, "pingcap.com", ns, name, {"logSubcommand": "log-pause"})
    wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Paused")
    sandbox.advance(2.0)
    wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Paused")
    _patch(crs, "pingcap.com", ns, name, {"logSubcommand": "log-start"})
    running = wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Running")
    # Running again, yet nothing resets the log-start entry.
    assert _sub(running, "log-start")["phase"] == "RetryFailed"
    before = int(running["status"].get("logCheckpointTs") or 0)
    wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _ckpt(o) > before)

    sandbox.set_faults(freeze_checkpoint=True)
    try:
        sandbox.advance(0.8)
        frozen = _get(crs, "pingcap.com", ns, name)["status"]["logCheckpointTs"]
        sandbox.advance(1.2)
        assert _get(crs, "pingcap.com", ns, name)["status"]["logCheckpointTs"] == frozen
    finally:
        sandbox.set_faults(freeze_checkpoint=False)


@pytest.mark.parametrize("group,storage", [("pingcap.com", "s3"), ("br.pingcap.com", "azblob")])
def test_pitr_restore_equals_source_at_t(sandbox, crs, new_cluster, group, storage):
    ns, cluster = new_cluster(api_group=group)
    make = s3_storage if storage == "s3" else azblob_storage
    log_name, _ = _start_log(crs, group, ns, cluster, make(f"{cluster}/log"))
    snap = unique("snap")
    crs.create_namespaced_custom_object(
        group, VERSION, ns, "backups", _snapshot(snap, cluster, make(f"{cluster}/{snap}"))
    )
    commit_ts = int(
        wait_for(lambda: _get(crs, group, ns, snap), lambda o: _phase(o) == "Complete")["status"]["commitTs"]
    )
    wait_for(lambda: sandbox, lambda sb: wrote_after(sb, ns, cluster, commit_ts, 1.5))  # the workload writes on
    checkpoint = int(
        wait_for(lambda: _get(crs, group, ns, log_name), lambda o: _ckpt(o) > commit_ts)[
            "status"
        ]["logCheckpointTs"]
    )
    target_ts = random.Random(commit_ts).randint(commit_ts, checkpoint)
    # BR checks the global checkpoint in storage, which trails the CR's: wait until it has passed T too.
    wait_for(lambda: None, lambda _: storage_checkpoint(sandbox, storage, f"{cluster}/log") >= target_ts)
    source = sandbox.rows(ns, cluster, target_ts)
    assert source["count"] > 0

    target = unique("target")
    sandbox.create_cluster(ns, target, api_group=group)
    restore = unique("restore")
    body = {
        "metadata": {"name": restore},
        "spec": {
            "restoreMode": "pitr",
            "br": {"cluster": target},
            "pitrRestoredTs": str(target_ts),
            "pitrFullBackupStorageProvider": make(f"{cluster}/{snap}"),
            **make(f"{cluster}/log"),
        },
    }
    crs.create_namespaced_custom_object(group, VERSION, ns, "restores", body)
    done = wait_for(lambda: _get(crs, group, ns, restore, "restores"), lambda o: _phase(o) in ("Complete", "Failed"))
    assert _phase(done) == "Complete", done["status"]
    restored = sandbox.rows(ns, target)
    assert restored["digest"] == source["digest"] and restored["count"] == source["count"]

    # A second restore into the now non-empty target is refused as BR refuses it.
    again = unique("restore")
    crs.create_namespaced_custom_object(group, VERSION, ns, "restores", {**body, "metadata": {"name": again}})
    refused = wait_for(lambda: _get(crs, group, ns, again, "restores"), lambda o: _phase(o) == "Failed")
    assert "ErrDatabasesAlreadyExisted" in refused["status"]["conditions"][-1]["message"]


def test_restore_past_checkpoint_is_refused(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    log_name, _ = _start_log(crs, "pingcap.com", ns, cluster, s3_storage(f"{cluster}/log"))
    snap = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _snapshot(snap, cluster, s3_storage(f"{cluster}/{snap}"))
    )
    wait_for(lambda: _get(crs, "pingcap.com", ns, snap), lambda o: _phase(o) == "Complete")
    target = unique("target")
    sandbox.create_cluster(ns, target)
    restore = unique("restore")
    future = str(sandbox.tso() + (3600_000 << 18))
    crs.create_namespaced_custom_object(
        "pingcap.com",
        VERSION,
        ns,
        "restores",
        {
            "metadata": {"name": restore},
            "spec": {
                "restoreMode": "pitr",
                "br": {"cluster": target},
                "pitrRestoredTs": future,
                "pitrFullBackupStorageProvider": s3_storage(f"{cluster}/{snap}"),
                **s3_storage(f"{cluster}/log"),
            },
        },
    )
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, restore, "restores"), lambda o: _phase(o) == "Failed")
    assert "but the current existed log from" in done["status"]["conditions"][-1]["message"]
    assert sandbox.rows(ns, target)["count"] == 0, "a failed restore leaves the target untouched"


@pytest.mark.parametrize("group", GROUPS)
def test_snapshot_restore_and_compaction(manual_sandbox, manual_crs, new_manual_cluster, group):
    sandbox, crs, new_cluster = manual_sandbox, manual_crs, new_manual_cluster  # on the manual clock
    wait = advancing(sandbox)
    ns, cluster = new_cluster(api_group=group)
    log_name, running = _start_log(crs, group, ns, cluster, s3_storage(f"{cluster}/log"), wait=wait)
    snap = unique("snap")
    crs.create_namespaced_custom_object(
        group, VERSION, ns, "backups", _snapshot(snap, cluster, s3_storage(f"{cluster}/{snap}"))
    )
    commit_ts = int(
        wait(lambda: _get(crs, group, ns, snap), lambda o: _phase(o) == "Complete")["status"]["commitTs"]
    )
    target = unique("target")
    sandbox.create_cluster(ns, target, api_group=group)
    restore = unique("restore")
    crs.create_namespaced_custom_object(
        group,
        VERSION,
        ns,
        "restores",
        {"metadata": {"name": restore}, "spec": {"br": {"cluster": target}, **s3_storage(f"{cluster}/{snap}")}},
    )
    done = wait(lambda: _get(crs, group, ns, restore, "restores"), lambda o: _phase(o) in ("Complete", "Failed"))
    assert _phase(done) == "Complete" and done["status"]["commitTs"] == str(commit_ts)
    assert sandbox.rows(ns, target)["digest"] == sandbox.rows(ns, cluster, commit_ts)["digest"]

    checkpoint = int(
        wait(lambda: _get(crs, group, ns, log_name), lambda o: _ckpt(o) > commit_ts)[
            "status"
        ]["logCheckpointTs"]
    )
    compact = unique("compact")
    crs.create_namespaced_custom_object(
        group,
        VERSION,
        ns,
        "compactbackups",
        {
            "metadata": {"name": compact},
            "spec": {
                "startTs": running["status"]["commitTs"],
                "endTs": str(checkpoint),
                "concurrency": 4,
                "br": {"cluster": cluster},
                **s3_storage(f"{cluster}/log"),
            },
        },
    )
    if group == "br.pingcap.com":
        # TiDB Operator v2 has no CompactBackup controller: nothing ever acts on it.
        sandbox.advance(3)
        assert not _get(crs, group, ns, compact, "compactbackups").get("status")
        return
    cp = wait(
        lambda: _get(crs, group, ns, compact, "compactbackups"),
        lambda o: (o.get("status") or {}).get("state") in ("Complete", "Failed"),
    )
    assert cp["status"]["state"] == "Complete", cp["status"]
    assert cp["status"]["progress"].startswith("[READ_META(")


def test_a_stalled_checkpoint_upload_stops_storages_checkpoint_while_the_crs_goes_on(manual_sandbox, manual_crs,
                                                                                       new_manual_cluster):
    """Fault `stall_storage_checkpoint`: TiKV cannot write `v1/global_checkpoint/*.ts`; PD's checkpoint (the CR's)
    rises all the same, and storage's catches up once the fault is cleared."""
    sandbox, crs = manual_sandbox, manual_crs
    wait = advancing(sandbox)
    ns, cluster = new_manual_cluster()
    prefix = f"{cluster}/log"
    name, _ = _start_log(crs, "pingcap.com", ns, cluster, s3_storage(prefix), wait=wait)
    wait(lambda: storage_checkpoint(sandbox, "s3", prefix), lambda ts: ts > 0)
    sandbox.set_faults(stall_storage_checkpoint=f"{ns}/{cluster}")
    try:
        stalled = storage_checkpoint(sandbox, "s3", prefix)
        sandbox.advance(3.0)
        cr = _ckpt(_get(crs, "pingcap.com", ns, name))
        assert storage_checkpoint(sandbox, "s3", prefix) == stalled
        assert (cr >> 18) - (stalled >> 18) >= 2000  # the CR's moved on by 2 s and more
    finally:
        sandbox.set_faults(stall_storage_checkpoint=None)
    wait(lambda: storage_checkpoint(sandbox, "s3", prefix), lambda ts: ts >= cr)
