"""A table-filtered point-in-time restore, the pure part: the `tables` field's rules, what BR accepts, which
tables will be restored, and what the target must not hold. No I/O here.

BR's rules this follows (pingcap/tidb): `restore point --filter` exists from v8.5.5; a filter that may take the
`mysql` or `sys` schema is refused (`br/pkg/task/stream.go` `restoreStream`, with `pkg/util/table-filter`
`MatchSchema`), so the filter sent to BR excludes both whenever the user's rules could take them (system schemas
never match here, as in `drill.selected`); a restore refuses when the target already holds a table it restores
(`br/pkg/task/restore.go` `checkTableExistence`, after the Restore CR exists: the plan checks first); filtered
restores of disjoint tables into one target may run at the same time from v9 (its restore registry).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .drill import check_filter, select_tables
from .restore import PlanError

FIELD = "tables"
FILTER_FROM = (8, 5, 5)  # the first BR with `restore point --filter`
CONCURRENT_FROM = (9, 0, 0)  # the first BR that runs filtered restores into one target side by side
BR_SYSTEM_SCHEMAS = ("mysql", "sys")  # what BR refuses a PITR filter to take
RULE_HELP = ("BR table-filter rules, one per line or comma-separated: 'db.table', wildcards * ? [..] "
             "('shop.*', 'crm.order_*'), '!' in front excludes ('!shop.tmp_*'); empty restores the whole cluster")


def parse_rules(raw: Any) -> list[str]:
    """The `tables` field as rules (a list, or a string with one rule per line or comma); [] for the whole
    cluster. Raises PlanError naming the field and the rules' form."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        items: Iterable[Any] = re.split(r"[,\n]", raw)
    elif isinstance(raw, list | tuple):
        items = raw
    else:
        raise PlanError(f"{FIELD} must be a list of {RULE_HELP}; got {raw!r}")
    if not all(isinstance(item, str) for item in items):
        raise PlanError(f"{FIELD} must be a list of strings ({RULE_HELP}); got {raw!r}")
    rules = [item.strip() for item in items if item.strip()]
    problems = check_filter(rules)
    if problems:
        raise PlanError(f"{FIELD}: {'; '.join(problems)}")
    if rules and all(rule.startswith("!") for rule in rules):
        raise PlanError(f"{FIELD} {rules} only excludes: a rule without '!' must say what to restore ({RULE_HELP})")
    return rules


def release_version(text: str) -> tuple[int, int, int] | None:
    """TiDB's release from VERSION() ('8.0.11-TiDB-v8.5.5') or a cluster's spec.version ('v8.5.5'); None when
    neither form is there."""
    found = re.search(r"TiDB-v?(\d+)\.(\d+)\.(\d+)", text) or re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)\S*", text.strip())
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def _shown(version: tuple[int, int, int]) -> str:
    return "v" + ".".join(map(str, version))


def check_version(version: tuple[int, int, int] | None, where: str) -> str:
    """What the plan says of the target's TiDB for a filtered restore; raises PlanError below v8.5.5."""
    if version is None:
        return (f"WARNING: the TiDB version of {where} is unknown: a filtered restore needs v8.5.5 or later (BR "
                "fails an older one after the Restore CR exists)")
    if version < FILTER_FROM:
        raise PlanError(f"{FIELD}: target {where} runs TiDB {_shown(version)}: a point-in-time restore of chosen "
                        f"tables needs BR {_shown(FILTER_FROM)} or later (restore point --filter); upgrade the "
                        "target or leave tables empty to restore the whole cluster")
    return f"target {where} runs TiDB {_shown(version)}: filtered point-in-time restore supported"


def match_schema(rules: Sequence[str], schema: str) -> bool:
    """TiDB's `filter.MatchSchema` (case-insensitive): the last rule whose schema pattern matches and that
    includes or excludes the whole schema decides."""
    for rule in reversed(rules):
        positive = not rule.startswith("!")
        db_pattern, _, table_pattern = (rule if positive else rule[1:]).partition(".")
        if fnmatch.fnmatchcase(schema.lower(), db_pattern.lower()) and (positive or table_pattern == "*"):
            return positive
    return False


def br_filter(rules: Sequence[str]) -> list[str]:
    """The Restore CR's `tableFilter`: the rules, with `!mysql.*` / `!sys.*` added when they could take those
    schemas (BR refuses such a PITR filter; here system schemas never match anyway)."""
    return [*rules, *(f"!{schema}.*" for schema in BR_SYSTEM_SCHEMAS if match_schema(rules, schema))]


@dataclass(frozen=True)
class TablesPlan:
    """What a filtered restore restores: the user's rules, the filter BR gets, and the tables (as of T over
    SQL when `listed`, else the rules themselves)."""

    rules: tuple[str, ...]
    table_filter: tuple[str, ...]
    restored: tuple[str, ...]
    listed: bool

    def describe(self) -> str:
        if self.listed:
            return f"tables: {len(self.restored)} restored ({', '.join(self.restored)})"
        return f"tables: whatever matches {', '.join(self.rules)} at the restore time (the source was not listed)"

    def to_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "table_filter": list(self.table_filter), "restored": list(self.restored),
                "listed": self.listed, "text": self.describe()}


def plan_tables(rules: Sequence[str], source_tables: Iterable[str] | None,
                target_objects: Iterable[str] | None) -> TablesPlan:
    """The tables a filtered restore restores, refused when they would clash with the target or are none.

    `source_tables` are the source's `db.table` at T (None: not read); `target_objects` the target's user
    `db.table` (and empty `db`) now (None: not read). A target table the rules select is a conflict whether or
    not the source has it at T: BR also checks the snapshot's tables, and such a table is what the user asked."""
    restored = select_tables(source_tables, rules) if source_tables is not None else list(rules)
    if source_tables is not None and not restored:
        raise PlanError(f"{FIELD} {list(rules)} matches no table of the source at the restore time; check the "
                        "names (they match case-insensitively) or the time")
    conflicts = select_tables((o for o in target_objects or () if "." in o), rules)
    if conflicts:
        raise PlanError(f"{FIELD}: the target already holds {', '.join(conflicts)}, which {list(rules)} selects; "
                        "BR refuses to restore a table that exists (ErrTablesAlreadyExisted): drop or rename them "
                        "in the target, or narrow tables")
    return TablesPlan(tuple(rules), tuple(br_filter(rules)), tuple(restored), source_tables is not None)


def concurrent_refusal(version: tuple[int, int, int] | None, ours: TablesPlan | None,
                       running: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    """Why a restore may not start while `running` ((name, its tableFilter)) restore into the same target, None
    when it may: only filtered restores of disjoint tables, and only on BR v9 or later."""
    if not running:
        return None
    names = ", ".join(name for name, _ in running)
    if ours is None or not ours.listed or version is None or version < CONCURRENT_FROM:
        return f"already has a restore in progress: {names}"
    whole = [name for name, rules in running if not rules]
    if whole:
        return f"already has a whole-cluster restore in progress: {', '.join(whole)}"
    overlap = sorted({table for _, rules in running for table in select_tables(ours.restored, list(rules))})
    if overlap:
        return f"already has a restore in progress of {', '.join(overlap)}: {names}"
    return None
