"""The v1 BackupSchedule controller: Backups on a cron, one log backup, CompactBackups, and the schedule's GC.

Follows TiDB Operator release-1.6 `pkg/backup/backupschedule/backup_schedule_manager.go` (`Sync`,
`backupGC`), `pkg/apis/pingcap/v1alpha1/backup_schedule.go` (CR names), `pkg/apis/label/label.go`
(`NewBackupSchedule`) and `pkg/controller/backup_control.go` (`TruncateLogBackup`), including the two
behaviours users trip over:

- `maxBackups` counts every Backup carrying the schedule's labels, the log backup CR among them, and
  deletes the oldest beyond the limit: the log backup CR goes first (tidb-operator#6320). `Sync` then
  fails on every run ("log backup ... not found") before it reaches the snapshot, so no Backup is made
  again either, while GC (deferred) still runs.
- The log is truncated only by the `maxReservedTime` GC, to the commitTs of the newest snapshot at or
  before `latest - maxReservedTime` (tidb-operator#6068): restorable time is bounded by
  `maxReservedTime`, whatever else a user wants kept.

TiDB Operator v2 (`main`) ships the BackupSchedule CRD without a controller (`cmd/tidb-operator/main.go`
starts Backup, Restore, TiBR and TiBRGC only), so `br.pingcap.com` schedules are left alone here too.
Not simulated: the backup-schedule group label (`tidb.pingcap.com/backup-schedule-group`), deleting the
last backup's Job (the sandbox has no Jobs), `imagePullSecrets`, and garbage collection of owned Backups
when the schedule is deleted (kube's GC, not the operator's).
"""

from __future__ import annotations

import copy
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from .. import clock
from ..data.tso import dt_to_tso, tso_to_dt
from ..k8s.crd import ResourceType
from ..k8s.errors import ApiError
from ..k8s.store import now_rfc3339
from .common import V2_GROUP, _go_path_join
from .context import Context
from .tsparse import TsParseError, parse_ts_operator

log = logging.getLogger(__name__)

LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_SCHEDULE = "tidb.pingcap.com/backup-schedule"
NAME_TIME_FORMAT = "%Y-%m-%dt%H-%M-%S"  # v1alpha1.BackupNameTimeFormat "2006-01-02t15-04-05"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # v1alpha1.BackupTimestampFormat
DEFAULT_STORAGE_SIZE = "100Gi"  # pkg/backup/constants DefaultStorageSize
PD_CLIENT_PORT = 2379
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class Requeue(Exception):
    """`controller.RequeueErrorf` / a Sync error: this round ends here; GC still runs."""


def schedule_labels(name: str) -> dict[str, str]:
    """`label.NewBackupSchedule().Instance(name).BackupSchedule(name)`: on every CR the schedule makes, and
    the selector its GC lists them by."""
    return {LABEL_NAME: "backup-schedule", LABEL_MANAGED_BY: "backup-schedule-operator", LABEL_INSTANCE: name,
            LABEL_SCHEDULE: name}


def parse_go_duration(text: str) -> timedelta:
    """Go's `time.ParseDuration` for what a schedule holds (`3h`, `1h30m`, `90s`); ValueError otherwise. Not
    `durationpy.from_str`: it takes what Go refuses (`30d`, `1w`, `1y`, `1h 2m`), which would be kinder."""
    text = (text or "").strip()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return timedelta(0)
    parts = _GO_DURATION.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise ValueError(f'time: invalid duration "{text}"')
    return timedelta(seconds=sign * sum(float(n) * _GO_UNITS[u] for n, u in parts))


def _rfc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _ts(text: str | None) -> int:
    try:
        return parse_ts_operator(text)
    except TsParseError:
        return 0


def _has_condition(obj: dict[str, Any], ctype: str) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conds)


def _phase(obj: dict[str, Any]) -> str:
    return (obj.get("status") or {}).get("phase") or ""


def _created(obj: dict[str, Any]) -> float:
    created = _time(obj["metadata"].get("creationTimestamp"))
    return created.timestamp() if created else 0.0


def _with_prefix(spec: dict[str, Any], suffix: str) -> None:
    """`path.Join(<provider>.Prefix, suffix)` on the first provider set (s3, gcs, azblob, local)."""
    for kind in ("s3", "gcs", "azblob", "local"):
        if spec.get(kind):
            spec[kind]["prefix"] = _go_path_join(spec[kind].get("prefix") or "", suffix)
            return


