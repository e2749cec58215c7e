"""Does a Dumpling dump fit the PVC its Jobs work on? One pure check for the logical backup and restore plans.

The export Job dumps into its PVC and archives the dump beside it (backup-manager `export.go`
`dumpTidbClusterData`, then `archiveBackupData`); the import Job downloads the archive and unpacks it beside
itself. Both need at least the dump plus its archive on one volume of `storage_size`, or the Job fails with
"no space left on device". The last dump's size (its archive, `backupSize`) times two is the least of it: the
unpacked dump is larger than its compressed archive.
"""

from __future__ import annotations

import re

from ..units import format_bytes

_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity ("10Gi", "500M") in bytes; ValueError naming the allowed form otherwise."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?", quantity.strip())
    if found is None:
        raise ValueError(f"storage_size must be a Kubernetes quantity such as '10Gi'; got {quantity!r}")
    return int(float(found.group(1)) * _UNITS[found.group(2) or ""])


def dump_volume_warning(dump: str, dump_bytes: int | None, storage_size: str) -> str | None:
    """A warning when `dump` (its archive of `dump_bytes`) times two exceeds `storage_size`; None when it fits
    or the size is unknown."""
    if not dump_bytes:
        return None
    room = quantity_bytes(storage_size)
    if dump_bytes * 2 <= room:
        return None
    return (f"WARNING: dump {dump} is {format_bytes(dump_bytes)}; the dump and its archive share one PVC, so a "
            f"dump like it needs more than {format_bytes(dump_bytes * 2)}, but logical_backup.storage_size is "
            f"{storage_size} ({format_bytes(room)}): the export (or the Lightning import) will fail with 'no space "
            "left on device'; raise storage_size")
