"""Real kubectl against the sandbox: get -o wide, apply of the documentation's YAML, describe, explain."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent / "seed_examples").glob("*.yaml"))
# Examples a real API server refuses too: the docs' truncate example carries a placeholder
# ("log-start/log-pause/log-stop"), and the v2 docs' integrated schedule uses the v1 field `compactInterval`
# (v2 calls it `compactSpan`) and a v1 schedule example puts `serviceAccount` on the schedule instead of its
# backupTemplate: kubectl's strict field validation rejects both on a real cluster.
REFUSED = {
    "11-backup-demo1-log-backup-s3.yaml": "spec.logSubcommand",
    "21-backupschedule-integrated-backup-schedule-s3.yaml": 'unknown field "spec.compactInterval"',
    "29-backupschedule-demo1-backup-schedule-s3.yaml": 'unknown field "spec.serviceAccount"',
}


@pytest.fixture(scope="session")
def kubectl(sandbox):
    binary = shutil.which("kubectl")
    assert binary, "kubectl is required for these tests (it is on the project's machines)"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, "--kubeconfig", str(sandbox.kubeconfig), *args], capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def test_get_backup_wide_lists_seeded_history(kubectl):
    out = kubectl("get", "backup", "-A", "-o", "wide").stdout
    header = out.splitlines()[0].split()
    assert header[:8] == [
        "NAMESPACE",
        "NAME",
        "TYPE",
        "MODE",
        "STATUS",
        "BACKUPPATH",
        "BACKUPSIZE",
        "INCREMENTALBACKUPSIZE",
    ]
    assert "COMMITTS" in header and "LOGTRUNCATEUNTIL" in header and "STARTED" in header
    # Other tests add clusters in other namespaces; the seeded history is test1's.
    snapshots = [line.split() for line in out.splitlines() if line.startswith("test1 ") and " demo1-snapshot-" in line]
    assert len(snapshots) >= 2
    for row in snapshots:
        assert row[2:5] == ["full", "snapshot", "Complete"] and row[5].startswith("s3://my-bucket/demo1/snapshot-")
    log_rows = [line.split() for line in out.splitlines() if line.startswith("test1 ") and "demo1-log-backup" in line]
    assert log_rows and log_rows[0][2:4] == ["log", "Running"], "TYPE is empty for a log backup"


def _filled(example: Path, sandbox, tmp_path: Path) -> Path:
    """The docs' ${placeholders} filled with the sandbox's names, as a reader of the docs would."""
    values = {
        "tidb_host": "demo1-tidb.test1",
        "tidb_port": "4000",
        "tidb_user": "root",
        "region": "us-west-1",
        "bucket": "my-bucket",
        "endpoint": sandbox.env["TIDB_SANDBOX_S3_ENDPOINT"],
    }
    text = example.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    target = tmp_path / example.name
    target.write_text(text)
    return target


def test_apply_seed_examples(sandbox, kubectl, tmp_path):
    for example in EXAMPLES:
        result = kubectl("apply", "-f", str(_filled(example, sandbox, tmp_path)), check=False)
        if example.name in REFUSED:
            assert result.returncode != 0 and REFUSED[example.name] in result.stderr, result.stderr
        else:
            assert result.returncode == 0, f"{example.name}: {result.stderr}"
    out = kubectl("get", "backups.br.pingcap.com", "-n", "test1").stdout
    assert "demo1-full-backup-s3" in out and "demo1-log-backup-s3" in out
    out = kubectl("get", "backups.pingcap.com", "-n", "backup-test").stdout
    assert "demo1-backup-azblob" in out


def test_describe_and_explain(kubectl):
    described = kubectl("describe", "backups.pingcap.com", "demo1-log-backup", "-n", "test1").stdout
    assert "Log Checkpoint Ts:" in described and "Commit Ts:" in described
    explained = kubectl("explain", "backups.br.pingcap.com.spec").stdout
    assert "logSubcommand" in explained and "backupMode" in explained


def test_kubectl_rejects_bad_field_with_path(kubectl, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: pingcap.com/v1alpha1\nkind: Backup\nmetadata:\n  name: bad\n  namespace: test1\n"
        "spec:\n  logSubcommand: sideways\n  br:\n    cluster: demo1\n"
    )
    result = kubectl("apply", "-f", str(bad), check=False)
    assert result.returncode != 0
    assert "spec.logSubcommand" in result.stderr and "Unsupported value" in result.stderr