class BackupScheduleController:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- helpers over the store --------------------------------------------------------------------
    def _backups_rt(self, group: str) -> ResourceType:
        return self.ctx.rt(group, "backups")

    def _owned(self, rt: ResourceType, bs: dict[str, Any]) -> list[dict[str, Any]]:
        labels = schedule_labels(bs["metadata"]["name"])
        items, _ = self.ctx.store.list(rt, bs["metadata"]["namespace"], lambda o: all(
            (o["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items()))
        return items

    def _meta(self, bs: dict[str, Any], name: str) -> dict[str, Any]:
        meta = bs["metadata"]
        owner = {"apiVersion": bs.get("apiVersion", "pingcap.com/v1alpha1"), "kind": "BackupSchedule",
                 "name": meta["name"], "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}
        out: dict[str, Any] = {"name": name, "namespace": meta["namespace"],
                               "labels": {**schedule_labels(meta["name"]), **(meta.get("labels") or {})},
                               "ownerReferences": [owner]}
        if meta.get("annotations"):
            out["annotations"] = dict(meta["annotations"])
        return out

    def _create(self, plural: str, bs: dict[str, Any], body: dict[str, Any]) -> None:
        rt = self.ctx.rt("pingcap.com", plural)
        body = {"apiVersion": rt.api_version, "kind": rt.kind, **body}
        self.ctx.store.create(rt, body["metadata"]["namespace"], body)

    # -- reconcile -----------------------------------------------------------------------------------
    def reconcile(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """`UpdateBackupSchedule`: Sync (GC deferred), then write the status when it changed."""
        if rt.group == V2_GROUP or obj["metadata"].get("deletionTimestamp"):
            return
        bs = obj
        before = dict(bs.get("status") or {})
        status = bs.setdefault("status", {})
        try:
            self._sync(bs, status)
        except Requeue as err:
            log.info("%s", err)
        finally:
            self._gc(bs, status)
        if status != before:
            meta = bs["metadata"]
            self.ctx.write_status(rt, meta["namespace"], meta["name"],
                                  lambda s, _o: (s.clear(), s.update(status)))

    def _sync(self, bs: dict[str, Any], status: dict[str, Any]) -> None:
        spec, meta = bs.get("spec") or {}, bs["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if spec.get("pause"):
            raise Requeue(f"backupSchedule {ns}/{name} has been paused")
        checkpoint: datetime | None = None
        if spec.get("logBackupTemplate"):
            if not status.get("logBackup"):
                self._create_log_backup(bs, status)
            else:
                checkpoint = self._log_checkpoint(bs, status)
        try:
            self._check_last_backup(bs, status)
            scheduled = self._last_scheduled_time(bs, status)
            if scheduled is None:
                return
            now = clock.now()  # upstream: *scheduledTime = bm.now()
            backup = self._build_backup(bs, now)
            self._create("backups", bs, backup)
            status["lastBackup"] = backup["metadata"]["name"]
            status["lastBackupTime"] = _rfc(now)
            status.pop("allBackupCleanTime", None)
        finally:
            self._maybe_compact(bs, status, checkpoint)

    def _create_log_backup(self, bs: dict[str, Any], status: dict[str, Any]) -> None:
        """`createLogBackup`: `log-<schedule>` at `<prefix>/log-<start time>`."""
        meta, template = bs["metadata"], bs["spec"]["logBackupTemplate"]
        now = clock.now()
        name = f"log-{meta['name']}"
        if self.ctx.get(self._backups_rt("pingcap.com"), meta["namespace"], name) is not None:
            raise Requeue(f"backup schedule {meta['namespace']}/{meta['name']}, log backup {name} already exists")
        spec = copy.deepcopy(template)
        _with_prefix(spec, "log-" + now.strftime(NAME_TIME_FORMAT))
        self._create("backups", bs, {"metadata": self._meta(bs, name), "spec": spec})
        status["logBackup"] = name
        status["logBackupStartTs"] = _rfc(now)

    def _log_checkpoint(self, bs: dict[str, Any], status: dict[str, Any]) -> datetime | None:
        """`getLogBackupCheckpoint`: a missing log CR (as after #6320) fails every Sync from here on."""
        meta = bs["metadata"]
        logb = self.ctx.get(self._backups_rt("pingcap.com"), meta["namespace"], status["logBackup"])
        if logb is None:
            raise Requeue(f"backup schedule {meta['namespace']}/{meta['name']}, log backup {status['logBackup']} "
                          "not found")
        tso = _ts((logb.get("status") or {}).get("logCheckpointTs"))
        if not tso:
            return None
        checkpoint = tso_to_dt(tso)
        if not status.get("logBackupStartTs"):
            status["logBackupStartTs"] = _rfc(checkpoint)
        start = _time(status["logBackupStartTs"])
        return None if start and checkpoint < start else checkpoint

    def _check_last_backup(self, bs: dict[str, Any], status: dict[str, Any]) -> None:
        """`canPerformNextBackup`: wait while the last Backup is neither Complete, Scheduled+Failed nor Invalid."""
        meta = bs["metadata"]
        last = status.get("lastBackup")
        if not last:
            return
        backup = self.ctx.get(self._backups_rt("pingcap.com"), meta["namespace"], last)
        if backup is None:
            return
        if (_has_condition(backup, "Complete") or (_has_condition(backup, "Scheduled") and _has_condition(
                backup, "Failed")) or _has_condition(backup, "Invalid")):
            return
        raise Requeue(f"backup schedule {meta['namespace']}/{meta['name']}, the last backup {last} is still running")

    def _last_scheduled_time(self, bs: dict[str, Any], status: dict[str, Any]) -> datetime | None:
        """`getLastScheduledTime`: the newest cron time after the last backup (or clean, or creation) not after now."""
        meta, spec = bs["metadata"], bs.get("spec") or {}
        try:
            croniter(spec.get("schedule") or "")
        except (ValueError, KeyError) as err:
            raise Requeue(f"parse backup schedule {meta['namespace']}/{meta['name']} cron format "
                          f"{spec.get('schedule')} failed, err: {err}") from err
        earliest = (_time(status.get("lastBackupTime")) or _time(status.get("allBackupCleanTime"))
                    or _time(meta.get("creationTimestamp")) or clock.now())
        now = clock.now()
        if earliest > now:
            return None
        it = croniter(spec["schedule"], earliest)
        last = None
        for count in range(1002):
            t = it.get_next(datetime)
            if t > now:
                break
            last = t
            if count > 1000:  # too many missed start times: skip ahead as upstream does
                offset = it.get_next(datetime) - t
                status["lastBackupTime"] = _rfc(now - offset)
                return None
        return last

    def _build_backup(self, bs: dict[str, Any], at: datetime) -> dict[str, Any]:
        """`buildBackup`: `<schedule>-<yyyy-mm-dd>t<hh-mm-ss>`; BR backups at
        `<prefix>/<cluster>-pd.<ns>-2379-<time>`, Dumpling ones with the schedule's volume settings."""
        meta, spec = bs["metadata"], bs.get("spec") or {}
        backup_spec = copy.deepcopy(spec.get("backupTemplate") or {})
        br = backup_spec.get("br")
        if not br:
            for key in ("storageClassName", "volumeAttributesClassName"):
                if not backup_spec.get(key) and spec.get(key):
                    backup_spec[key] = spec[key]
            if not backup_spec.get("storageSize"):
                backup_spec["storageSize"] = spec.get("storageSize") or DEFAULT_STORAGE_SIZE
        else:
            pd = f"{br.get('cluster', '')}-pd.{br.get('clusterNamespace') or meta['namespace']}:{PD_CLIENT_PORT}"
            _with_prefix(backup_spec, pd.replace(":", "-") + "-" + at.strftime(NAME_TIME_FORMAT))
        name = f"{meta['name']}-{at.strftime(NAME_TIME_FORMAT)}"
        return {"metadata": self._meta(bs, name), "spec": backup_spec}

    # -- compaction ------------------------------------------------------------------------------------
    def _maybe_compact(self, bs: dict[str, Any], status: dict[str, Any], checkpoint: datetime | None) -> None:
        """The deferred block of `Sync`: `canPerformNextCompact`, then `createCompact`."""
        spec, meta = bs.get("spec") or {}, bs["metadata"]
        if (not spec.get("logBackupTemplate") or not spec.get("compactBackupTemplate")
                or not status.get("logBackupStartTs") or checkpoint is None):
            return
        if status.get("lastCompact"):
            compact = self.ctx.get(self.ctx.rt("pingcap.com", "compactbackups"), meta["namespace"],
                                   status["lastCompact"])
            if compact is not None:
                state = (compact.get("status") or {}).get("state")
                if state == "Complete":
                    progress = (compact.get("status") or {}).get("endTs")
                elif state == "Failed":
                    progress = (compact.get("spec") or {}).get("startTs")
                else:
                    return  # still running
                at = tso_to_dt(_ts(progress)) if _ts(progress) else None
                start = _time(status["logBackupStartTs"])
                previous = _time(status.get("lastCompactProgress"))
                if at and start and at >= start and not (previous and at < previous):
                    status["lastCompactProgress"] = _rfc(at)
        if not spec.get("compactInterval"):
            return
        start_ts = _time(status.get("lastCompactProgress")) or _time(status["logBackupStartTs"])
        if start_ts is None or start_ts >= checkpoint:
            return
        try:
            span = parse_go_duration(spec["compactInterval"])
        except ValueError:
            log.error("backupSchedule %s/%s: bad compactInterval", meta["namespace"], meta["name"])
            return
        if spec.get("minCompactStartTs"):
            floor = _ts(spec["minCompactStartTs"])
            if floor and start_ts < tso_to_dt(floor):
                start_ts = tso_to_dt(floor)
        end_ts = checkpoint if checkpoint - start_ts < 3 * span else start_ts + 3 * span  # `calEndTs`
        log_start = _time(status["logBackupStartTs"])
        if log_start and end_ts - log_start < span:
            return  # the log backup has only just started
        last_run = _time(status.get("lastCompactExecutionTs"))
        now = clock.now()
        if last_run and now - last_run < span:
            return
        compact_spec = copy.deepcopy(spec["compactBackupTemplate"])
        compact_spec["startTs"] = start_ts.strftime(TIMESTAMP_FORMAT)
        compact_spec["endTs"] = end_ts.strftime(TIMESTAMP_FORMAT)
        _with_prefix(compact_spec, "log-" + (log_start or now).strftime(NAME_TIME_FORMAT))
        name = f"compact-{meta['name']}-{now.strftime(NAME_TIME_FORMAT)}"
        try:
            self._create("compactbackups", bs, {"metadata": self._meta(bs, name), "spec": compact_spec})
        except ApiError as err:
            log.error("backupSchedule %s/%s compact failed: %s", meta["namespace"], meta["name"], err)
        status["lastCompact"] = name
        status["lastCompactExecutionTs"] = _rfc(now)

    # -- GC --------------------------------------------------------------------------------------------
    def _gc(self, bs: dict[str, Any], status: dict[str, Any]) -> None:
        """`backupGC`: maxReservedTime wins when both are set; maxBackups only when > 0."""
        spec = bs.get("spec") or {}
        if spec.get("maxReservedTime") is not None:
            try:
                reserved = parse_go_duration(spec["maxReservedTime"])
            except ValueError:
                log.error("backup schedule %s, invalid MaxReservedTime %s", bs["metadata"]["name"],
                          spec["maxReservedTime"])
                return
            self._gc_by_reserved_time(bs, status, reserved)
            self._compact_gc_by_reserved_time(bs, status, reserved)
        elif spec.get("maxBackups") and int(spec["maxBackups"]) > 0:
            self._gc_by_max_backups(bs, status, int(spec["maxBackups"]))

    def _delete(self, plural: str, obj: dict[str, Any]) -> None:
        rt = self.ctx.rt("pingcap.com", plural)
        try:
            self.ctx.store.delete(rt, obj["metadata"]["namespace"], obj["metadata"]["name"])
            log.info("backup schedule gc %s %s", plural, obj["metadata"]["name"])
        except ApiError as err:
            if err.code != 404:
                raise

    def _reset_last_backup(self, status: dict[str, Any]) -> None:
        status.pop("lastBackupTime", None)
        status["lastBackup"] = ""
        status["allBackupCleanTime"] = now_rfc3339()

    def _gc_by_max_backups(self, bs: dict[str, Any], status: dict[str, Any], keep: int) -> None:
        """`backupGCByMaxBackups`: every labelled Backup, newest first, log backup included (#6320)."""
        backups = sorted(self._owned(self._backups_rt("pingcap.com"), bs), key=_created, reverse=True)
        deleted = 0
        for backup in backups[keep:]:
            if backup["metadata"].get("deletionTimestamp"):
                deleted += 1
                continue
            self._delete("backups", backup)
            deleted += 1
        if deleted and deleted == len(backups):
            self._reset_last_backup(status)
        compacts = sorted(self._owned(self.ctx.rt("pingcap.com", "compactbackups"), bs), key=_created,
                          reverse=True)
        for compact in compacts[keep:]:
            self._delete("compactbackups", compact)
        if compacts[keep:] and len(compacts[keep:]) == len(compacts):
            status["lastCompact"] = ""

    def _gc_by_reserved_time(self, bs: dict[str, Any], status: dict[str, Any], reserved: timedelta) -> None:
        """`backupGCByMaxReservedTime`, with `calExpiredBackupsAndLogBackup` when there is a log backup."""
        backups = self._owned(self._backups_rt("pingcap.com"), bs)
        log_backup = None
        snapshots = []
        for backup in backups:
            if (backup.get("spec") or {}).get("backupMode") == "log":
                log_backup = backup
            elif _has_condition(backup, "Failed") or _has_condition(backup, "Complete") or _has_condition(
                    backup, "Invalid"):
                snapshots.append(backup)
        snapshots.sort(key=_created)
        if not snapshots:
            return
        truncate = 0
        if log_backup is not None:
            expired, truncate = expired_with_log(snapshots, log_backup, reserved)
        else:
            cut = dt_to_tso(clock.now() - reserved)
            expired = []
            for backup in snapshots:
                if _ts((backup.get("status") or {}).get("commitTs")) >= cut:
                    break
                expired.append(backup)
        for backup in expired:
            if not backup["metadata"].get("deletionTimestamp"):
                self._delete("backups", backup)
        spec = bs.get("spec") or {}
        if not spec.get("compactBackupTemplate"):
            progress = 2 ** 64 - 1
        elif not status.get("lastCompactProgress"):
            progress = 0
        else:
            progress = dt_to_tso(_time(status["lastCompactProgress"]) or clock.now())
        truncate = min(truncate, progress)
        if truncate > 0 and log_backup is not None:
            self._truncate_log(log_backup, truncate)
        if expired and len(expired) == len(backups):
            self._reset_last_backup(status)

    def _truncate_log(self, listed: dict[str, Any], truncate: int) -> None:
        """`TruncateLogBackup` (release-1.6 `pkg/controller/backup_control.go`): logTruncateUntil set on the
        lister's copy, sent whole (Update). Whatever value is there goes, even a larger one someone else set; a
        copy made stale by another write since the list conflicts, which is logged and left: the GC does not retry,
        and its next sync truncates only if a snapshot has newly expired by then."""
        updated = copy.deepcopy(listed)
        updated.setdefault("spec", {})["logTruncateUntil"] = str(truncate)
        meta = updated["metadata"]
        try:
            self.ctx.store.update(self._backups_rt("pingcap.com"), meta["namespace"], meta["name"], updated)
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            log.error("backup schedule truncate log backup %s/%s failed, truncateTSO %d, err %s", meta["namespace"],
                      meta["name"], truncate, err)

    def _compact_gc_by_reserved_time(self, bs: dict[str, Any], status: dict[str, Any], reserved: timedelta) -> None:
        """`compactGCByMaxReservedTime`: finished CompactBackups whose endTs is older than now - reserved."""
        compacts = sorted(self._owned(self.ctx.rt("pingcap.com", "compactbackups"), bs), key=_created)
        cut = dt_to_tso(clock.now() - reserved)
        expired = []
        for compact in compacts:
            if (compact.get("status") or {}).get("state") not in ("Complete", "Failed"):
                break
            if _ts((compact.get("spec") or {}).get("endTs")) >= cut:
                break
            expired.append(compact)
        for compact in expired:
            self._delete("compactbackups", compact)
        if expired and len(expired) == len(compacts):
            status["lastCompact"] = ""


def expired_with_log(snapshots: list[dict[str, Any]], log_backup: dict[str, Any],
                     reserved: timedelta) -> tuple[list[dict[str, Any]], int]:
    """`calExpiredBackupsAndLogBackup`: expired = latest (checkpoint or newest commitTs) - reserved; every
    snapshot at or before it but the newest of them goes, and the log is truncated to that newest one's
    commitTs when it lies inside (log start, checkpoint]. Nothing when no snapshot is expired."""
    lstatus = log_backup.get("status") or {}
    latest = max([_ts(lstatus.get("logCheckpointTs"))]
                 + [_ts((b.get("status") or {}).get("commitTs")) for b in snapshots])
    latest_s = (latest >> 18) // 1000  # `TSOToTS`: whole seconds, as upstream computes it
    expired_tso = dt_to_tso(datetime.fromtimestamp(latest_s, UTC) - reserved)
    i = 0
    truncate = 0
    while i < len(snapshots):
        commit = _ts((snapshots[i].get("status") or {}).get("commitTs"))
        if commit > expired_tso:
            break
        truncate = commit
        i += 1
    expired = snapshots[:i - 1] if i else []
    if not expired:
        return [], 0
    start, checkpoint = _ts(lstatus.get("commitTs")), _ts(lstatus.get("logCheckpointTs"))
    return expired, truncate if start < truncate <= checkpoint else 0
