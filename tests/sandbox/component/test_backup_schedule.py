"""The simulated v1 BackupSchedule controller against upstream's behaviour (release-1.6
`pkg/backup/backupschedule/backup_schedule_manager.go`), through the real kubernetes client.

Backups a schedule "made earlier" are created here with the schedule's labels, which is all its GC selects
them by; `status.lastBackupTime` set in the past makes the next cron time due now, as after a pause.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException
from tidb_sandbox.k8s.table import parse_time

from .conftest import VERSION, s3_storage, unique, wait_for

V1 = "pingcap.com"
SEEDS = Path(__file__).parent / "seed_examples"
SCHEDULE_SEEDS = sorted(SEEDS.glob("*-backupschedule-*.yaml"))
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
          "tidb.pingcap.com/backup-schedule")
NEVER = "0 0 1 1 *"  # once a year: no cron run during a test


def _labels(schedule: str) -> dict[str, str]:
    return dict(zip(LABELS, ("backup-schedule", "backup-schedule-operator", schedule, schedule), strict=True))


def _get(crs: Any, ns: str, name: str, plural: str = "backups", group: str = V1) -> dict[str, Any] | None:
    try:
        return crs.get_namespaced_custom_object(group, VERSION, ns, plural, name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _backups(crs: Any, ns: str) -> dict[str, dict[str, Any]]:
    items = crs.list_namespaced_custom_object(V1, VERSION, ns, "backups")["items"]
    return {o["metadata"]["name"]: o for o in items}


def _schedule(name: str, cluster: str, root: str, *, cron: str = NEVER, log: bool = True,
              **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schedule": cron, "backupTemplate": {
        "backupType": "full", "br": {"cluster": cluster}, **s3_storage(f"{root}/snapshots")}, **spec}
    if log:
        body["logBackupTemplate"] = {"backupMode": "log", "br": {"cluster": cluster}, **s3_storage(f"{root}/log")}
    return {"apiVersion": f"{V1}/{VERSION}", "kind": "BackupSchedule", "metadata": {"name": name}, "spec": body}


def _past(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _a_second_after(obj: dict[str, Any]) -> None:
    """Wait until a CR created now is newer than `obj`. creationTimestamp has whole seconds and upstream's GC
    sorts by it alone (`byCreateTimeDesc`, an unstable sort): two CRs of one second are kept in no set order.
    Real schedule runs are minutes apart; a test that makes them back to back must not tie them."""
    newer = parse_time(obj["metadata"]["creationTimestamp"]) + timedelta(seconds=1)
    wait_for(lambda: datetime.now(UTC), lambda now: now >= newer, timeout=5, interval=0.05)


def _earlier_run(crs: Any, ns: str, schedule: str, cluster: str, name: str,
                 after: dict[str, Any] | None = None) -> dict[str, Any]:
    """A snapshot Backup as the schedule would have made it, run to Complete by the simulated operator; created
    a second after `after`, when given, so that the GC's order between them is defined."""
    if after is not None:
        _a_second_after(after)
    body = {"metadata": {"name": name, "labels": _labels(schedule)},
            "spec": {"backupType": "full", "br": {"cluster": cluster}, **s3_storage(f"{cluster}/sched/{name}")}}
    crs.create_namespaced_custom_object(V1, VERSION, ns, "backups", body)
    return wait_for(lambda: _get(crs, ns, name), lambda o: (o.get("status") or {}).get("phase") == "Complete",
                    timeout=60)


def _running_log(crs: Any, ns: str, name: str) -> dict[str, Any]:
    return wait_for(lambda: _get(crs, ns, name), lambda o: o is not None and (o.get("status") or {}).get(
        "logCheckpointTs") not in (None, "", "0"), timeout=60)


