"""The PVC a Dumpling export or Lightning import Job works on: `spec.storageSize` bytes, shared by the dump and its
archive (backup-manager `export.go` `dumpTidbClusterData` then `archiveBackupData`, both under `/backup`; `import.go`
downloads the `.tgz` there and unpacks it beside itself). A step that does not fit fails as the write would."""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
NO_SPACE = "no space left on device"  # ENOSPC as Go's os package prints it


def quantity_bytes(quantity: str) -> int | None:
    """A Kubernetes quantity ("10Gi", "500M", "1.5G") in bytes; None when it is not one."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", quantity.strip())
    if found is None:
        return None
    return int(float(found.group(1)) * _UNITS[found.group(2) or ""])


def write_error(path: str) -> str:
    """What a write that does not fit on the volume returns: `write <path>: no space left on device`."""
    return f"write {path}: {NO_SPACE}"
