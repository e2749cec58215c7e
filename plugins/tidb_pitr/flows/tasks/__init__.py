"""Task bodies: what each flow's tasks do, one module per flow, calling `planning`, `cr` and the hooks.

`guard`, `snapshot`, `guard_status` (what the guard publishes for the page),
`guard_schedule` (clusters run by a BackupSchedule), `retention`, `restore`, `drill` and `logical`
(logical backup and restore). The DAG modules one level up (`flows/*.py`) import these only inside their
task callables, so parsing a DAG file imports none of them (see `flows/__init__.py`).
"""
