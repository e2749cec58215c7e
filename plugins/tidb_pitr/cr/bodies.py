"""Pure builders of the CR bodies and patches this project sends to TiDB Operator (both API groups).

Every TSO goes in as a decimal string (reference section 1.3). Storage blocks are the operator's one-key
provider blocks ({"s3": {...}}); the prefix is always set here, never left to chance.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..tso import MIN_PLAUSIBLE_TSO, tso_str
from .api import ApiGroup
from .model import STORAGE_PROVIDERS

CLEAN_POLICIES = ("Retain", "OnFailure", "Delete")
LogAction = Literal["start", "pause", "resume", "stop"]



def storage_block(provider: str, *, bucket: str | None, s3_provider: str | None = None,
                  secret_name: str | None = None, region: str | None = None, endpoint: str | None = None,
                  force_path_style: bool | None = None, local_volume: Mapping[str, Any] | None = None,
                  volume_name: str | None = None, local_mount_path: str | None = None) -> dict[str, Any]:
    """A CR's one-key storage block, without `prefix` (the builders below set that per backup)."""
    if provider == "s3":
        s3: dict[str, Any] = {"provider": s3_provider}
        if secret_name:
            s3["secretName"] = secret_name
        if region:
            s3["region"] = region
        s3["bucket"] = bucket
        if endpoint:
            s3["endpoint"] = endpoint
        if force_path_style is not None:
            s3["forcePathStyle"] = force_path_style
        return {"s3": s3}
    if provider == "azblob":
        azblob: dict[str, Any] = {"container": bucket}
        if secret_name:
            azblob = {"secretName": secret_name, **azblob}
        return {"azblob": azblob}
    volume = {**(local_volume or {}), "name": volume_name}
    return {"local": {"volume": volume, "volumeMount": {"name": volume_name, "mountPath": local_mount_path}}}


