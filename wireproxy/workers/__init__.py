"""`workers = N`: one supervisor and N worker processes serving the same ports.

sockets.py reserves the ports (SO_REUSEPORT), supervisor.py starts, watches and signals the
workers, worker.py is one worker (a normal Server), siblings.py is how workers reach each other
(cancel requests, metrics). Kept out of the import of `wireproxy.server`: one process needs none
of it.
"""
