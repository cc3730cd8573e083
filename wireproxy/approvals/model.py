"""The approvals vocabulary as plain data: what is asked, what was decided, what a grant is.

An Approval is the shared record of one request, the same in every store and on every
instance: the request, its state (pending -> approved | denied | timed_out | withdrawn, once),
who decided, when and why. Times are wall-clock seconds (time.time()): instances compare them.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, replace
from typing import Any

PENDING, APPROVED, DENIED, TIMED_OUT, WITHDRAWN = "pending", "approved", "denied", "timed_out", "withdrawn"
STATES = (PENDING, APPROVED, DENIED, TIMED_OUT, WITHDRAWN)
ONCE, WINDOW = "once", "window"
DEFAULT_TIMEOUT = 300.0
GROUP_PREFIX = "group:"


class ApprovalError(Exception):
    """A request to the broker that cannot be done; `status` is the HTTP status it maps to."""

    status = 400
    code = "bad_request"


class UnknownApproval(ApprovalError):
    status, code = 404, "not_found"


class AlreadyDecided(ApprovalError):
    status, code = 409, "already_decided"

    def __init__(self, message: str, approval: "Approval | None" = None):
        super().__init__(message)
        self.approval = approval


class NotAllowed(ApprovalError):
    """Self-approval, or an approver the rule does not name."""

    status, code = 403, "forbidden"


class ApprovalUnavailable(ApprovalError):
    """The store cannot be reached: nothing can be asked or decided. Fail closed (deny)."""

    status, code = 503, "unavailable"


@dataclass(frozen=True)
class ApprovalRequest:
    user: str
    database: str
    statement: str                       # already masked: it is shown to people and logged
    rule_id: str
    approvers: tuple[str, ...] = ()      # users or "group:NAME"; empty: anyone but the user
    timeout: float | None = None         # seconds; None: the broker's default
    fingerprint: str = ""                # the statement modulo constants; "" allows no window
    source: str = "postgres"             # postgres | http | mcp
    session_id: str | None = None
    client: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "approvers", tuple(self.approvers))
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"approval timeout must be positive, not {self.timeout!r}")


@dataclass(frozen=True)
class Outcome:
    approved: bool
    approver: str | None = None
    reason: str = ""
    timed_out: bool = False
    grant: str = ONCE                    # once | window

    @property
    def message(self) -> str:
        """What the client is told when the statement does not run."""
        if self.timed_out:
            return "approval timed out"
        if self.approver is None:
            return f"approval withdrawn: {self.reason}" if self.reason else "approval withdrawn"
        return f"denied by {self.approver}: {self.reason}" if self.reason else f"denied by {self.approver}"


@dataclass(frozen=True)
class Grant:
    """A window grant: this user may run statements of this fingerprint until `expires`."""

    user: str
    fingerprint: str
    expires: float
    approval_id: str
    approver: str
    rule_id: str
    reason: str = ""

    def record(self) -> dict[str, Any]:
        """A session-log record for a statement this grant let through."""
        return {"type": "approval", "event": "window_used", "id": self.approval_id, "rule": self.rule_id,
                "user": self.user, "approver": self.approver, "until": iso(self.expires)}


@dataclass(frozen=True)
class Approval:
    id: str
    request: ApprovalRequest
    created: float
    expires: float                       # a pending request times out here
    state: str = PENDING
    approver: str | None = None
    reason: str = ""
    decided: float | None = None
    grant: str = ONCE
    window: float | None = None          # seconds of a window grant
    instance: str = ""                   # the broker that holds the statement

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    @property
    def grant_until(self) -> float | None:
        if self.state != APPROVED or self.grant != WINDOW or self.window is None or self.decided is None:
            return None
        return self.decided + self.window

    def window_grant(self) -> Grant | None:
        until = self.grant_until
        if until is None or not self.request.fingerprint:
            return None
        return Grant(self.request.user, self.request.fingerprint, until, self.id, self.approver or "",
                     self.request.rule_id, self.reason)

    def outcome(self) -> Outcome:
        return Outcome(approved=self.state == APPROVED, approver=self.approver, reason=self.reason,
                       timed_out=self.state == TIMED_OUT, grant=self.grant)

    def decide(self, state: str, approver: str | None, reason: str, when: float,
               grant: str = ONCE, window: float | None = None) -> "Approval":
        return replace(self, state=state, approver=approver, reason=reason, decided=when,
                       grant=grant, window=window)

    def to_dict(self) -> dict[str, Any]:
        """The shape the admin API returns and the stores keep."""
        r = self.request
        return {"id": self.id, "state": self.state, "user": r.user, "database": r.database,
                "statement": r.statement, "rule": r.rule_id, "approvers": list(r.approvers),
                "fingerprint": r.fingerprint, "source": r.source, "session": r.session_id,
                "client": r.client, "timeout": r.timeout,
                "created": iso(self.created), "expires": iso(self.expires),
                "approver": self.approver, "reason": self.reason,
                "decided": iso(self.decided) if self.decided is not None else None,
                "grant": self.grant, "window": self.window,
                "grant_until": iso(self.grant_until) if self.grant_until is not None else None,
                "instance": self.instance,
                "created_ts": self.created, "expires_ts": self.expires, "decided_ts": self.decided}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Approval":
        request = ApprovalRequest(doc["user"], doc["database"], doc["statement"], doc["rule"],
                                  tuple(doc.get("approvers") or ()), doc.get("timeout"),
                                  doc.get("fingerprint") or "", doc.get("source") or "postgres",
                                  doc.get("session"), doc.get("client"))
        return cls(doc["id"], request, float(doc["created_ts"]), float(doc["expires_ts"]),
                   doc.get("state", PENDING), doc.get("approver"), doc.get("reason") or "",
                   doc.get("decided_ts"), doc.get("grant") or ONCE, doc.get("window"),
                   doc.get("instance") or "")


def check_approver(approval: Approval, approver: str, *, deny: bool = False,
                   groups_of=lambda user: frozenset()) -> None:
    """Raise NotAllowed unless `approver` may decide `approval`. Nobody approves their own
    request (they may withdraw it by denying); a rule that names approvers limits who decides:
    users by name, or `group:NAME` for members of NAME (`groups_of(user)` tells)."""
    request = approval.request
    if approver == request.user:
        if deny:
            return
        raise NotAllowed(f"{approver} asked for this approval and cannot approve it")
    names = request.approvers
    if not names:
        return
    groups = None
    for name in names:
        if name.startswith(GROUP_PREFIX):
            groups = groups if groups is not None else groups_of(approver)
            if name[len(GROUP_PREFIX):] in groups:
                return
        elif name == approver:
            return
    raise NotAllowed(f"{approver} is not an approver for rule {request.rule_id} "
                     f"(approvers: {', '.join(names)})")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> float:
    """Seconds from 90, 90.5, "90", "90s", "15m", "2h", "1d"; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (like 90, 30s, 15m, 2h, 1d)")
        unit = match.group(2).lower() if match.group(2) else None
        seconds = float(match.group(1)) * _UNITS[unit]
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["APPROVED", "DENIED", "PENDING", "TIMED_OUT", "WITHDRAWN", "ONCE", "WINDOW", "STATES",
           "AlreadyDecided", "Approval", "ApprovalError", "ApprovalRequest", "ApprovalUnavailable",
           "DEFAULT_TIMEOUT", "Grant", "NotAllowed", "Outcome", "UnknownApproval", "check_approver",
           "format_duration", "iso", "parse_duration"]
