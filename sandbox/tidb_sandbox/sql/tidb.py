"""How the endpoints introduce themselves: TiDB's version strings for a cluster's release."""

from __future__ import annotations

DEFAULT_RELEASE = "v8.5.2"
MYSQL_COMPAT = "8.0.11"  # TiDB reports this MySQL version before its own
VERSION_COMMENT = "TiDB Server (Apache License 2.0) Community Edition, MySQL 8.0 compatible"


def version(release: str) -> str:
    """SELECT VERSION() and the handshake's server version, e.g. 8.0.11-TiDB-v8.5.2."""
    return f"{MYSQL_COMPAT}-TiDB-{release}"


def tidb_version(release: str) -> str:
    """SELECT TIDB_VERSION(), in the layout of TiDB's printer.GetTiDBInfo. Build facts a real binary
    carries are "None", as TiDB prints them when a build did not set them."""
    return "\n".join([
        f"Release Version: {release}",
        "Edition: Community",
        "Git Commit Hash: None",
        "Git Branch: None",
        "UTC Build Time: None",
        "GoVersion: None",
        "Race Enabled: false",
        "Check Table Before Drop: false",
        "Store: tikv",
    ])