def test_schedule_makes_its_log_backup_and_cron_backups_as_upstream_names_them(crs, new_cluster):
    ns, cluster = new_cluster()
    name = unique("bs")
    crs.create_namespaced_custom_object(V1, VERSION, ns, "backupschedules",
                                        _schedule(name, cluster, cluster, cron="* * * * *", maxReservedTime="3h"))
    bs = wait_for(lambda: _get(crs, ns, name, "backupschedules"),
                  lambda o: bool((o.get("status") or {}).get("logBackup")))
    assert bs["status"]["logBackup"] == f"log-{name}" and bs["status"]["logBackupStartTs"]
    log_cr = _running_log(crs, ns, f"log-{name}")
    assert log_cr["metadata"]["labels"] == _labels(name)
    assert log_cr["metadata"]["ownerReferences"][0]["kind"] == "BackupSchedule"
    stamp = datetime.strptime(bs["status"]["logBackupStartTs"], "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%dt%H-%M-%S")
    assert log_cr["spec"]["s3"]["prefix"] == f"{cluster}/log/log-{stamp}"
    # As if the schedule had last run three minutes ago: the next cron time is due, one Backup is made now.
    crs.patch_namespaced_custom_object(V1, VERSION, ns, "backupschedules", name,
                                       {"status": {"lastBackupTime": _past(180)}})
    bs = wait_for(lambda: _get(crs, ns, name, "backupschedules"),
                  lambda o: (o.get("status") or {}).get("lastBackup", "").startswith(name + "-"), timeout=30)
    last = bs["status"]["lastBackup"]
    stamp = last[len(name) + 1:]
    assert datetime.strptime(stamp, "%Y-%m-%dt%H-%M-%S")
    snap = wait_for(lambda: _get(crs, ns, last), lambda o: (o.get("status") or {}).get("phase") == "Complete",
                    timeout=60)
    assert snap["spec"]["s3"]["prefix"] == f"{cluster}/snapshots/{cluster}-pd.{ns}-2379-{stamp}"
    assert snap["metadata"]["labels"] == _labels(name)
    assert [n for n in _backups(crs, ns) if n.startswith(name)] == [last]  # one run per due time


def test_max_reserved_time_keeps_the_newest_expired_snapshot_and_truncates_the_log_to_it(crs, new_cluster):
    """#6068: the log is truncated by maxReservedTime alone, to the newest snapshot older than it."""
    ns, cluster = new_cluster()
    name = unique("bs")
    crs.create_namespaced_custom_object(V1, VERSION, ns, "backupschedules",
                                        _schedule(name, cluster, cluster, maxReservedTime="4s"))
    log_name = f"log-{name}"
    log_cr = _running_log(crs, ns, log_name)
    first = _earlier_run(crs, ns, name, cluster, f"{name}-a", after=log_cr)
    second = _earlier_run(crs, ns, name, cluster, f"{name}-b", after=first)
    wait_for(lambda: _get(crs, ns, first["metadata"]["name"]), lambda o: o is None, timeout=60)
    log_cr = wait_for(lambda: _get(crs, ns, log_name),
                      lambda o: (o.get("spec") or {}).get("logTruncateUntil") == second["status"]["commitTs"],
                      timeout=30)
    assert log_cr is not None
    assert _get(crs, ns, second["metadata"]["name"]) is not None  # the newest expired one stays as the base


def test_max_backups_counts_the_log_backup_and_deletes_it(crs, new_cluster):
    """#6320: with maxBackups the log backup CR is one of the backups; the oldest goes first."""
    ns, cluster = new_cluster()
    name = unique("bs")
    crs.create_namespaced_custom_object(V1, VERSION, ns, "backupschedules",
                                        _schedule(name, cluster, cluster, maxBackups=1))
    log_name = f"log-{name}"
    log_cr = _running_log(crs, ns, log_name)
    kept = _earlier_run(crs, ns, name, cluster, f"{name}-a", after=log_cr)
    wait_for(lambda: _get(crs, ns, log_name), lambda o: o is None, timeout=60)
    assert _get(crs, ns, kept["metadata"]["name"]) is not None
    # From now on every Sync stops at "log backup ... not found": no Backup is made even when one is due.
    crs.patch_namespaced_custom_object(V1, VERSION, ns, "backupschedules", name,
                                       {"status": {"lastBackupTime": _past(180)}})
    other = _earlier_run(crs, ns, name, cluster, f"{name}-b", after=kept)  # takes several resyncs of the schedule
    wait_for(lambda: sorted(n for n in _backups(crs, ns) if n.startswith(name)),
             lambda names: names == [other["metadata"]["name"]], timeout=30)  # maxBackups: 1 again
    status = _get(crs, ns, name, "backupschedules")["status"]
    assert status["logBackup"] == log_name and not status.get("lastBackup")


def _seed_vector(path: Path, ns: str, cluster: str) -> dict[str, Any]:
    text = path.read_text()
    for key, value in {"${tidb_host}": f"{cluster}-tidb.{ns}", "${tidb_port}": "4000", "${tidb_user}": "root",
                       "${region}": "us-west-1", "${bucket}": "my-bucket", "${endpoint}": "http://127.0.0.1:9"}.items():
        text = text.replace(key, value)
    doc = next(d for d in yaml.safe_load_all(text) if d)
    doc["metadata"]["name"] = f"{doc['metadata']['name']}-{path.name[:2]}"
    doc["metadata"]["namespace"] = ns
    for template in ("backupTemplate", "logBackupTemplate", "compactBackupTemplate"):
        if (doc["spec"].get(template) or {}).get("br"):
            doc["spec"][template]["br"]["cluster"] = cluster
    return doc


