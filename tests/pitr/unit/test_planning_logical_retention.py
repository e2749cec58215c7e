"""The logical-backup retention planner: properties over random histories (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.planning.logical_retention import (
    COMPLETE,
    FAILED,
    OTHER,
    LogicalBackup,
    plan_logical_retention,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)

backup_lists = st.lists(
    st.tuples(st.integers(0, 60 * 24 * 30), st.sampled_from((COMPLETE, FAILED, OTHER)), st.booleans(),
              st.one_of(st.none(), st.sampled_from("abcde"))),  # archives: a few names, so some are shared
    max_size=25,
).map(lambda items: [LogicalBackup(f"b{i}", NOW - timedelta(minutes=m), state, owned, archive)
                     for i, (m, state, owned, archive) in enumerate(items)])
keeps = st.tuples(st.one_of(st.none(), st.integers(1, 8)),
                  st.one_of(st.none(), st.integers(1, 60 * 24 * 20).map(lambda m: timedelta(minutes=m)))
                  ).filter(lambda k: k != (None, None))


@settings(max_examples=300, deadline=None)
@given(backup_lists, keeps)
def test_deletes_only_its_own_finished_backups_and_keeps_exactly_what_keep_says(backups, keep):
    count, age = keep
    plan = plan_logical_retention(backups, count=count, age=age, now=NOW)
    by_name = {b.name: b for b in backups}
    deleted = set(plan.delete)
    # Never what it did not make, never what is still going.
    assert all(by_name[n].owned and by_name[n].state in (COMPLETE, FAILED) for n in deleted)
    assert not deleted & set(plan.keep)
    complete = sorted((b for b in backups if b.owned and b.state == COMPLETE),
                      key=lambda b: (b.created, b.name), reverse=True)
    if complete:  # the newest Complete one always stays
        assert complete[0].name not in deleted
    for rank, backup in enumerate(complete):
        wanted = (count is not None and rank < count) or (age is not None and backup.created > NOW - age)
        # Exactly keep's rule: what it keeps stays, what it does not keep goes (but the newest).
        assert (backup.name in deleted) == (not wanted and rank > 0), (rank, backup, keep)
    # Never an archive that a backup which stays (kept, foreign, running) also names: then only the CR goes.
    staying = {b.archive for b in backups if b.name not in deleted and b.archive}
    assert all(by_name[n].archive not in staying for n in deleted if n not in plan.cr_only)
    assert set(plan.cr_only) <= deleted
    for backup in backups:  # a Failed one goes only when a newer Complete one exists
        if backup.owned and backup.state == FAILED and backup.name in deleted:
            assert complete and complete[0].created > backup.created


def test_count_alone_keeps_the_newest_n_and_ignores_foreign_ones():
    backups = [LogicalBackup(f"ours{i}", NOW - timedelta(days=i), COMPLETE, True) for i in range(5)]
    backups += [LogicalBackup("foreign-old", NOW - timedelta(days=30), COMPLETE, False)]
    plan = plan_logical_retention(backups, count=2, age=None, now=NOW)
    assert set(plan.delete) == {"ours2", "ours3", "ours4"}
    assert "foreign-old" not in plan.keep and "foreign-old" not in plan.delete


def test_needs_a_rule():
    with pytest.raises(ValueError, match="count and/or age"):
        plan_logical_retention([], count=None, age=None, now=NOW)


def test_an_archive_shared_with_someone_elses_backup_stays():
    # Two Dumpling Jobs into one prefix within one second write one `backup-<RFC3339>.tgz`.
    shared = "demo1/logical/backup-2026-12-01T21:20:01Z.tgz"
    backups = [LogicalBackup("ours-old", NOW - timedelta(days=3), COMPLETE, True, shared),
               LogicalBackup("theirs", NOW - timedelta(days=3), COMPLETE, False, shared),
               LogicalBackup("ours-new", NOW - timedelta(days=1), COMPLETE, True, "demo1/logical/b.tgz")]
    plan = plan_logical_retention(backups, count=1, age=None, now=NOW)
    assert plan.delete == ("ours-old",) and plan.cr_only == ("ours-old",)
    assert "also theirs's" in plan.reasons["ours-old"]
