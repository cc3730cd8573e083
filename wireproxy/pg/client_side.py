"""The inspecting path, client to server: each message judged, recorded and expected.

One handler per message type. A handler forwards what the server should get (the message, or
its substitute) and tells the conversation what answers to expect; HOLD means the message and
everything after it wait (a statement held for approval), to be replayed in order later.
"""

from __future__ import annotations

from protocols.postgres import RAW, FunctionCall, ProtocolError, Query, RemoteProtocolError

from ..policy import Action, Decision, column_lookup_sql, routine_lookup_sql
from ..policy.decision import ALLOW, INTERNAL_ERROR
from . import enforcement as subst
from .lookups import Lookup, as_text, function_name, function_name_sql
from .plain import well_formed
from .protocol import (BIND, CLOSE, COPY_DONE, COPY_FAIL, DESCRIBE, EXECUTE, FLUSH, FUNCTION_CALL,
                       PARSE, PASSWORD, QUERY, SYNC, TERMINATE, Wait)

HOLD, STOP = 1, 2
_FLUSH = b"H\0\0\0\4"


def cstring_at(message: bytes, start: int) -> tuple[str, int]:
    """The NUL-terminated name at `start` and the offset after it; the codec's error if none."""
    end = message.find(b"\0", start)
    if end < 0:
        raise RemoteProtocolError(f"message {chr(message[0])!r}: name without terminator")
    return message[start:end].decode("utf-8", "surrogateescape"), end + 1


def parse_fields(message: bytes) -> tuple[str, str, bytes]:
    """A Parse's statement name, SQL and parameter type OIDs (packed, decoded only when a record
    needs them): read by slicing, with the same checks as Parse.decode."""
    name, end = cstring_at(message, 5)
    sql, end = cstring_at(message, end)
    rest = len(message) - end
    if rest < 2 or rest != 2 + 4 * int.from_bytes(message[end:end + 2], "big"):
        raise RemoteProtocolError("Parse: parameter types do not match their count")
    return name, sql, message[end + 2:]


def query_sql(message: bytes) -> str:
    if message.find(b"\0", 5) == len(message) - 1:      # the common, well-formed case
        return message[5:-1].decode("utf-8", "surrogateescape")
    return Query.decode(message[5:]).sql


def describe_portal(portal: str) -> bytes:
    name = portal.encode("utf-8", "surrogateescape")
    return b"D" + (len(name) + 6).to_bytes(4, "big") + b"P" + name + b"\0"


