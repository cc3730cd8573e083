"""The L4 proxy: any TCP protocol wireproxy does not parse, forwarded untouched (forward.py)."""

from .forward import handle_tcp

__all__ = ["handle_tcp"]
