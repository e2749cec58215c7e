"""Seeded histories made once per sandbox and cloned: a template per shape (days, storage kind), copied into each
new cluster that asks for that shape.

A 12-day seed writes about 1,200 objects (4-5 s, nearly all of it S3 requests); a clone copies the template's
rows (its own ClusterData, nothing shared) and its objects (inside moto's process for S3, file by file for a
local volume), ~0.2 s. Only backupmeta files name the cluster (its ID, and the log task's name): those are
rewritten for the clone; data files and flush metas hold keys, rows, TSOs and relative paths only, so their
bytes and checksums stay valid.

Time. Seeds are relative to "now": a fresh seed's history runs from now - days to now. A clone made at T1 from a
template seeded at T0 <= T1 gets the template's history and then what happened between T0 and T1: the same
traffic (extend_history) and the log task's hourly flushes up to a last flush at T1, so its checkpoint, its
newest rows and its log end at T1, as a fresh seed's do; every TSO is at or before T1. Its history begins
T1 - T0 earlier than a fresh seed's would: at most MAX_AGE, after which the template is seeded afresh. The
template is also seeded afresh when a fresh seed at T1 would have other snapshots (a midnight passed, or the
start moved across one), so a clone always has the snapshots, names and commit TSOs a fresh seed would have.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import clock
from .data.mvcc import ClusterData
from .data.tso import dt_to_tso
from .data.workload import extend_history
from .options import SEED_BUCKET
from .seed import (
    LOG_START_AFTER,
    OPS_PER_HOUR,
    SeededHistory,
    flush_hourly,
    register_history,
    secret_for,
    snapshot_times,
    storage_spec,
    write_history,
)
from .storage.br_common import BACKUPMETA
from .storage.locations import open_location

if TYPE_CHECKING:  # typing only: app imports this module
    from .app import Sandbox
    from .operator.clusters import SimCluster

MAX_AGE = timedelta(minutes=20)  # a template older than this is seeded afresh (see the module's docstring)
TEMPLATE_ROOT = "sandbox-seed-templates"  # where templates' objects live, beside the clusters' roots
TEMPLATE_CLUSTER_ID = 7_000_000_000_000_000_001  # 19 digits like PD's IDs, and no other cluster's


@dataclass
class SeedTemplate:
    """One seeded history kept aside: rows that no cluster serves and objects under `root` no CR names."""

    days: float
    storage: str
    root: str
    task_name: str  # the log task's name in the log backupmeta, rewritten per clone
    data: ClusterData  # never written after seeding; clones copy it
    made_at: datetime
    history: SeededHistory

    def fits(self, now: datetime) -> bool:
        """Whether a clone made `now` has the snapshots a fresh seed made now would have (module docstring)."""
        if now < self.made_at or now - self.made_at > MAX_AGE:
            return False
        made = [s.at for s in self.history.snapshots]
        fresh_log_start = now - timedelta(days=self.days) + LOG_START_AFTER
        return snapshot_times(self.history.log_start, now) == made and snapshot_times(fresh_log_start, now) == made


class SeedTemplates:
    """The sandbox's templates by shape; one seeding at a time per shape."""

    def __init__(self) -> None:
        self._templates: dict[tuple[float, str], SeedTemplate] = {}
        self._locks: dict[tuple[float, str], asyncio.Lock] = {}
        self._made = 0
        self.seeded = 0  # how many templates were seeded (the sandbox tests read it)

    def describe(self) -> dict[str, Any]:
        """How many templates were seeded, and the shapes held now with the time each was seeded."""
        return {"seeded": self.seeded,
                "templates": [{"days": t.days, "storage": t.storage, "madeAt": t.made_at.isoformat()}
                              for t in self._templates.values()]}

    async def template_for(self, sandbox: Sandbox, *, days: float, storage: str, now: datetime) -> SeedTemplate:
        shape = (days, storage)
        async with self._locks.setdefault(shape, asyncio.Lock()):
            template = self._templates.get(shape)
            if template is None or not template.fits(now):
                template = self._templates[shape] = await self._seed(sandbox, days, storage, now)
            return template

    async def _seed(self, sandbox: Sandbox, days: float, storage: str, now: datetime) -> SeedTemplate:
        self._made += 1
        name = f"{TEMPLATE_ROOT}-{self._made}"
        root = f"{TEMPLATE_ROOT}/{days:g}d-{storage}-{self._made}"
        data = ClusterData(cluster_id=TEMPLATE_CLUSTER_ID)
        task_name = f"{name}-log-backup"
        history = await write_history(sandbox, data, task_name=task_name, root=root, storage=storage,
                                      start=now - timedelta(days=days), now=now)
        self.seeded += 1
        return SeedTemplate(days, storage, root, task_name, data, now, history)

    async def clone_into(self, sandbox: Sandbox, cluster: SimCluster, *, days: float, storage: str,
                         root: str) -> dict[str, Any]:
        """Give the new, empty `cluster` the template's history, brought up to now, with storage under `root`."""
        now = clock.now()
        template = await self.template_for(sandbox, days=days, storage=storage, now=now)
        data = cluster.data
        data.apply(template.data.changes_between(0, template.data.max_ts))  # apply copies each row
        if now > template.made_at:
            extend_history(data, sandbox.alloc, template.made_at, now, ops_per_hour=OPS_PER_HOUR,
                           rng=random.Random(sandbox.rng.random()))
        rewrites = {BACKUPMETA: [[f'"cluster_id":{TEMPLATE_CLUSTER_ID},', f'"cluster_id":{data.cluster_id},'],
                                 [f'"task_name":"{template.task_name}"', f'"task_name":"{cluster.name}-log-backup"']]}
        await clock.to_thread(_copy_prefix, sandbox, storage, f"{template.root}/", f"{root}/", rewrites)
        secret = secret_for(sandbox, storage)
        log_location = open_location(storage_spec(sandbox, storage, f"{root}/log-backup"), secret, sandbox.endpoints)
        checkpoint = template.history.checkpoint
        if dt_to_tso(now) > checkpoint:  # the flushes the task made since the template's last one
            checkpoint = await flush_hourly(sandbox, data, log_location, template.history.log_start, checkpoint,
                                             now)
        history = SeededHistory(template.history.log_start, template.history.start_ts, checkpoint,
                                template.history.snapshots)
        return register_history(sandbox, cluster, history, storage=storage, root=root, now=now)


def _copy_prefix(sandbox: Sandbox, storage: str, source: str, target: str,
                 rewrites: dict[str, list[list[str]]]) -> int:
    """Every object under `source` copied to `target` in the seed bucket or volume, `rewrites` applied to the
    files they name (by last path part)."""
    if storage == "s3":
        # In moto's own process (storage/moto_main.py): the objects never cross HTTP.
        body = json.dumps({"bucket": SEED_BUCKET, "from": source, "to": target, "rewrite": rewrites}).encode()
        request = urllib.request.Request(f"{sandbox.endpoints.s3}/_sandbox/copy-prefix", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(json.loads(response.read())["copied"])
    secret = secret_for(sandbox, storage)
    src = open_location(storage_spec(sandbox, storage, source), secret, sandbox.endpoints)
    dst = open_location(storage_spec(sandbox, storage, target), secret, sandbox.endpoints)
    objects = src.get_many(info.rel for info in src.list())
    for rel in objects:
        for old, new in rewrites.get(rel.rsplit("/", 1)[-1], []):
            objects[rel] = objects[rel].replace(old.encode(), new.encode())
    dst.put_many(objects)
    return len(objects)