class ClientSide:
    def __init__(self, relay):
        self.relay = relay
        self.conversation = relay.conversation
        self.enforcer = relay.enforcer
        self.masks = relay.masks
        self.limits = relay.limits
        self.recorder = relay.recorder
        self.out = relay.to_server
        self._failed_lookup: str | None = None     # a statement whose catalog lookup failed
        self.handlers = {
            QUERY: self.query, PARSE: self.parse, BIND: self.bind, DESCRIBE: self.describe,
            EXECUTE: self.execute, CLOSE: self.close, SYNC: self.sync, FUNCTION_CALL: self.function_call,
            FLUSH: self.out.append, PASSWORD: self.out.append, COPY_DONE: self.copy_end,
            COPY_FAIL: self.copy_end, TERMINATE: self.terminate,
        }

    def feed(self, items: list[tuple[int, bytes]]) -> None:
        holds, handlers, out = self.relay.holds, self.handlers, self.out
        for index, (code, message) in enumerate(items):
            if holds.active:                 # a message ahead of these waits on something
                holds.keep(items[index:])
                return
            if code == RAW:                  # CopyData, streamed
                out.append(message)
                continue
            handler = handlers.get(code)
            if handler is None:
                raise ProtocolError(f"invalid frontend message type {chr(code)!r}")
            outcome = handler(message)
            if outcome is HOLD:
                holds.keep(items[index:])
                return
            if outcome is STOP:
                return

    # ------------------------------------------------------------------- statements --

    def query(self, message: bytes):
        sql = query_sql(message)
        decision = self._with_catalog(self.enforcer.query(sql), sql)
        if decision is None:
            return HOLD
        if decision.action == Action.APPROVE and self.relay.hold_for_approval(sql, decision):
            return HOLD
        entry = self.conversation.expect(Wait.QUERY)
        if self.recorder is not None and entry is not None:
            entry.record = self.recorder.statement(sql, "simple", decision)
        self._limit(decision, entry)
        self.out.append(self.enforcer.enforce(decision, entry, sql, "simple", message,
                                              lambda: subst.substitute_query(decision.rule_id)))
        return None

    def parse(self, message: bytes):
        name, sql, types = parse_fields(message)
        decision = self._with_catalog(self.enforcer.parse(name, sql, types), sql)
        if decision is None:
            return HOLD
        if decision.action == Action.APPROVE and self.relay.hold_for_approval(sql, decision):
            return HOLD
        entry = self.conversation.expect(Wait.PARSE)
        if self.recorder is not None and entry is not None and not decision.allowed:
            entry.record = self.recorder.statement(sql, "extended", decision)
        self.out.append(self.enforcer.enforce(decision, entry, sql, "extended", message,
                                              lambda: subst.substitute_parse(name, decision.rule_id)))
        return None

    def bind(self, message: bytes):
        portal, end = cstring_at(message, 5)
        name, _ = cstring_at(message, end)
        if self.masks is not None:
            self.masks.bound(portal)
        decision = self.enforcer.bind(portal, name, message)
        if decision is None:
            self.conversation.expect(Wait.BIND)
            self.out.append(message)
            return None
        sql = self.enforcer.statements[name].sql
        decision = self._with_catalog(decision, sql)
        if decision is None:
            return HOLD
        if decision.action == Action.APPROVE and self.relay.hold_for_approval(sql, decision):
            return HOLD
        entry = self.conversation.expect(Wait.BIND)
        if self.recorder is not None and entry is not None and not decision.allowed:
            entry.record = self.recorder.statement(sql, "extended", decision)
        self.out.append(self.enforcer.enforce(decision, entry, sql, "extended", message,
                                              lambda: subst.substitute_bind(message, name)))
        return None

    def execute(self, message: bytes):
        if not well_formed(EXECUTE, message):
            raise RemoteProtocolError("malformed message 'E'")
        portal = cstring_at(message, 5)[0]
        conversation = self.conversation
        if self.masks is not None and not conversation.discarding and self.masks.describe_first(portal):
            own = conversation.internal(Wait.DESCRIBE)     # so its rows have a plan
            if own is not None:
                own.kind, own.portal = "P", portal
                self.out.append(describe_portal(portal))
        entry = conversation.expect(Wait.EXECUTE)
        if entry is not None:
            entry.portal = portal
            known = self.enforcer.portals.get(portal)
            if known is not None:
                statement = known.statement
                entry.counts = known.counts
                if self.recorder is not None:
                    params = self.recorder.params(known.bind, statement.param_types)
                    entry.record = self.recorder.statement(statement.sql, "extended", statement.decision, params)
                self._limit(statement.decision, entry)
        self.out.append(message)
        if entry is not None and entry.limits is not None:
            # The rest of the batch waits for this result's end: if it is cut, the batch must
            # fail on the server too (see ServerSide.answer). Our Flush gets the rows out.
            entry.held = True
            self.relay.holds.hold()
            self.out.append(_FLUSH)
        return None

    def _with_catalog(self, decision, sql: str):
        """A decision that needs catalog facts this session lacks (the bodies of routines it
        calls, the columns a WHERE is decided by): look them up in band and return None, so the
        message waits and is judged again when they are in. A decision to use as it is else."""
        routines, columns = decision.routines_needed, decision.columns_needed
        if not (routines or columns):
            return decision
        conversation = self.conversation
        if conversation.discarding or conversation.copy_in or (
                conversation.transaction_status == "E" and conversation.status_known):
            return decision               # the server skips or fails it whatever it calls
        if self._failed_lookup == sql:
            self._failed_lookup = None
            if conversation.transaction_status == "E":
                return decision
            return Decision(Action.BLOCK, INTERNAL_ERROR, "wireproxy could not look up in the catalog "
                            "what this statement calls or reads", (INTERNAL_ERROR,))
        judge = self.enforcer.judge
        if routines:
            learn, names, query = judge.learn_routines, routines, routine_lookup_sql(routines)
        else:
            learn, names, query = judge.learn_columns, columns, column_lookup_sql(columns)

        def learned(rows) -> None:
            if rows is None:
                self._failed_lookup = sql
            else:
                learn(names, as_text(rows))
        self.relay.ask(Lookup(query, learned))
        return None

    def _limit(self, decision, entry) -> None:
        limits = self.limits
        if entry is not None and (decision.limits is not None or limits.cursors):
            limits.attach(decision, entry)
            if entry.limits is not None:
                self.relay.reframe()

    # ---------------------------------------------------------------- everything else --

    def describe(self, message: bytes):
        if not well_formed(DESCRIBE, message):
            raise RemoteProtocolError("malformed message 'D'")
        entry = self.conversation.expect(Wait.DESCRIBE)
        kind, name = chr(message[5]), cstring_at(message, 6)[0]
        if entry is not None:
            entry.kind, entry.portal = kind, name
        if self.masks is not None and kind == "P":
            self.masks.described_by_client(name)
        self.out.append(message)

    def close(self, message: bytes):
        if not well_formed(CLOSE, message):
            raise RemoteProtocolError("malformed message 'C'")
        if message[5:6] == b"S":
            self.enforcer.close_statement(cstring_at(message, 6)[0])
        self.conversation.expect(Wait.CLOSE)
        self.out.append(message)

    def sync(self, message: bytes):
        self.conversation.sync()
        self.out.append(message)

    def copy_end(self, message: bytes):
        self.conversation.copy_end()
        self.out.append(message)

    def terminate(self, message: bytes):
        self.out.append(message)
        self.relay.terminated()
        return STOP

    def function_call(self, message: bytes):
        """A FunctionCall names its function by OID: resolve it once, in band, then judge it."""
        call = FunctionCall.decode(message[5:])
        enforcer, conversation = self.enforcer, self.conversation
        if enforcer.judge is None:
            self._forward_call(call, message, ALLOW)
        elif call.function_oid in enforcer.function_names:
            self._judged_call(call, message)
        elif conversation.discarding or conversation.copy_in or (
                conversation.transaction_status == "E" and conversation.status_known):
            self._unrunnable_call()
        else:
            def resolved(rows: list[tuple] | None) -> None:
                if rows is None and conversation.transaction_status == "E":
                    self._unrunnable_call()         # our lookup failed as the call would have
                    return
                if rows is not None:
                    enforcer.function_names[call.function_oid] = function_name(rows)
                self._judged_call(call, message)
            self.relay.ask(Lookup(function_name_sql(call.function_oid), resolved))
        return None

    def _unrunnable_call(self) -> None:
        """No lookup can run now, and the server fails or skips this call whatever it names (a
        failed transaction, a skip to Sync, a copy): it gets a call that can never run in its
        place, and answers as it would have for the original."""
        self.conversation.expect(Wait.FUNCTION)
        self.out.append(subst.substitute_function_call())

    def _judged_call(self, call: FunctionCall, message: bytes) -> None:
        self._forward_call(call, message, self.enforcer.function(call.function_oid))

    def _forward_call(self, call: FunctionCall, message: bytes, decision) -> None:
        name = self.enforcer.function_names.get(call.function_oid)
        label = f"<function call {name or 'oid ' + str(call.function_oid)}>"
        entry = self.conversation.expect(Wait.FUNCTION)
        if self.recorder is not None and entry is not None:
            entry.record = self.recorder.statement(label, "fastpath", decision)
        self.out.append(self.enforcer.enforce(decision, entry, label, "fastpath", message,
                                              subst.substitute_function_call))
