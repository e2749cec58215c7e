"""`check`'s verdicts: one row per assumption the DAGs make about a cluster (name, OK / WARNING / FAILED, the
measured value, what to do), and the run note, the exit code and the alerts built from the rows.

Pure: the flow's task bodies (`flows/tasks/check.py`) measure through the hooks and hand plain values here. The
rows are the precedent of pgBackRest's `check` and `barman check`: one line per assumption, the failed first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from ..units import format_duration
from .notes import HEADLINE, with_details

Status = Literal["OK", "WARNING", "FAILED"]
OK: Status = "OK"
WARNING: Status = "WARNING"
FAILED: Status = "FAILED"
_RANK = {FAILED: 0, WARNING: 1, OK: 2}

# How long the log checkpoints are watched when not told: the operator's tracker interval twice (the CR's copy)
# plus TiKV's flush interval (`log-backup.max-flush-interval`, 3 min by default: the checkpoint objects in storage;
# `waits.log_flush_interval` in clusters.yaml).
TIKV_FLUSH_SECONDS = 180.0
# TSO <-> time conversions assume the worker's clock agrees with PD's.
SKEW_WARN_SECONDS = 5.0
SKEW_FAIL_SECONDS = 60.0


@dataclass(frozen=True)
class CheckRow:
    name: str
    status: Status
    value: str
    action: str = ""  # what to do; empty when OK

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: Mapping[str, str]) -> CheckRow:
        status = body.get("status")
        if status not in _RANK:
            raise ValueError(f"status must be one of OK, WARNING, FAILED; got {status!r}")
        return cls(str(body["name"]), status, str(body.get("value", "")), str(body.get("action", "")))


def observe_for(tracker_interval: float, flush_interval: float = TIKV_FLUSH_SECONDS) -> float:
    """Seconds both log checkpoints must move in: the CR's every tracker interval, storage's every TiKV flush."""
    return 2 * tracker_interval + flush_interval


def ordered(rows: Iterable[CheckRow]) -> list[CheckRow]:
    """FAILED rows first, then WARNING, then OK; each group in the order the checks ran."""
    return sorted(rows, key=lambda r: _RANK[r.status])


def counts(rows: Iterable[CheckRow]) -> dict[str, int]:
    found = {FAILED: 0, WARNING: 0, OK: 0}
    for row in rows:
        found[row.status] += 1
    return found


def exit_code(rows: Iterable[CheckRow]) -> int:
    """The command line's answer: 2 when a row FAILED (Nagios' CRITICAL), else 0; warnings are printed only."""
    return 2 if any(r.status == FAILED for r in rows) else 0


def new_failures(rows: Iterable[CheckRow], failed_before: Iterable[str]) -> list[CheckRow]:
    """FAILED rows whose name did not fail in the previous run: what the notifiers are told (once per failure)."""
    before = set(failed_before)
    return [r for r in rows if r.status == FAILED and r.name not in before]


def line(row: CheckRow) -> str:
    """`FAILED  rbac delete backups: denied. Needed by retention: grant it (include/rbac.yaml)`."""
    tail = f". {row.action}" if row.action and row.status != OK else ""
    return f"{row.status:<7} {row.name}: {row.value}{tail}"


def check_note(cluster: str, rows: list[CheckRow]) -> str:
    """The run's note: the counts and the failed rows' names in the headline, then every row not OK."""
    found = counts(rows)
    failed = [r.name for r in rows if r.status == FAILED]
    head = f"Check {cluster}: {found[FAILED]} FAILED, {found[WARNING]} WARNING, {found[OK]} OK"
    if failed:
        names = ", ".join(failed)
        room = HEADLINE - len(head) - 3
        head += " | " + (names if len(names) <= room else names[:max(0, room - 1)].rsplit(", ", 1)[0] + "…")
    worth = [line(r) for r in ordered(rows) if r.status != OK] or ["every assumption holds"]
    return with_details(head, "; ".join(worth))


# --- verdicts ---------------------------------------------------------------------------------------------

def skew_row(skew_seconds: float, warn: float = SKEW_WARN_SECONDS, fail: float = SKEW_FAIL_SECONDS) -> CheckRow:
    """PD's clock (TIDB_CURRENT_TSO()) minus the worker's: restore times, lags and windows assume they agree."""
    value = f"PD's clock is {format_duration(abs(skew_seconds))} {'ahead of' if skew_seconds >= 0 else 'behind'} " \
            "the worker's"
    size = abs(skew_seconds)
    if size > fail:
        return CheckRow("clock skew", FAILED, value, f"over {format_duration(fail)}: every time<->TSO conversion is "
                        "off by that much; sync the workers' and PD's hosts with NTP")
    if size > warn:
        return CheckRow("clock skew", WARNING, value, f"over {format_duration(warn)}: sync the clocks with NTP")
    return CheckRow("clock skew", OK, value)


def access_rows(needed: Mapping[tuple[str, str, str], list[str]], granted: Mapping[tuple[str, str, str], bool],
                reference: set[tuple[str, str]]) -> list[CheckRow]:
    """RBAC from SelfSubjectAccessReviews: each (group, resource, verb) the DAGs need and the identity lacks is
    FAILED naming the DAGs; a grant outside `reference` (include/rbac.yaml's (resource, verb) pairs) is a WARNING;
    else one OK row."""
    rows = []
    for (group, resource, verb), dags in sorted(needed.items()):
        if not granted.get((group, resource, verb), False):
            rows.append(CheckRow(f"rbac {verb} {resource}", FAILED, f"{verb} on {resource}.{group} denied",
                                 f"needed by {', '.join(sorted(set(dags)))}: grant it (include/rbac.yaml)"))
    extra = sorted(f"{verb} {resource}" for (group, resource, verb), ok in granted.items()
                   if ok and (resource, verb) not in reference and (group, resource, verb) not in needed)
    if extra:
        rows.append(CheckRow("rbac extra grants", WARNING, ", ".join(extra),
                             "more than include/rbac.yaml's least-privilege Role grants: remove them"))
    if not rows:
        rows.append(CheckRow("rbac", OK, f"all {len(needed)} verbs the DAGs use are allowed, nothing more"))
    return rows


def schema_rows(missing: Mapping[str, list[str] | None]) -> list[CheckRow]:
    """`kind` -> the schema fields the DAGs use that the served schema lacks (None: the CRD is not served)."""
    rows = []
    for kind, fields in sorted(missing.items()):
        if fields is None:
            rows.append(CheckRow(f"crd {kind}", FAILED, "not served by the API server",
                                 "install TiDB Operator's CRDs for the configured api_group"))
        elif fields:
            rows.append(CheckRow(f"crd {kind}", FAILED, f"schema lacks {', '.join(fields)}",
                                 "upgrade TiDB Operator's CRDs (kubectl replace -f the release's crd.yaml)"))
        else:
            rows.append(CheckRow(f"crd {kind}", OK, "installed, with every field the DAGs use"))
    return rows


def log_backup_rows(live: list[tuple[str, str | None]], root: str, *, cr_lag: float | None,
                    storage_lag: float | None, cr_advanced: bool | None, storage_advanced: bool | None,
                    observed_for: float, warn: float, critical: float) -> list[CheckRow]:
    """The log backup: exactly one live task (name, storage prefix) writing under `root`; its checkpoint in the CR
    and in storage both moved while watched for `observed_for` seconds, their lags against the RPO."""
    if not live:
        return [CheckRow("log backup", FAILED, "no live log backup", "run the log backup guard DAG")]
    if len(live) > 1:
        return [CheckRow("log backup", FAILED, f"{len(live)} live: {', '.join(n for n, _ in live)}",
                         "TiDB runs one log task per cluster: stop all but one (logSubcommand: log-stop)")]
    name, prefix = live[0]
    rows = [CheckRow("log backup", OK, f"{name} is the one live log backup")]
    inside = bool(prefix) and (prefix.strip("/") + "/").startswith(root.strip("/") + "/")
    rows.append(CheckRow("log backup storage", OK if inside else FAILED, f"writes to {prefix or 'no prefix'}",
                         "" if inside else f"configured root is {root}: the window and retention read only there"))
    for where, lag, advanced in (("CR", cr_lag, cr_advanced), ("storage", storage_lag, storage_advanced)):
        rows.append(_checkpoint_row(where, lag, advanced, observed_for, warn, critical))
    return rows


def _checkpoint_row(where: str, lag: float | None, advanced: bool | None, observed_for: float, warn: float,
                    critical: float) -> CheckRow:
    name = f"log checkpoint ({where})"
    if lag is None:
        return CheckRow(name, FAILED, "no checkpoint", "check `br log status` and the TiKV stores")
    value = f"lag {format_duration(max(lag, 0.0))}"
    if advanced is False:
        other = "PD's" if where == "storage" else "storage's"
        return CheckRow(name, FAILED, f"{value}, did not move in {format_duration(observed_for)}",
                        f"stopped while {other} moved: restores cannot reach past it; check the TiKV logs "
                        "(backup-stream) and the storage credential's write access" if where == "storage"
                        else "stopped: check `br log status`, the operator's tracker and the TiKV stores")
    if lag > critical:
        return CheckRow(name, FAILED, value, f"over the RPO's critical {format_duration(critical)}")
    if lag > warn:
        return CheckRow(name, WARNING, value, f"over the RPO's warn {format_duration(warn)}")
    return CheckRow(name, OK, value)


def version_row(version: str | None, *, compaction: bool, source: str = "") -> CheckRow:
    """TiDB's version against what is configured: PITR needs v6.2+, compaction v8.5.5+. `source`: where it was
    read when not the cluster object (`SELECT VERSION()`), shown after it."""
    if version and source:
        row = version_row(version, compaction=compaction)
        return CheckRow(row.name, row.status, f"{row.value} ({source})", row.action)
    if not version:
        return CheckRow("tidb version", WARNING, "unknown", "set spec.version on the cluster object, or a sql_conn_id")
    parsed = parse_version(version)
    if parsed is None:
        return CheckRow("tidb version", WARNING, version, "not a vMAJOR.MINOR.PATCH version: checked nothing")
    if parsed < (6, 2, 0):
        return CheckRow("tidb version", FAILED, version, "PITR (log backup) needs TiDB v6.2.0 or later")
    if compaction and parsed < (8, 5, 5):
        return CheckRow("tidb version", FAILED, version, "compaction is configured and needs TiDB v8.5.5 or later")
    return CheckRow("tidb version", OK, version)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`v8.5.2`, `8.5.2`, or `SELECT VERSION()`'s `8.0.11-TiDB-v8.5.2` -> (8, 5, 2)."""
    tail = text.rsplit("-v", 1)[-1] if "-TiDB-" in text else text
    parts = tail.strip().lstrip("v").split("-", 1)[0].split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


# --- what the DAGs ask of the Kubernetes API ---------------------------------------------------------------

_READ = ("get", "list", "watch")
# Per DAG kind, the (resource, verbs) its tasks and triggers use (include/rbac.yaml's comment says why each).
# The guard, and every DAG that publishes the page's status again at its end (publish_status), list the restores
# in the targets' namespaces to say which target is being restored into (flows/tasks/guard_status.py).
_PUBLISH = ("restores", ("list",))
USES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "log_guard": (("backups", (*_READ, "create", "patch")), _PUBLISH),
    "snapshot": (("backups", (*_READ, "create")), _PUBLISH),
    "retention": (("backups", (*_READ, "patch", "delete")), _PUBLISH),
    "log_control": (("backups", (*_READ, "patch")), _PUBLISH),
    "restore": (("restores", (*_READ, "create")), ("backups", ("list",)), ("<cluster>", ("get",))),
    "rpo_alert": (("backups", ("list", "watch")),),
    "compaction": (("compactbackups", (*_READ, "create")), ("backups", ("list",))),
    "drill": (("restores", (*_READ, "create")), ("backups", ("list",)), ("<cluster>", ("get",))),
    "logical_backup": (("backups", (*_READ, "create", "delete")),),
    "logical_restore": (("restores", (*_READ, "create")),),
}
# include/rbac.yaml's Role, as (resource, verb) (a unit test keeps them equal); a schedule-managed cluster's
# second Role adds `get backupschedules`.
ROLE_GRANTS = frozenset(
    {("backups", v) for v in (*_READ, "create", "patch", "delete")}
    | {(r, v) for r in ("restores", "compactbackups") for v in (*_READ, "create")}
    | {("tidbclusters", "get"), ("clusters", "get")})
