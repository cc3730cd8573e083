"""`--help` says what runs when nothing is given: ports, rules, what no rules at all means."""

from __future__ import annotations

import pytest

from wireproxy.cli import main
from wireproxy.config import Config
from wireproxy.config.packs import RULES_DIR


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())       # argparse wraps lines: compare words


def test_serve_help_shows_the_defaults(capsys):
    text = help_text(capsys, "serve")
    listener = Config.defaults().postgres[0]
    assert f"(default {listener.listen})" in text and f"(default {listener.upstream})" in text
    assert "(default rules/default.toml)" in text and str(RULES_DIR) in text
    assert "no recording" in text and "no admin API" in text
    assert "With no rule files at all" in text and "unjudged and results unmasked" in text
    assert "wireproxy.key beside --log-dir" in text


def test_demo_help_says_what_it_runs(capsys):
    text = help_text(capsys, "demo")
    assert "free loopback port" in text and "rules/default.toml and rules/demo.toml" in text
    assert "No admin API" in text


@pytest.mark.parametrize("argv", [("sessions", "list"), ("sessions", "show"), ("keys", "list")])
def test_readers_say_where_they_look(capsys, argv):
    text = help_text(capsys, *argv)
    assert "beside" in text and "wireproxy.key" in text
