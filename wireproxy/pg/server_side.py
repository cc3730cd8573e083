"""The inspecting path, server to client: each answer matched to what it answers, then handed
to the collaborators (masks, limits, records, the blocked statement's error) before it goes out.

After a cut result the client has its error already: until the ReadyForQuery that ends it,
whatever the server still sends for that statement and the rest of its batch or query string is
read and dropped (`relay.muted`), as the client expects after an error; notifications and
parameter changes still go through, as they concern the session, not the statement.
"""

from __future__ import annotations

from protocols.postgres import RAW, ParameterStatus

from . import limits as verdicts
from .plain import is_fatal, key_data, ready_status
from .protocol import (BIND_OK, CLOSE_OK, COMPLETE, COPY_DATA, COPY_IN, DATA_ROW, EMPTY_QUERY, ERROR,
                       KEY_DATA, NO_DATA, NOTICE, NOTIFICATION, PARAM_STATUS, PARSE_OK, READY,
                       ROW_DESCRIPTION, SUSPENDED, Phase, Wait)
from .rowmasks import REFUSED

# What still reaches a muted client: the end, and what concerns the session as a whole.
_HEARD_WHILE_MUTED = frozenset({READY, NOTIFICATION, PARAM_STATUS})
_FORGETS_STATEMENTS = frozenset({b"DISCARD ALL", b"DEALLOCATE ALL"})


