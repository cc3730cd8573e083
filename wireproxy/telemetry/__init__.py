"""What the proxy tells its operators: structured JSON logs (logs.py)."""
