"""CR names: they start with the cluster's name, fit what TiDB Operator derives from them, and never collide."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.cr.names import (
    COMPACT_NAME_MAX,
    LABEL_MAX,
    LOG_NAME_MAX,
    RESTORE_NAME_MAX,
    SNAPSHOT_NAME_MAX,
    compact_name,
    fit,
    log_backup_name,
    restore_name,
    run_label,
    snapshot_folder,
    snapshot_name,
)

DNS = st.from_regex(r"[a-z][a-z0-9-]{0,60}[a-z0-9]", fullmatch=True)
STAMPS = st.datetimes().map(lambda d: d.strftime("%Y%m%d%H%M%S")).filter(lambda s: len(s) == 14)


def test_examples():
    assert snapshot_name("demo1", "20261121000000") == "demo1-snapshot-20261121000000"
    assert snapshot_name("demo1", "20261121000000", 2) == "demo1-snapshot-20261121000000-a2"
    assert snapshot_folder("20261121000000") == "snapshot-20261121000000"
    assert log_backup_name("demo1-log-backup") == "demo1-log-backup"
    assert log_backup_name("demo1-log-backup", 3) == "demo1-log-backup-3"
    assert restore_name("demo1", "20261121053000", "0123456789abcdef") == "demo1-pitr-20261121053000-012345"
    assert compact_name("demo1", "20261121000000") == "demo1-compact-20261121000000"
    with pytest.raises(ValueError, match="14 digits"):
        snapshot_name("demo1", "2026-11-21")


@given(DNS, DNS, STAMPS, st.integers(1, 99))
def test_names_fit_jobs_and_differ_between_clusters(a, b, stamp, attempt):
    for make, limit in ((lambda c: snapshot_name(c, stamp, attempt), SNAPSHOT_NAME_MAX),
                        (lambda c: log_backup_name(f"{c}-log-backup", attempt), LOG_NAME_MAX),
                        (lambda c: restore_name(c, stamp, "f00dfeedf00dfeed"), RESTORE_NAME_MAX),
                        (lambda c: compact_name(c, stamp), COMPACT_NAME_MAX)):
        name_a, name_b = make(a), make(b)
        assert len(name_a) <= limit <= LABEL_MAX
        assert name_a.startswith(a[:12].rstrip("-")), "a name starts with its cluster's (shortened)"
        assert (name_a == name_b) == (a == b), (name_a, name_b)
    # backup-<name>-log-truncate, the longest Job TiDB Operator makes for a log backup, fits a pod label.
    assert len(f"backup-{log_backup_name(a + '-log-backup', attempt)}-log-truncate") <= LABEL_MAX


def test_fit_keeps_short_names_and_hashes_long_ones():
    assert fit("Demo_1", 20) == "demo-1"
    long_a, long_b = fit("x" * 70 + "a", 40), fit("x" * 70 + "b", 40)
    assert long_a != long_b and len(long_a) <= 40


def test_run_label():
    label = run_label("tidb_pitr_restore", "manual__2026-11-21T05:30:00+00:00")
    assert label == run_label("tidb_pitr_restore", "manual__2026-11-21T05:30:00+00:00")
    assert len(label) == 16 and label.isalnum() and label != run_label("tidb_pitr_restore", "other")
