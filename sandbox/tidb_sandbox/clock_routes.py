"""The clock's HTTP routes under /sandbox/v1/clock: read it, advance it (manual mode), wait until the sandbox is idle.

GET  /sandbox/v1/clock           mode, now (RFC 3339), time (Unix s), monotonic; manual: elapsed, sleepers, nextWake
POST /sandbox/v1/clock/advance   {"seconds": N}: manual mode only (409 on a real clock); wakes every sleeper due
                                 within the span in time order, settles, answers as GET
POST /sandbox/v1/clock/settle    returns once nothing in the sandbox can run now and no storage call is in flight;
                                 on a real clock nothing is advanced (it waits only for the work that can run now)
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from . import clock

PREFIX = "/sandbox/v1/clock"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


async def get_clock(request: web.Request) -> web.Response:
    return _json(clock.describe())


async def advance(request: web.Request) -> web.Response:
    current = clock.current()
    if not isinstance(current, clock.ManualClock):
        return _json({"error": f"the sandbox runs on the {current.mode} clock, which only the machine moves: "
                               "start it with `up --clock manual` to advance time"}, 409)
    try:
        body = await request.json()
        seconds = float(body["seconds"])
    except (ValueError, TypeError, KeyError) as exc:
        return _json({"error": f'the body must be {{"seconds": N}}: {exc}'}, 400)
    if not math.isfinite(seconds) or seconds < 0:
        return _json({"error": f"time only moves forward: seconds must be a finite number >= 0, got {seconds}"}, 400)
    try:
        await current.advance(seconds)
    except clock.NotIdle as exc:
        return _json({"error": str(exc), **clock.describe()}, 503)
    return _json(clock.describe())


async def settle(request: web.Request) -> web.Response:
    try:
        await clock.current().settle()
    except clock.NotIdle as exc:
        return _json({"error": str(exc), **clock.describe()}, 503)
    return _json(clock.describe())


def install_clock_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX, get_clock)
    app.router.add_post(f"{PREFIX}/advance", advance)
    app.router.add_post(f"{PREFIX}/settle", settle)