SCHEDULE_GRANTS = frozenset({("backupschedules", "get")})
# What the access reviews ask beyond the needs, to find grants wider than the Role.
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def cluster_resource(api_group: str) -> tuple[str, str]:
    """The cluster object's (group, resource): a v1 TidbCluster, or a v2 Cluster."""
    return ("core.pingcap.com", "clusters") if api_group == "br.pingcap.com" else ("pingcap.com", "tidbclusters")


def needed_access(kinds: Iterable[str], api_group: str, *, schedule: bool) -> dict[tuple[str, str, str], list[str]]:
    """(group, resource, verb) -> the DAG kinds that use it, for a cluster with these DAGs."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for kind in kinds:
        for resource, verbs in USES.get(kind, ()):
            group, plural = cluster_resource(api_group) if resource == "<cluster>" else (api_group, resource)
            for verb in verbs:
                out.setdefault((group, plural, verb), []).append(kind)
    if schedule:
        out.setdefault(("pingcap.com", "backupschedules", "get"), []).append("log_guard")
    return out


def probed_access(api_group: str) -> list[tuple[str, str, str]]:
    """Every (group, resource, verb) the check asks about: all verbs on what the DAGs touch, and Secrets."""
    resources = [(api_group, r) for r in ("backups", "restores", "compactbackups")]
    resources += [cluster_resource(api_group), ("pingcap.com", "backupschedules"), ("", "secrets")]
    return [(g, r, v) for g, r in resources for v in ALL_VERBS if api_group == "pingcap.com" or r != "backupschedules"]


def triggerer_row(probe: Mapping[str, object] | None, wait_for: float) -> CheckRow:
    """The triggerer probe's answer (None: it never came back, the scheduler timed it out `wait_for` seconds after
    its timer)."""
    if probe is not None and probe.get("deferrable") is False:
        return CheckRow("triggerer", OK, "not needed: the DAGs poll ([tidb_pitr] deferrable = False)")
    if probe is None or not probe.get("resumed"):
        return CheckRow("triggerer", FAILED, f"a deferred task did not resume within {format_duration(wait_for)}",
                        "every wait of the DAGs defers: start `airflow triggerer`, or set [tidb_pitr] deferrable = "
                        "False to poll instead")
    late, waited = probe.get("late_seconds"), probe.get("waited_seconds")
    if isinstance(late, int | float):
        return CheckRow("triggerer", OK, f"a deferred task resumed {format_duration(float(late))} after its timer")
    shown = format_duration(float(waited)) if isinstance(waited, int | float) else "seconds"
    return CheckRow("triggerer", OK, f"a deferred task resumed after {shown}")


def schedule_rows(schedule: str, hazards: list[str]) -> list[CheckRow]:
    """A BackupSchedule-managed cluster: each known hazard of the schedule's spec and next GC (planning/schedule.py)
    is a WARNING, but no log backup template at all is FAILED (no point-in-time recovery)."""
    if not hazards:
        return [CheckRow("backup schedule", OK, f"{schedule}: no known hazard in its spec or its next GC")]
    return [CheckRow("backup schedule", FAILED if "no logBackupTemplate" in hazard else WARNING, hazard,
                     f"change BackupSchedule {schedule} (the project never changes it)") for hazard in hazards]


def drill_gc_row(life_time_seconds: float, needed_seconds: float, read: str) -> CheckRow:
    """A drill reads the source at T for `needed` seconds; a recent T stays readable for about tidb_gc_life_time."""
    value = f"tidb_gc_life_time {format_duration(life_time_seconds)}; {read}"
    if life_time_seconds < needed_seconds:
        return CheckRow("drill gc", FAILED, value, f"raise tidb_gc_life_time to {format_duration(needed_seconds)} or "
                        "more (SET GLOBAL tidb_gc_life_time), or the drill ends 'not verified'")
    return CheckRow("drill gc", OK, value)


# --- the storage Secret ----------------------------------------------------------------------------------------

# What TiDB Operator reads from the Secret a CR's storage names before it makes the Job (v1 `pkg/backup/util/
# util.go` `GenerateStorageCertEnv`, v2 `pkg/controllers/br/manager/util/util.go`): S3 `CheckAllKeysExistInSecret(
# secret, constants.S3AccessKey, constants.S3SecretKey)` (`access_key`, `secret_key`; else RetryFailed
# `s3KeyNotExist`); Azure the account (`AZURE_STORAGE_ACCOUNT`) and a shared key (`AZURE_STORAGE_KEY`) or an AAD
# app (`AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`; else `azblobKeyOrAADMissing`).
S3_SECRET_KEYS = ("access_key", "secret_key")
AZURE_ACCOUNT_KEY = "AZURE_STORAGE_ACCOUNT"
AZURE_SHARED_KEY = "AZURE_STORAGE_KEY"
AZURE_AAD_KEYS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")
# The operator's RetryFailed reasons for a Secret it could not get or that lacks keys (same files).
SECRET_REASONS = frozenset({"GetS3SecretFailed", "s3KeyNotExist", "GetAzblobSecretFailed", "azblobAccountNotExist",
                            "azblobKeyOrAADMissing", "GetGcsSecretFailed", "gcsKeyNotExist"})


def secret_missing(provider: str, keys: set[str]) -> list[str]:
    """The keys (or choices of keys) the operator needs that the Secret's non-empty `keys` lack."""
    if provider == "s3":
        return [k for k in S3_SECRET_KEYS if k not in keys]
    if provider == "azblob":
        missing = [] if AZURE_ACCOUNT_KEY in keys else [AZURE_ACCOUNT_KEY]
        if AZURE_SHARED_KEY not in keys and not set(AZURE_AAD_KEYS) <= keys:
            missing.append(f"{AZURE_SHARED_KEY} (or {', '.join(AZURE_AAD_KEYS)})")
        return missing
    return []


