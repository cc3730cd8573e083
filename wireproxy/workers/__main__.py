"""`python -m wireproxy.workers FD`: a worker process (the supervisor starts it, not people)."""

import sys

from .worker import main

sys.exit(main(sys.argv[1:]))
