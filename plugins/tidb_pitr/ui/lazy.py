"""An ASGI app that imports the real one on its first request.

Every Airflow process loads plugins (workers for each task, the scheduler, the triggerer), but only the
api-server serves HTTP: importing FastAPI and Airflow's API security in the others would add seconds to each.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyAsgiApp:
    def __init__(self, target: str) -> None:
        self.target = target  # "module:attribute"
        self._app: Any = None

    def load(self) -> Any:
        if self._app is None:
            module, _, attribute = self.target.partition(":")
            self._app = getattr(importlib.import_module(module), attribute)
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.load()(scope, receive, send)

    def __repr__(self) -> str:  # what `airflow plugins` and the plugins API show
        return f"LazyAsgiApp({self.target!r})"
