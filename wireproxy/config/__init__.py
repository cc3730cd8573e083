"""Configuration: wireproxy.toml (settings.py), the TOML reader with file:line errors
(tomlfile.py), rule files (rulefile.py) and the live rules of a running proxy (rulebook.py).

The rule-file loader sits here, above policy/ and masking/: it builds the rule types of one and
the mask specs of the other, and neither of them imports it.
"""

from .settings import (
                       DEFAULT_RULES,
                       Address,
                       AdminConfig,
                       ApprovalsConfig,
                       Config,
                       HttpListener,
                       LogConfig,
                       PostgresListener,
                       TcpListener,
                       load_config,
                       parse_address,
)
from .tomlfile import ConfigError

__all__ = [
                       "DEFAULT_RULES",
                       "Address",
                       "AdminConfig",
                       "ApprovalsConfig",
                       "Config",
                       "ConfigError",
                       "HttpListener",
                       "LogConfig",
                       "PostgresListener",
                       "TcpListener",
                       "load_config",
                       "parse_address",
]
