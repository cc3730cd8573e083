"""fingerprint(sql): one key for every text of the same statement modulo its constants.

PostgreSQL's own fingerprint (libpg_query, as pg_stat_statements groups queries): `SELECT * FROM
t WHERE id = 1` and `select *  from t where id=2` share one. SQL pglast cannot parse gets a
hash of its whitespace-folded text instead (prefixed, so the two kinds never collide). Approval
windows key their grants on it.
"""

from __future__ import annotations

import hashlib

from pglast.parser import fingerprint as _pg_fingerprint


def fingerprint(sql: str) -> str:
    try:
        return _pg_fingerprint(sql)
    except Exception:   # not PostgreSQL SQL (or not text pglast accepts): fall back to the text
        folded = " ".join(sql.split())
        return "text:" + hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]
