"""wireproxy: a data-path gateway that judges, masks and records what passes through it."""

__version__ = "0.1.0"
