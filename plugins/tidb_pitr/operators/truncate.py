"""Log truncate: set `logTruncateUntil` and wait for the operator's confirmation (reference section 2.4)."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from ..cr.api import BACKUPS
from ..cr.bodies import truncate_patch
from ..cr.model import BackupView
from ..tso import tso_label, tso_str
from .base import TidbBaseOperator, WaitFailed, require_cr


class TidbLogTruncateOperator(TidbBaseOperator):
    """Delete log data before `until_ts`; done when `log-truncate` is Complete for exactly that value.

    Not `logSuccessTruncateUntil` alone: the operator skips a value not beyond an earlier truncate and
    then leaves that field as it was, so waiting on it would never end.
    """

    template_fields = ("namespace", "backup_name", "until_ts")
    ui_color = "#fff0d7"

    def __init__(self, *, backup_name: str, until_ts: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backup_name = backup_name
        self.until_ts = until_ts

    def execute(self, context: Any) -> dict[str, Any]:
        if self.until_ts in (None, "", "None"):
            raise AirflowSkipException("nothing to truncate: the plan keeps all log data")
        until = int(self.until_ts)
        obj = require_cr(self.hook, BACKUPS, self.backup_name, self.namespace)
        view = BackupView.from_cr(obj)
        # Last line of defence: BR truncates past the checkpoint (even into the future) without complaint.
        if view.checkpoint_ts is None or until > view.checkpoint_ts:
            raise WaitFailed(f"refusing to truncate {self.namespace}/{self.backup_name} until {until}: beyond its "
                             f"log checkpoint {view.checkpoint_ts}, which would make recent times unrestorable")
        if view.commit_ts is None or until <= view.commit_ts:
            raise WaitFailed(f"refusing to truncate {self.namespace}/{self.backup_name} until {until}: not after "
                             f"the log backup's start {view.commit_ts}")
        value = tso_str(until)
        if view.truncate_result(value)[0] == "done":
            self.log.info("Log already truncated until %s", tso_label(until))
            return self._result(obj, value)
        if view.truncate_result(value)[0] == "failed":
            # TiDB Operator never runs a failed truncate again for the same value: ask for one TSO less, which
            # keeps everything the plan keeps and is a new request (the next run may ask for the plan's again).
            self.log.warning("A truncate until %s failed before (%s); asking for %s instead", tso_label(until),
                             view.truncate_result(value)[1], tso_label(until - 1))
            until -= 1
            value = tso_str(until)
        obj = self.hook.merge_patch(BACKUPS, self.backup_name, self.namespace, truncate_patch(until))
        self.log.info("Set logTruncateUntil=%s on %s/%s", tso_label(until), self.namespace, self.backup_name)
        event = self.wait_for(context, plural=BACKUPS, name=self.backup_name, kind="truncate", args={"until": value},
                              current=obj)
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.check_event(event)
        return self._result(event["cr"], event["args"]["until"])

    @staticmethod
    def _result(obj: dict[str, Any], until: str) -> dict[str, Any]:
        view = BackupView.from_cr(obj)
        return {"name": view.name, "namespace": view.namespace, "truncated_until": until,
                "log_success_truncate_until": view.truncated_until}
