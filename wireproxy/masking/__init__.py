"""Masking: detectors find sensitive values, styles hide them, row rewriting applies both."""
