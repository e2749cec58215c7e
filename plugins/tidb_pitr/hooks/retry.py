"""Retrying Kubernetes API calls: which failures are transient, and how long to keep trying.

A 429 is the apiserver refusing a request before handling it; a 5xx or a cut connection may come after the
server applied the request, which matters to a create (`Fault.maybe_applied`). Certificate problems and
real answers (404, 409, 422, ...) are not retried.

The loop is tenacity's (`Budget.attempts()`); what is kept here is what tenacity does not know: the
classification of faults, one budget of attempts and time shared by every request of one hook call (a create
and its read-back), and the policy's injected `sleep` (tests record the waits instead of sleeping).
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, Retrying, retry_if_exception
from urllib3 import exceptions as urllib3_errors

from ..units import format_duration

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})

# Failures that happen before the request is sent: retrying them can never repeat a write.
_NOT_SENT = (urllib3_errors.ConnectTimeoutError, ConnectionRefusedError)  # NewConnectionError is a ConnectTimeout
# Failures after the request may have been sent: the server may have applied it.
_CUT = (urllib3_errors.ProtocolError, urllib3_errors.TimeoutError, ConnectionError, TimeoutError, ssl.SSLEOFError)


# -- what is transient ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """A failure worth retrying: what it was, whether the server may have applied it, and its Retry-After."""

    reason: str
    maybe_applied: bool
    retry_after: float | None = None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (MaxRetryError.reason, ProtocolError's args, `raise ... from`).

    Not `__context__`: an unrelated error raised while handling a connection error is not a connection error.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, *current.args]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def _retry_after(exc: ApiException) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException, retry_status: frozenset[int] = TRANSIENT_STATUS) -> Fault | None:
    """A `Fault` when `exc` is worth retrying, else None (a real answer, or a broken configuration)."""
    if isinstance(exc, ApiException):
        if exc.status in retry_status:
            # A 429 is the apiserver's flow control refusing the request before handling it.
            return Fault(f"HTTP {exc.status}", maybe_applied=exc.status != 429, retry_after=_retry_after(exc))
        # The client turns a bare SSLError into status 0: an EOF is a cut TLS connection, the rest is not transient.
        if exc.status == 0 and "EOF" in str(exc.reason):
            return Fault(f"TLS connection cut: {str(exc.reason).splitlines()[-1]}", maybe_applied=True)
        return None
    causes = list(_causes(exc))
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return None
    reason = f"{type(exc).__name__}: {exc}"
    if any(isinstance(c, _NOT_SENT) for c in causes):
        return Fault(f"connection failed: {reason}", maybe_applied=False)
    if any(isinstance(c, _CUT) for c in causes):
        return Fault(f"connection cut: {reason}", maybe_applied=True)
    return None


# -- how long to keep trying -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of one hook call: it gives up at its `max_attempts`-th transient failure or when the next
    wait would end past `budget` seconds from its start. Waits double from `base_delay` up to `max_delay`,
    with jitter; a Retry-After is honoured up to `max_retry_after`."""

    max_attempts: int = 10
    budget: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, failures: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
        if retry_after is None:
            return backoff
        return max(backoff, min(retry_after, self.max_retry_after))


class Budget:
    """One call's attempts and deadline, shared by every request the call makes (a create and its read-back).

    `for attempt in budget.attempts(): with attempt: ...` runs one request on tenacity: a transient fault is
    counted, logged and waited out with the policy's sleep; a real answer, or the budget spent, re-raises.
    """

    def __init__(self, policy: RetryPolicy, what: str, log: Any) -> None:  # the hook's (structlog) logger
        self.policy, self.what, self.log = policy, what, log
        self.started = time.monotonic()
        self.failures = 0
        # Some failed attempt may have been applied by the server (a write answered 5xx, a cut connection).
        self.maybe_applied = False
        # The last transient fault, while its request is being retried (None before any, or after a success).
        self.fault: Fault | None = None

    def attempts(self, retry_status: frozenset[int] = TRANSIENT_STATUS, step: str = "") -> Retrying:
        """Tenacity's loop over one request, within this budget."""
        what = f"{self.what} ({step})" if step else self.what
        return Retrying(
            retry=retry_if_exception(lambda exc: classify(exc, retry_status) is not None),
            after=lambda state: self._record(state, retry_status),
            wait=self._wait,
            stop=self._spent,
            before_sleep=lambda state: self._retrying(state, what),
            retry_error_callback=lambda state: self._give_up(state, what),
            sleep=self.policy.sleep,
        )

    def _record(self, state: RetryCallState, retry_status: frozenset[int]) -> None:
        self.fault = classify(_error(state), retry_status)
        self.failures += 1
        self.maybe_applied = self.maybe_applied or bool(self.fault and self.fault.maybe_applied)

    def _wait(self, state: RetryCallState) -> float:
        return self.policy.delay(self.failures, self.fault.retry_after if self.fault else None)

    def _spent(self, state: RetryCallState) -> bool:
        elapsed = time.monotonic() - self.started
        return self.failures >= self.policy.max_attempts or elapsed + (state.upcoming_sleep or 0) > self.policy.budget

    def _retrying(self, state: RetryCallState, what: str) -> None:
        fault = self.fault
        assert fault is not None
        hint = f" (Retry-After {format_duration(fault.retry_after)})" if fault.retry_after is not None else ""
        self.log.warning("Kubernetes API %s: %s (attempt %d/%d); retrying in %s%s", what, fault.reason,
                         self.failures, self.policy.max_attempts, format_duration(state.upcoming_sleep), hint)

    def _give_up(self, state: RetryCallState, what: str) -> Any:
        exc = _error(state)
        elapsed = time.monotonic() - self.started
        reason = self.fault.reason if self.fault else str(exc)
        self.log.error("Kubernetes API %s: %s (attempt %d/%d); giving up after %s", what, reason,
                       self.failures, self.policy.max_attempts, format_duration(elapsed))
        exc.add_note(f"tidb_pitr: gave up on {what} after {self.failures} attempts in {format_duration(elapsed)}")
        raise exc


def _error(state: RetryCallState) -> BaseException:
    exc = state.outcome.exception() if state.outcome is not None else None
    assert exc is not None  # tenacity calls these hooks after a failed attempt only
    return exc