def br_block(cluster: str, cluster_namespace: str, *, concurrency: int | None = None, rate_limit: int | None = None,
             send_cred_to_tikv: bool | None = None, checksum: bool | None = None,
             options: list[str] | None = None) -> dict[str, Any]:
    """A CR's `br` dict (camelCase keys); unset options are left out so the operator's defaults apply."""
    block: dict[str, Any] = {"cluster": cluster, "clusterNamespace": cluster_namespace}
    optional = {"concurrency": concurrency, "rateLimit": rate_limit, "sendCredToTikv": send_cred_to_tikv,
                "checksum": checksum}
    block.update({k: v for k, v in optional.items() if v is not None})
    if options:
        block["options"] = list(options)
    return block


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _provider(block: Mapping[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(block, Mapping) or len(block) != 1:
        raise ValueError(f"{what} must be one provider block such as {{'s3': {{...}}}}; got {block!r}")
    provider, inner = next(iter(block.items()))
    if provider not in STORAGE_PROVIDERS or not isinstance(inner, Mapping):
        raise ValueError(f"{what}: provider must be one of {', '.join(STORAGE_PROVIDERS)} with a mapping; "
                         f"got {provider!r}")
    return provider, dict(copy.deepcopy(inner))


def clean_prefix(prefix: str) -> str:
    cleaned = (prefix or "").strip().strip("/")
    if not cleaned:
        raise ValueError("a storage prefix is required: a backup at the bucket root would mix with everything "
                         "else there, and deleting it with cleanPolicy Delete would empty the bucket")
    if any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise ValueError(f"storage prefix {prefix!r} has empty, '.' or '..' parts")
    return cleaned


def storage_with_prefix(block: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A copy of a one-key provider block with `prefix` set (replacing any prefix it had)."""
    provider, inner = _provider(block, "storage")
    inner["prefix"] = clean_prefix(prefix)
    return {provider: inner}


def storage_prefix(block: Mapping[str, Any]) -> str | None:
    _, inner = _provider(block, "storage")
    prefix = inner.get("prefix")
    return prefix if isinstance(prefix, str) and prefix.strip("/") else None


def _root_storage(storage: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    # The caller gives the root block and the full prefix separately; a prefix already in the block would
    # silently be replaced, so refuse it instead of guessing which one was meant.
    if storage_prefix(storage) is not None:
        raise ValueError("pass the storage block without a prefix and the full prefix in `prefix`; "
                         f"the block has prefix {storage_prefix(storage)!r}")
    return storage_with_prefix(storage, prefix)


def _metadata(name: str, namespace: str, labels: Mapping[str, str] | None,
              annotations: Mapping[str, str] | None) -> dict[str, Any]:
    if not name or not namespace:
        raise ValueError(f"name and namespace are required; got name={name!r}, namespace={namespace!r}")
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _br(cluster: str, cluster_namespace: str, br: Mapping[str, Any] | None) -> dict[str, Any]:
    if not cluster:
        raise ValueError("the TiDB cluster name (br.cluster) is required")
    wanted = {"cluster": cluster, "clusterNamespace": cluster_namespace}
    extra = dict(copy.deepcopy(br or {}))
    for key, value in wanted.items():
        if key in extra and extra[key] != value:
            raise ValueError(f"br.{key}={extra[key]!r} conflicts with the cluster this CR is for "
                             f"({cluster_namespace}/{cluster})")
    return {**extra, **wanted}


def _pod_settings(spec: dict[str, Any], service_account: str | None, tool_image: str | None) -> None:
    if service_account:
        spec["serviceAccount"] = service_account
    if tool_image:
        spec["toolImage"] = tool_image


def _cr(group: ApiGroup, kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": group.api_version, "kind": kind, "metadata": metadata, "spec": spec}


def snapshot_backup(
    group: ApiGroup, *, name: str, namespace: str, cluster: str, cluster_namespace: str,
    storage: Mapping[str, Any], prefix: str, labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None, br: Mapping[str, Any] | None = None,
    service_account: str | None = None, table_filter: list[str] | None = None, clean_policy: str = "Delete",
    tool_image: str | None = None,
) -> dict[str, Any]:
    """A full snapshot `Backup` into `<storage root>/<prefix>` (a prefix of its own: Delete removes it all)."""
    if clean_policy not in CLEAN_POLICIES:
        raise ValueError(f"cleanPolicy must be one of {', '.join(CLEAN_POLICIES)}; got {clean_policy!r}")
    spec: dict[str, Any] = {
        # `full` + tableFilter, not `db`/`table`: v1 validation wants br.db for those (reference section 2.1).
        "backupType": "full",
        "backupMode": "snapshot",
        "cleanPolicy": clean_policy,
        "br": _br(cluster, cluster_namespace, br),
        **_root_storage(storage, prefix),
    }
    if table_filter:
        spec["tableFilter"] = list(table_filter)
    _pod_settings(spec, service_account, tool_image)
    return _cr(group, "Backup", _metadata(name, namespace, labels, annotations), spec)


def log_backup(
    group: ApiGroup, *, name: str, namespace: str, cluster: str, cluster_namespace: str,
    storage: Mapping[str, Any], prefix: str, labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None, br: Mapping[str, Any] | None = None,
    service_account: str | None = None, tool_image: str | None = None, commit_ts: int | None = None,
) -> dict[str, Any]:
    """A log `Backup` that starts the cluster's log backup task (BR allows one per cluster)."""
    spec: dict[str, Any] = {
        "backupMode": "log",
        # Retain, always: with Delete, deleting this CR (by hand, or by a cascade) deletes the whole log
        # prefix, i.e. every restore point of the cluster (reference section 7).
        "cleanPolicy": "Retain",
        "br": _br(cluster, cluster_namespace, br),
        **_root_storage(storage, prefix),
    }
    if not group.legacy_log_stop:
        spec["logSubcommand"] = "log-start"  # legacy operators start a log backup without it
    if commit_ts is not None:
        spec["commitTs"] = tso_str(commit_ts)
    _pod_settings(spec, service_account, tool_image)
    return _cr(group, "Backup", _metadata(name, namespace, labels, annotations), spec)


def log_control_patch(group: ApiGroup, action: LogAction) -> dict[str, Any]:
    """Merge patch that starts, pauses, resumes or stops a log backup task."""
    if group.legacy_log_stop:
        if action == "stop":
            return {"spec": {"logStop": True}}
        if action == "start":
            return {"spec": {"logStop": False}}
        raise ValueError(f"cannot {action} a log backup on TiDB Operator <= v1.5.4 / v1.6.0: it has no "
                         f"logSubcommand (only logStop); upgrade to v1.5.5 / v1.6.1 or later")
    # Resume is `log-start` again in both groups: v2's CRD allows `log-resume` but its controller refuses it.
    subcommand = {"start": "log-start", "resume": "log-start", "pause": "log-pause", "stop": "log-stop"}.get(action)
    if subcommand is None:
        raise ValueError(f"log backup action must be start, pause, resume or stop; got {action!r}")
    return {"spec": {"logSubcommand": subcommand}}


def truncate_patch(until_ts: int) -> dict[str, Any]:
    """Merge patch that asks the operator to truncate the log until `until_ts` (reference section 2.4)."""
    if until_ts < MIN_PLAUSIBLE_TSO:
        raise ValueError(f"truncate until {until_ts} is not a TSO")
    return {"spec": {"logTruncateUntil": tso_str(until_ts)}}


def _restore(group: ApiGroup, *, name: str, namespace: str, target_cluster: str, target_namespace: str,
             labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None,
             br: Mapping[str, Any] | None, service_account: str | None, tool_image: str | None,
             spec: dict[str, Any]) -> dict[str, Any]:
    spec["br"] = _br(target_cluster, target_namespace, br)
    _pod_settings(spec, service_account, tool_image)
    return _cr(group, "Restore", _metadata(name, namespace, labels, annotations), spec)


def pitr_restore(
    group: ApiGroup, *, name: str, namespace: str, target_cluster: str, target_namespace: str,
    log_storage: Mapping[str, Any], snapshot_storage: Mapping[str, Any], restored_ts: int,
    labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
    br: Mapping[str, Any] | None = None, service_account: str | None = None, tool_image: str | None = None,
    table_filter: Sequence[str] = (),
) -> dict[str, Any]:
    """A `pitr` `Restore`: base snapshot + log up to `restored_ts`, into the (empty) target cluster; with
    `table_filter` (BR's `restore point --filter`, v8.5.5+) only those tables, into a target that may hold others."""
    log_provider, log_block = _provider(log_storage, "log_storage")
    snap_provider, snap_block = _provider(snapshot_storage, "snapshot_storage")
    # The operator passes only the snapshot's URL to BR; credentials and endpoint come from the log
    # storage block, so both must be the same kind of storage (reference section 3.1).
    if snap_provider != log_provider:
        raise ValueError(f"the snapshot is on {snap_provider} and the log on {log_provider}: BR reads the "
                         f"snapshot with the log storage's credentials, so both must be on the same storage")
    clean_prefix(_str(snap_block.get("prefix")))  # a snapshot is always under its own prefix
    spec: dict[str, Any] = {
        "restoreMode": "pitr",
        "pitrRestoredTs": tso_str(restored_ts),
        log_provider: log_block,
        "pitrFullBackupStorageProvider": {snap_provider: snap_block},
    }
    if table_filter:
        spec["tableFilter"] = list(table_filter)
    return _restore(group, name=name, namespace=namespace, target_cluster=target_cluster,
                    target_namespace=target_namespace, labels=labels, annotations=annotations, br=br,
                    service_account=service_account, tool_image=tool_image, spec=spec)


def snapshot_restore(
    group: ApiGroup, *, name: str, namespace: str, target_cluster: str, target_namespace: str,
    storage: Mapping[str, Any], labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None, br: Mapping[str, Any] | None = None,
    service_account: str | None = None, tool_image: str | None = None,
) -> dict[str, Any]:
    """A full `snapshot` `Restore` of the snapshot in `storage` (block with its prefix)."""
    provider, block = _provider(storage, "storage")
    clean_prefix(_str(block.get("prefix")))
    spec: dict[str, Any] = {"restoreMode": "snapshot", "backupType": "full", provider: block}
    return _restore(group, name=name, namespace=namespace, target_cluster=target_cluster,
                    target_namespace=target_namespace, labels=labels, annotations=annotations, br=br,
                    service_account=service_account, tool_image=tool_image, spec=spec)


def compact_backup(
    group: ApiGroup, *, name: str, namespace: str, cluster: str, log_storage: Mapping[str, Any],
    start_ts: int, end_ts: int, cluster_namespace: str | None = None, concurrency: int = 4,
    max_retry_times: int = 6, labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None, tool_image: str | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """A `CompactBackup` over the log in [start_ts, end_ts); TSO strings, not the schedule's zone-less dates."""
    if not start_ts < end_ts:
        raise ValueError(f"compaction needs start_ts < end_ts; got {start_ts} >= {end_ts}")
    if concurrency < 1 or max_retry_times < 0:
        raise ValueError(f"concurrency must be > 0 and max_retry_times >= 0; got {concurrency}, {max_retry_times}")
    provider, block = _provider(log_storage, "log_storage")
    spec: dict[str, Any] = {
        "startTs": tso_str(start_ts),
        "endTs": tso_str(end_ts),
        "concurrency": concurrency,
        "maxRetryTimes": max_retry_times,
        # v1's controller looks the cluster up in br.clusterNamespace directly, so always set it.
        "br": _br(cluster, cluster_namespace or namespace, None),
        provider: block,
    }
    _pod_settings(spec, service_account, tool_image)
    return _cr(group, "CompactBackup", _metadata(name, namespace, labels, annotations), spec)