def secret_row(provider: str, secret: str | None, keys: set[str] | None, *, readable: bool,
               evidence: tuple[str, str, str, str] | None) -> CheckRow | None:
    """The storage Secret the CRs name. Read (`keys`: its non-empty keys, None: not found) when Airflow's identity
    may `get secrets`; include/rbac.yaml grants nothing on Secrets, so otherwise judged by the operator's answer to
    the newest CR naming it, `evidence` = (CR, phase, reason, message). None: no Secret applies (local storage)."""
    if provider not in ("s3", "azblob"):
        return None
    if not secret:
        return CheckRow("storage secret", OK, "none named: the backup pods use their own identity (IRSA)")
    needs = ", ".join(S3_SECRET_KEYS) if provider == "s3" else f"{AZURE_ACCOUNT_KEY} and {AZURE_SHARED_KEY} or AAD"
    if readable:
        if keys is None:
            return CheckRow("storage secret", FAILED, f"Secret {secret} not found",
                            f"create it with {needs}: TiDB Operator runs no backup Job without it")
        missing = secret_missing(provider, keys)
        if missing:
            return CheckRow("storage secret", FAILED, f"Secret {secret} lacks {'; '.join(missing)}",
                            "add them: TiDB Operator runs no backup Job without them (RetryFailed)")
        return CheckRow("storage secret", OK, f"Secret {secret} has {needs}")
    if evidence is None:
        return CheckRow("storage secret", WARNING, f"Secret {secret} not checked: Airflow may not read Secrets "
                        "(include/rbac.yaml) and no CR has used it yet",
                        f"check that it holds {needs}, or run the log backup guard and check again")
    cr, phase, reason, message = evidence
    if reason in SECRET_REASONS:
        return CheckRow("storage secret", FAILED, f"{cr} is {phase}: {reason}: {message}",
                        f"fix Secret {secret} ({needs}): TiDB Operator retries until it is")
    return CheckRow("storage secret", OK, f"Secret {secret}: TiDB Operator made {cr}'s Job with it ({phase})")


