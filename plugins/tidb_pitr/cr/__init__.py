"""The vocabulary of TiDB Operator's custom resources, for both API groups (`pingcap.com`, `br.pingcap.com`).

`api` (groups, resources, labels, annotations), `model` (frozen typed views of Backup, Restore and
CompactBackup CRs), `bodies` (the CRs this project creates), `names` (deterministic CR names and storage
folders), `ownership` (what this project may touch), `inventory` (one cluster's Backup CRs, read once),
`leases` (state kept in annotations on the live log backup CR) and `logical` (Dumpling / Lightning CRs and
the dump's check). Pure, except that `inventory` and `leases` take a hook to read and write through.
"""
