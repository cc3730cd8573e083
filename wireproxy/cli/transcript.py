"""A recorded session as text: the transcript `wireproxy sessions show` prints.

Everything in a record but its numbers came from a client (SQL, parameters, user and
application names, error texts); each line is escaped on its way out (text.inert), so a
statement cannot drive the reader's terminal.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, TextIO

from ..sessionlog import SessionLogRead
from .text import inert

_LINE_BREAK = re.compile(r"\r?\n")
_CUT = re.compile(r"^result cut by wireproxy rule ([^:]+):")


def parse_ts(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def started_at(read: SessionLogRead) -> str:
    started = (read.header or {}).get("started")
    if started:
        return started
    return read.started.isoformat(timespec="milliseconds").replace("+00:00", "Z") if read.started else ""


def _short_time(ts: Any) -> str:
    when = parse_ts(ts)
    return when.strftime("%H:%M:%S.%f")[:-3] if when else "--:--:--.---"


def write_transcript(read: SessionLogRead, out: TextIO) -> None:
    for line in transcript_lines(read):
        out.write(inert(line, keep="\t") + "\n")


def transcript_lines(read: SessionLogRead) -> list[str]:
    lines: list[str] = []
    write = lines.append
    h = dict(read.header or {})
    write(f"session {read.session_id}")
    facts = [("user", h.pop("user", None)), ("database", h.pop("database", None)),
             ("client", h.pop("client_addr", None)), ("application", h.pop("application_name", None)),
             ("upstream", h.pop("upstream", None))]
    write("  " + "  ".join(f"{k} {v}" for k, v in facts if v not in (None, "")))
    started = h.pop("started", None) or started_at(read)
    version, kid = h.pop("proxy_version", None), h.pop("key_id", None)
    write(f"  started {started}  proxy {version}  key {kid}")
    for key in ("session", "seq", "format"):
        h.pop(key, None)
    for key, value in h.items():
        write(f"  {key}: {_compact(value)}")
    day = (started or "")[:10]
    for rec in read.records:
        ts = rec.get("ts") or ""
        if ts[:10] and ts[:10] != day:
            day = ts[:10]
            write(f"-- {day}")
        lines += describe_record(rec)
    if read.end is not None:
        end = read.end
        line = f"{_short_time(end.get('ts'))}  end ({end.get('reason', 'closed')}): {end.get('records')} records"
        if end.get("results_truncated"):
            line += ", result rows cut at the byte cap"
        write(line)
        if end.get("summary"):
            write(f"{'':14}summary: {_compact(end['summary'])}")
    write(f"log {read.describe()}")
    return lines


_SHOWN = {"seq", "ts", "type", "sql", "statement", "protocol", "params", "decision", "rules", "rule",
          "approval", "duration_ms", "rows", "tag", "error", "result_rows", "result_rows_omitted", "columns",
          "method", "url", "status"}


def describe_record(rec: dict[str, Any]) -> list[str]:
    """A record as transcript lines: time, number, decision, protocol path, statement; then what
    happened. Keys it does not know are shown as `key: value`."""
    if rec.get("type") == "approval":
        return describe_approval(rec)
    pad = " " * 14
    decision = rec.get("decision")
    rules = rec.get("rules") if rec.get("rules") is not None else rec.get("rule")
    if isinstance(rules, str):
        rules = [rules]
    verdict = str(decision or rec.get("type") or "")
    if rules:
        verdict += " " + ",".join(map(str, rules))
    verdict = _stopped_by_proxy(rec) or verdict
    text = rec.get("sql") or rec.get("statement")
    if text is None and rec.get("method"):
        text = f"{rec.get('method')} {rec.get('url', '')}"
    head = f"{_short_time(rec.get('ts'))}  #{rec.get('seq')}"
    if verdict:
        head += f"  [{verdict}]"
    if rec.get("protocol"):
        head += f"  {rec['protocol']}"
    statement_lines = _LINE_BREAK.split(str(text if text is not None else ""))
    lines = [f"{head}  {statement_lines[0]}"]
    lines += [f"{pad}{line}" for line in statement_lines[1:]]
    if rec.get("params") not in (None, []):
        lines.append(f"{pad}params: {_compact(rec['params'])}")
    approvals = rec.get("approval")
    for approval in approvals if isinstance(approvals, list) else [approvals] if approvals else []:
        if isinstance(approval, dict):
            who = approval.get("by") or approval.get("approver") or "?"
            outcome = approval.get("outcome") or approval.get("decision") or "?"
            ident = f" {approval['id']}" if approval.get("id") else ""
            lines.append(f"{pad}approval{ident} {outcome} by {who}")
        else:
            lines.append(f"{pad}approval: {_compact(approval)}")
    outcome = []
    if rec.get("tag"):
        outcome.append(str(rec["tag"]))
    if rec.get("status") is not None:
        outcome.append(f"HTTP {rec['status']}")
    if rec.get("rows") is not None:
        outcome.append(f"{rec['rows']} row" + ("" if rec["rows"] == 1 else "s"))
    if isinstance(rec.get("duration_ms"), (int, float)):
        outcome.append(f"{rec['duration_ms']:.2f} ms")
    if outcome:
        lines.append(f"{pad}-> " + " · ".join(outcome))
    error = rec.get("error")
    if error:
        if isinstance(error, dict):
            lines.append(f"{pad}error {error.get('code', '')}: {error.get('message', _compact(error))}")
        else:
            lines.append(f"{pad}error: {error}")
    if "result_rows" in rec or "result_rows_omitted" in rec:
        rows = rec.get("result_rows") or []
        note = f" (+{rec['result_rows_omitted']} not recorded: byte cap)" if rec.get("result_rows_omitted") else ""
        if rec.get("columns"):
            lines.append(f"{pad}columns: {_compact(rec['columns'])}")
        for row in rows:
            lines.append(f"{pad}| {_compact(row)}")
        if note:
            lines.append(f"{pad}|{note}")
    for key, value in rec.items():
        if key not in _SHOWN:
            lines.append(f"{pad}{key}: {_compact(value)}")
    return lines


def _stopped_by_proxy(rec: dict[str, Any]) -> str | None:
    """A statement the rules allowed whose result wireproxy stopped on the way: `cut RULE` (a
    volume limit, 54000) or `refused` (a mask rule refusing binary rows, 42501); else None."""
    error = rec.get("error")
    if not isinstance(error, dict):
        return None
    message = str(error.get("message") or "")
    cut = _CUT.match(message)
    if error.get("code") == "54000" and cut:
        return f"cut {cut.group(1)}"
    if error.get("code") == "42501" and message.startswith("blocked by wireproxy:") and rec.get("decision") == "allow":
        return "refused"
    return None


_APPROVAL_SHOWN = {"seq", "ts", "type", "event", "id", "rule", "user", "database", "statement", "approvers",
                   "timeout_s", "expires", "approver", "reason", "grant", "window_s", "until", "waited_s",
                   "source", "session", "client"}
_APPROVAL_EVENTS = {"requested": "requested", "approved": "approved", "denied": "denied",
                    "timed_out": "timed out", "withdrawn": "withdrawn", "window_used": "window"}


def describe_approval(rec: dict[str, Any]) -> list[str]:
    """An approval event (the broker's records): who asked, who decided, when, why."""
    pad = " " * 14
    event = str(rec.get("event") or "?")
    head = (f"{_short_time(rec.get('ts'))}  #{rec.get('seq')}  [approval {_APPROVAL_EVENTS.get(event, event)}]"
            f"  {rec.get('id', '?')}")
    lines = []
    if event == "requested":
        lines.append(f"{head}  rule {rec.get('rule')}")
        approvers = ", ".join(map(str, rec.get("approvers") or [])) or f"anyone but {rec.get('user')}"
        wait = f"; times out {rec['expires']}" if rec.get("expires") else ""
        if isinstance(rec.get("timeout_s"), (int, float)):
            wait += f" ({rec['timeout_s']:g} s)"
        lines.append(f"{pad}asked by {rec.get('user')}; approvers: {approvers}{wait}")
        statement = _LINE_BREAK.split(str(rec.get("statement") or ""))
        lines.append(f"{pad}statement: {statement[0]}")
        lines += [f"{pad}           {line}" for line in statement[1:]]
    elif event in ("approved", "denied"):
        text = f"{head}  by {rec.get('approver')}"
        if event == "approved" and rec.get("grant") == "window":
            text += f" (window {rec.get('window_s', 0):g} s, until {rec.get('until')})"
        elif event == "approved":
            text += " (this statement once)"
        lines.append(text + (f": {rec['reason']}" if rec.get("reason") else ""))
    elif event == "window_used":
        lines.append(f"{head}  granted by {rec.get('approver')} for rule {rec.get('rule')}, until {rec.get('until')}")
    else:
        lines.append(head + (f": {rec['reason']}" if rec.get("reason") else ""))
    if isinstance(rec.get("waited_s"), (int, float)):
        lines.append(f"{pad}after {rec['waited_s']:g} s")
    for key, value in rec.items():
        if key not in _APPROVAL_SHOWN and value is not None:
            lines.append(f"{pad}{key}: {_compact(value)}")
    return lines


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