# --- the SQL accounts' grants ----------------------------------------------------------------------------------

# TiDB shows only the schemas an account holds some privilege on in INFORMATION_SCHEMA, and refuses the rest: every
# account reads every schema (a target "empty" to an account that cannot see its schemas is not), and the
# drill's scratch target's account drops them.
SOURCE_PRIVILEGES = ("SELECT",)
TARGET_PRIVILEGES = ("SELECT",)
SCRATCH_PRIVILEGES = ("SELECT", "DROP")
_GRANT = re.compile(r"^GRANT\s+(?P<privs>.+?)\s+ON\s+(?P<scope>\S+)\s+TO\s+", re.IGNORECASE)


def global_privileges(grants: Iterable[str]) -> set[str] | None:
    """The privileges `SHOW GRANTS` lines give on `*.*` (ALL PRIVILEGES as "ALL"); None when some line is a role
    grant (`GRANT 'r'@'%' TO ...`), whose privileges SHOW GRANTS does not list without USING."""
    found: set[str] = set()
    for text in grants:
        match = _GRANT.match(text.strip())
        if match is None:
            if text.strip().upper().startswith("GRANT "):
                return None  # a role granted: its privileges are elsewhere
            continue
        if match["scope"].replace("`", "") != "*.*":
            continue  # schema and table grants do not reach every schema
        privs = {p.strip().upper() for p in match["privs"].split(",")}
        found |= {"ALL"} if "ALL PRIVILEGES" in privs or "ALL" in privs else privs
    return found


def grants_row(conn_id: str, grants: list[str], needed: Iterable[str], why: str) -> CheckRow:
    """One account's `SHOW GRANTS` against the global privileges `why` needs."""
    name = f"sql grants {conn_id}"
    held = global_privileges(grants)
    shown = "; ".join(grants) or "no grants"
    if held is None:
        return CheckRow(name, WARNING, f"granted through roles: {_clip(shown)}",
                        f"check that the roles give {', '.join(needed)} ON *.* ({why})")
    missing = [p for p in needed if p not in held and "ALL" not in held]
    if missing:
        return CheckRow(name, FAILED, f"lacks {', '.join(missing)} ON *.*: {_clip(shown)}",
                        f"GRANT {', '.join(missing)} ON *.* TO the account: {why}")
    return CheckRow(name, OK, f"holds {', '.join(needed)} ON *.*")


def _clip(text: str, room: int = 200) -> str:
    return text if len(text) <= room else text[:room - 1] + "…"
