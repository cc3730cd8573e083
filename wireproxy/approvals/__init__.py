"""Just-in-time approvals: a risky statement is held until a person says yes.

The proxies (pg/, http/) call the Broker (broker.py) and read its plain data (model.py); the
admin API (wireproxy/admin) lets people decide. Stores: in-process (store.py, the default) and
PostgreSQL (pgstore.py), shared by several instances. Webhooks: webhook.py.
"""

from .broker import Broker, Ticket
from .model import (APPROVED, DENIED, PENDING, TIMED_OUT, WITHDRAWN, AlreadyDecided, Approval,
                    ApprovalError, ApprovalRequest, ApprovalUnavailable, Grant, NotAllowed, Outcome,
                    UnknownApproval, parse_duration)
from .store import MemoryStore, Store

__all__ = ["APPROVED", "DENIED", "PENDING", "TIMED_OUT", "WITHDRAWN", "AlreadyDecided", "Approval",
           "ApprovalError", "ApprovalRequest", "ApprovalUnavailable", "Broker", "Grant", "MemoryStore",
           "NotAllowed", "Outcome", "Store", "Ticket", "UnknownApproval", "parse_duration"]