def test_every_seed_schedule_is_accepted_and_run(crs, new_cluster):
    """The docs' BackupSchedules (seed 002 is written for br.pingcap.com, which has no schedule controller in
    TiDB Operator v2: run here as v1, and left alone as v2)."""
    ns, cluster = new_cluster()
    names = []
    for path in SCHEDULE_SEEDS:
        doc = _seed_vector(path, ns, cluster)
        doc["apiVersion"] = f"{V1}/{VERSION}"
        crs.create_namespaced_custom_object(V1, VERSION, ns, "backupschedules", doc)
        crs.patch_namespaced_custom_object(V1, VERSION, ns, "backupschedules", doc["metadata"]["name"],
                                           {"status": {"lastBackupTime": _past(3 * 3600)}})
        names.append((doc["metadata"]["name"], doc))
    v2 = _seed_vector(SCHEDULE_SEEDS[0], ns, cluster)
    crs.create_namespaced_custom_object("br.pingcap.com", VERSION, ns, "backupschedules", v2)
    for name, doc in names:
        # A Backup that fails at once (a Dumpling one while nothing runs Dumpling) is collected by the
        # maxReservedTime GC at once (no commitTs), which resets lastBackup and sets allBackupCleanTime.
        bs = wait_for(lambda n=name: _get(crs, ns, n, "backupschedules"),
                      lambda o: (o.get("status") or {}).get("lastBackup", "").startswith(o["metadata"]["name"])
                      or bool((o.get("status") or {}).get("allBackupCleanTime")), timeout=30)
        made = bs["status"].get("lastBackup")
        backup = _get(crs, ns, made) if made else None
        if backup is not None:
            assert backup["metadata"]["labels"]["tidb.pingcap.com/backup-schedule"] == name
            if doc["spec"]["backupTemplate"].get("br") is None:  # Dumpling: the schedule's volume settings
                assert backup["spec"]["storageSize"] == "10Gi", name
        else:
            assert doc["spec"]["backupTemplate"].get("br") is None, f"{name}: {bs['status']}"
        if doc["spec"].get("logBackupTemplate"):
            assert bs["status"]["logBackup"] == f"log-{name}" and _get(crs, ns, f"log-{name}") is not None
    v2_now = _get(crs, ns, v2["metadata"]["name"], "backupschedules", group="br.pingcap.com")
    assert not v2_now.get("status"), "TiDB Operator v2 has no BackupSchedule controller"


def test_compact_backup_template_compacts_the_schedules_log_in_intervals(crs, new_cluster):
    """`createCompact`: from the log start, at most three intervals at a time, never past the checkpoint, at the
    log backup's own prefix; `lastCompactProgress` follows the finished ones."""
    ns, cluster = new_cluster()
    name = unique("bs")
    body = _schedule(name, cluster, cluster, maxReservedTime="3h", compactInterval="2s")
    body["spec"]["compactBackupTemplate"] = {"br": {"cluster": cluster}, **s3_storage(f"{cluster}/log")}
    crs.create_namespaced_custom_object(V1, VERSION, ns, "backupschedules", body)
    log_cr = _running_log(crs, ns, f"log-{name}")
    bs = wait_for(lambda: _get(crs, ns, name, "backupschedules"),
                  lambda o: bool((o.get("status") or {}).get("lastCompact")), timeout=30)
    compact = _get(crs, ns, bs["status"]["lastCompact"], "compactbackups")
    assert compact["metadata"]["name"].startswith(f"compact-{name}-")
    assert compact["spec"]["s3"]["prefix"] == log_cr["spec"]["s3"]["prefix"]
    start = datetime.strptime(compact["spec"]["startTs"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    end = datetime.strptime(compact["spec"]["endTs"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert start.strftime("%Y-%m-%dT%H:%M:%SZ") == bs["status"]["logBackupStartTs"]
    assert timedelta(seconds=2) <= end - start <= timedelta(seconds=6)
    wait_for(lambda: _get(crs, ns, name, "backupschedules"),
             lambda o: (o.get("status") or {}).get("lastCompactProgress") is not None, timeout=60)
