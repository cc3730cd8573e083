"""Reloading rule files while serving: a broken file names its line as at start-up, and a file
caught halfway through being written is never loaded."""

from __future__ import annotations

import io
import json

import pytest

from wireproxy.config import ConfigError
from wireproxy.config.rulebook import RuleBooks
from wireproxy.config.tomlfile import TomlFile
from wireproxy.telemetry import logs

GOOD = '[[rule]]\nid = "no-drop"\naction = "block"\nstatements = ["drop"]\n'
MORE = GOOD + '\n[[rule]]\nid = "no-truncate"\naction = "block"\nstatements = [\n  "truncate",\n]\n'


@pytest.fixture
def events():
    stream = io.StringIO()
    logs.set_stream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logs.set_stream(__import__("sys").stderr)


def rule_ids(book) -> list[str]:
    return [r.id for r in book.policy.ruleset.rules]


@pytest.mark.parametrize("text, line", [
    ('[[rule]]\nid = "x"\nstatements = ["drop",\n', 3),       # unclosed array
    ('mode = "enforce"\nmessage = """never closed\n\n', 2),   # unclosed multi-line string
    ('mode = "enforce"\naction =', 2),                        # a key and nothing
])
def test_an_error_at_the_end_of_the_file_names_a_line(tmp_path, text, line):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        TomlFile.load(path)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}: invalid TOML: ")
    assert "end of document" not in str(info.value)


def test_a_file_broken_while_serving_is_reported_with_file_and_line_as_at_start(tmp_path, events):
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)
    books = RuleBooks()
    book = books.for_files([path])
    broken = MORE.replace('  "truncate",\n]\n', '  "truncate",\n')       # the closing bracket is gone
    path.write_text(broken)
    with pytest.raises(ConfigError) as at_start:
        RuleBooks().for_files([path])
    assert book.reload("SIGHUP") is False
    (failed,) = [e for e in events() if e["event"] == "rules.reload_failed"]
    assert failed["error"] == str(at_start.value) and failed["error"].startswith(f"{path}:")
    assert at_start.value.line is not None and rule_ids(book) == ["no-drop"]     # the old rules stay


def test_the_watcher_loads_a_change_once_it_has_settled(tmp_path, events):
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)
    books = RuleBooks()
    book = books.for_files([path])
    books.reload_changed()
    assert not events()                                     # nothing changed, nothing done
    # What `write_text` or an editor leaves for a moment: the file emptied, then half written.
    path.write_text("")
    books.reload_changed()
    assert rule_ids(book) == ["no-drop"]                    # an empty file would have dropped every rule
    path.write_text(MORE[:len(MORE) - 12])
    books.reload_changed()
    assert rule_ids(book) == ["no-drop"] and not events()   # nor is the torn file reported as broken
    path.write_text(MORE)
    books.reload_changed()
    assert rule_ids(book) == ["no-drop"]                    # changed since the last poll: wait one more
    books.reload_changed()
    assert rule_ids(book) == ["no-drop", "no-truncate"]
    assert [e["event"] for e in events()] == ["rules.reloaded"]
    books.reload_changed()
    assert [e["event"] for e in events()] == ["rules.reloaded"]      # and only once


def test_a_settled_broken_file_is_reported_once(tmp_path, events):
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)
    books = RuleBooks()
    book = books.for_files([path])
    path.write_text('[[rule]]\nid = "x"\naction = "explode"\n')
    for _ in range(4):
        books.reload_changed()
    (failed,) = [e for e in events() if e["event"] == "rules.reload_failed"]
    assert failed["error"].startswith(f"{path}:3: ") and rule_ids(book) == ["no-drop"]