class ServerSide:
    def __init__(self, relay):
        self.relay = relay
        self.conversation = relay.conversation
        self.enforcer = relay.enforcer
        self.masks = relay.masks
        self.limits = relay.limits
        self.recorder = relay.recorder
        self.out = relay.to_client
        answer = self.answer
        self.handlers = {
            DATA_ROW: self.row, READY: self.ready, ERROR: self.error, ROW_DESCRIPTION: self.row_description,
            NO_DATA: self.no_data, COMPLETE: answer, SUSPENDED: answer, EMPTY_QUERY: answer,
            PARSE_OK: answer, BIND_OK: answer, CLOSE_OK: answer, COPY_DATA: self.copy_data,
            COPY_IN: self.copy_in, KEY_DATA: self.key_data, PARAM_STATUS: self.parameter_status,
        }
        if self.masks is not None:
            self.handlers[NOTICE] = self.handlers[NOTIFICATION] = self.masked

    def feed(self, items: list[tuple[int, bytes]]) -> None:
        relay, conversation, handlers, out = self.relay, self.conversation, self.handlers, self.out
        for code, message in items:
            head = conversation.head
            if head is not None and head.lookup is not None and code != ERROR:
                self.lookup_reply(head, code, message)
                continue
            if code == RAW:
                if not relay.muted:
                    out.append(message)
                continue
            handler = handlers.get(code)
            if handler is not None:
                message = handler(head, message)
            if message is not None and (not relay.muted or code in _HEARD_WHILE_MUTED):
                out.append(message)

    # ---------------------------------------------------------------------- results --

    def row(self, head, message: bytes):
        if self.relay.muted:
            return None
        limits = self.limits
        if limits.active and head is not None and head.limits is not None:
            verdict = limits.row(head, len(message))
            if verdict != verdicts.PASS:
                if verdict == verdicts.CUT:
                    self.relay.cancel_query("result cut")
                return None
        if self.masks is not None:
            message = self.masks.row(head, message)
            if message is REFUSED:
                if limits.refuse(head, self.masks.refuse_reason(head)):
                    self.relay.cancel_query("result refused")
                    self.relay.reframe()
                return None
        recorder = self.recorder
        if recorder is not None and recorder.capturing and head is not None and head.record is not None:
            recorder.row(head.record, message)
            if not recorder.capturing:
                self.relay.reframe()
        return message

    def copy_data(self, head, message: bytes):
        """COPY TO rows: counted against limits and masked like rows."""
        limits = self.limits
        if limits.active and head is not None and head.limits is not None:
            verdict = limits.row(head, len(message))
            if verdict != verdicts.PASS:
                if verdict == verdicts.CUT:
                    self.relay.cancel_query("result cut")
                return None
        return self.masks.message(COPY_DATA, message) if self.masks is not None else message

    def row_description(self, head, message: bytes):
        if self.masks is not None:
            self.masks.row_description(head, message)
        return self.answer(head, message)

    def no_data(self, head, message: bytes):
        entry = self.conversation.answered(NO_DATA)
        if entry is not None and self.masks is not None:
            self.masks.no_data(entry)
        return self._completed(entry, message)

    def answer(self, head, message: bytes):
        """Everything ANSWERS lists: the entry it completes, if any."""
        code = message[0]
        if head is not None and head.cut and (code == COMPLETE or code == SUSPENDED):
            # The result was cut: its end is our error, and what the server still says for this
            # statement or its batch is dropped up to ReadyForQuery. The server finished it
            # before our cancel landed, so an extended batch is made to fail there too.
            message = self.limits.cut_error(head)
            if head.record is not None:
                self.recorder.error(head.record, message)
            self.out.append(message)
            self.relay.muted = True
            entry = self.conversation.answered(code)
            if entry is not None and entry.held:
                self.relay.fail_batch()
            self._completed(entry, message)
            return None
        if code == COMPLETE:
            if head is not None and head.record is not None:
                self.recorder.completion(head.record, message)
            if message[5:-1] in _FORGETS_STATEMENTS:
                self.enforcer.forget_all()
        return self._completed(self.conversation.answered(code), message)

    def _completed(self, entry, message: bytes):
        if entry is None:
            return message
        self.done(entry)
        return None if entry.internal else message

    def done(self, entry, record: bool = True) -> None:
        if record and entry.record is not None:
            self.recorder.finish(entry.record)
        if entry.limits is not None:
            self.limits.finished(entry)
            if not self.limits.active:
                self.relay.reframe()
        if entry.held:
            entry.held = False
            self.relay.release()
        if entry.lookup is not None:                    # our own query failed: no rows
            entry.lookup.failed = True
            self.relay.answered(entry.lookup)

    # ------------------------------------------------------------- ends and errors --

    def ready(self, head, message: bytes):
        relay = self.relay
        for entry in self.conversation.ready(ready_status(message)):
            self.done(entry)
        relay.muted = False
        if self.masks is not None:
            self.masks.result_done()
        if relay.phase is Phase.AUTH:
            self.out.append(message)
            relay.became_ready()
            return None
        return message

    def error(self, head, message: bytes):
        if self.masks is not None:
            message = self.masks.message(ERROR, message)
        relay = self.relay
        if is_fatal(message):
            relay.server_said_fatal = True
        quiet = head is not None and head.quiet
        if head is not None and head.wait is Wait.LOOKUP:        # our own query between batches:
            head.lookup.failed = True                            # its ReadyForQuery follows
            return message if relay.server_said_fatal else None
        if head is not None:
            if head.blocked is not None and not relay.server_said_fatal:
                message = self.enforcer.swap_error(head, message)
            elif head.cut and not relay.server_said_fatal:
                message = self.limits.cut_error(head)   # our cancel ended it: say why
            if head.record is not None:
                self.recorder.error(head.record, message)
        for entry in self.conversation.error():        # the server now skips to Sync
            self.done(entry, record=entry is head)
        return None if quiet and not relay.server_said_fatal else message

    def copy_in(self, head, message: bytes):
        self.conversation.copy_started()
        return message

    def key_data(self, head, message: bytes):
        self.relay.backend_key = key_data(message)
        return message

    def parameter_status(self, head, message: bytes):
        status = ParameterStatus.decode(message[5:])
        self.enforcer.server_setting(status.name, status.value)
        return message

    def masked(self, head, message: bytes):
        return self.masks.message(message[0], message)

    # ------------------------------------------------------------ our own lookups --

    def lookup_reply(self, head, code: int, message: bytes) -> None:
        """The answer to our own catalog query: read, never forwarded (but for what the server
        says to the session as a whole: notifications, settings). Its errors take the error
        path: a simple query's end at ReadyForQuery, an in-batch one's skip to Sync."""
        lookup = head.lookup
        if code == DATA_ROW:
            lookup.add_row(message)
        elif code == READY or (code == COMPLETE and head.wait is Wait.EXECUTE):
            if code == READY:
                self.conversation.ready(ready_status(message))
            else:
                self.conversation.answered(code)
            head.lookup = None
            self.relay.answered(lookup)
        elif code in (NOTIFICATION, PARAM_STATUS):
            self.out.append(self.masked(head, message) if self.masks is not None and code == NOTIFICATION
                            else message)
