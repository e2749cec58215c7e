"""Log compaction (`tikv-ctl compact-log-backup`, driven by a CompactBackup CR), modelled.

It reads the log files of [start_ts, end_ts), verifies them and writes one compacted file per store under
v1/compaction_out/<name>/. Restores keep reading the original log files, so compaction never changes what
a restore yields; it only shows up as objects, sizes and progress.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.mvcc import Change
from .base import Location, ObjectNotFound
from .br_common import BRError, dump_json, dump_lines, load_lines, sha256_hex
from .br_log import list_metas

COMPACTION_DIR = "v1/compaction_out/"


@dataclass(frozen=True)
class CompactResult:
    metas: int  # metadata files read
    files: int  # log files compacted
    bytes: int  # log bytes read
    output_files: int
    output_bytes: int
    end_ts: int


def compact_log(loc: Location, start_ts: int, end_ts: int, *, name: str) -> CompactResult:
    if end_ts <= start_ts:
        raise BRError(f"the compaction range [{start_ts}, {end_ts}) is empty")
    metas = [
        m
        for m in list_metas(loc, after_ts=start_ts - 1, until_ts=end_ts - 1)
        if m.max_ts >= start_ts and m.min_ts < end_ts
    ]
    files = [f for m in metas for f in m.files if f.max_ts >= start_ts and f.min_ts < end_ts]
    try:
        contents = loc.get_many([f.path for f in files])
    except ObjectNotFound as exc:
        raise BRError(f"log file {exc.url} named by a metadata file is missing") from exc
    by_store: dict[int, list[Change]] = {}
    for file in files:
        content = contents[file.path]
        if sha256_hex(content) != file.sha256:
            raise BRError(f"checksum mismatch for log file {loc.url}{file.path}")
        for record in load_lines(content, file.path):
            change = Change.from_json(record)
            if start_ts <= change.ts < end_ts:
                by_store.setdefault(file.store_id, []).append(change)
    outputs: dict[str, bytes] = {}
    for store, changes in sorted(by_store.items()):
        changes.sort(key=lambda c: (c.key, c.ts))  # SST order: by key, then version
        outputs[f"{COMPACTION_DIR}{name}/{store}/{start_ts}-{end_ts}.sst"] = dump_lines(
            c.to_json() for c in changes
        )
    summary = {
        "start_ts": start_ts,
        "end_ts": end_ts,
        "files": [{"path": p, "length": len(b), "sha256": sha256_hex(b)} for p, b in outputs.items()],
    }
    outputs[f"{COMPACTION_DIR}{name}/compaction.meta"] = dump_json(summary)
    loc.put_many(outputs)
    return CompactResult(
        metas=len(metas),
        files=len(files),
        bytes=sum(f.length for f in files),
        output_files=len(outputs) - 1,
        output_bytes=sum(len(b) for p, b in outputs.items() if p.endswith(".sst")),
        end_ts=end_ts,
    )
