"""CompactBackup: `state` Scheduled -> Prepare -> Running -> Complete | Failed (reference section 6)."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..k8s.crd import ResourceType
from ..storage import br_layout
from .common import V2_GROUP, sleep
from .context import Context, StorageFailure, storage_block
from .tsparse import TsParseError, parse_ts_operator


async def run_compact(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    def state(value: str, message: str = "", **fields: Any) -> None:
        def mutate(status: dict[str, Any], obj: dict[str, Any]) -> None:
            status["state"] = value
            status["message"] = message
            status.update(fields)
        ctx.write_status(rt, namespace, name, mutate)

    obj = ctx.get(rt, namespace, name)
    if obj is None:
        return
    spec = obj.get("spec") or {}
    try:
        start_ts = parse_ts_operator(spec.get("startTs"))
        end_ts = parse_ts_operator(spec.get("endTs"))
    except TsParseError as err:
        state("Failed", str(err))
        return
    if not end_ts or end_ts <= start_ts:
        state("Failed", f"endTs {spec.get('endTs')!r} must be after startTs {spec.get('startTs')!r}")
        return
    cluster = ctx.cluster_for(rt.group, namespace, spec.get("br"))
    if isinstance(cluster, str):
        state("Failed", cluster)
        return
    state("Scheduled")
    await sleep(ctx.config.step_delay)
    try:
        location = ctx.open_storage(namespace, storage_block(spec))
    except StorageFailure as err:
        state("Failed", err.message)
        return
    state("Prepare")
    await sleep(ctx.config.step_delay)
    started = clock.monotonic()
    state("Running")
    try:
        result = await ctx.io(br_layout.compact_log, location, start_ts, end_ts, name=name)
    except Exception as err:
        state("Failed", str(getattr(err, "message", err)))
        return
    await sleep(ctx.config.compact_duration - (clock.monotonic() - started))
    fields: dict[str, Any] = {
        "progress": f"[READ_META({result.metas}/{result.metas}),COMPACT_WORK({result.bytes}/{result.bytes})]"}
    if rt.group != V2_GROUP:
        fields["endTs"] = str(result.end_ts)
    state("Complete", **fields)
