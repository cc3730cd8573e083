"""A misspelled key or value in a config or rule file: the one-line error names the nearest
key the loader knows (the shared Checker, so both loaders say it the same way)."""

from __future__ import annotations

import pytest

from wireproxy.config import ConfigError, load_config
from wireproxy.config.rulefile import parse_rules
from wireproxy.config.tomlfile import did_you_mean


@pytest.mark.parametrize("text, expected", [
    ('[[postgress]]\nlisten = "127.0.0.1:1"\n', ":1: unknown key 'postgress' (did you mean 'postgres'?)"),
    ('[lgo]\ndir = "x"\n', ":1: unknown key 'lgo' (did you mean 'log'?)"),
    ('[log]\ndri = "x"\n', ":2: unknown key 'log.dri' (did you mean 'dir'?)"),
    ('[approvals]\nstore = "postgre"\n', "not 'postgre' (did you mean 'postgres'?)"),
    ('[[postgres]]\nlisten = "127.0.0.1:1"\nupstream = "127.0.0.1:2"\nrule = ["a.toml"]\n',
     ":4: unknown key 'postgres[0].rule' (did you mean 'rules'?)"),
    ('[[postgres]]\nlisten = "127.0.0.1:1"\nupstrem = "127.0.0.1:2"\n',
     ":3: unknown key 'postgres[0].upstrem' (did you mean 'upstream'?)"),
])
def test_config_typos(tmp_path, text, expected):
    path = tmp_path / "wireproxy.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path)) and str(info.value).endswith(expected), str(info.value)


@pytest.mark.parametrize("text, expected", [
    ('mdoe = "audit"\n', "<rules>:1: unknown key 'mdoe' (did you mean 'mode'?)"),
    ('[[rules]]\nid = "a"\n', "<rules>:1: unknown key 'rules' (did you mean 'rule'?)"),
    ('[[rule]]\nid = "a"\naction = "blok"\n', "not 'blok' (did you mean 'block'?)"),
    ('[[rule]]\nid = "a"\naction = "block"\nstatement = ["drop"]\n',
     "<rules>:4: unknown key 'rule[0].statement' (did you mean 'statements'?)"),
    ('[[rule]]\nid = "a"\nacton = "block"\n', "<rules>:3: unknown key 'rule[0].acton' (did you mean 'action'?)"),
    ('[[mask]]\nid = "m"\ncolumn = ["email"]\n', "<rules>:3: unknown key 'mask[0].column' (did you mean 'columns'?)"),
    ('[[mask]]\nid = "m"\ncolumns = ["email"]\nstyle = "partail"\n', "(did you mean 'partial'?)"),
])
def test_rule_file_typos(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_rules(text)
    assert str(info.value).endswith(expected), str(info.value)


def test_nothing_near_means_no_guess():
    with pytest.raises(ConfigError) as info:
        parse_rules('[[rule]]\nid = "a"\naction = "block"\nzzzzqqq = 1\n')
    assert str(info.value).endswith("unknown key 'rule[0].zzzzqqq'")
    assert did_you_mean("credit_crad", ["credit_card", "email"]) == " (did you mean 'credit_card'?)"
    assert did_you_mean("xyz", ["credit_card", "email"]) == ""
