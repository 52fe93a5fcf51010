"""ORM connection setup with the real psycopg 3 through dsql-proxy: run by test/clients/compat-orm.test.ts
with Debian's /usr/bin/python3 (SQLAlchemy and Django are not installed; this calls psycopg the way
they do, so psycopg chooses the protocol itself).

Usage: compat_orm.py CONNINFO
Prints one JSON object; the TypeScript test asserts on it. A psycopg error that is not expected
raises (non-zero exit).
"""

import json
import sys

import psycopg
from psycopg import IsolationLevel


def failure(fn):
    """Runs fn; returns None if it succeeded, else the server error's SQLSTATE and primary message."""
    try:
        fn()
    except psycopg.Error as e:
        return {"sqlstate": e.sqlstate, "message": e.diag.message_primary}
    return None


def sqlalchemy_initialize(conninfo):
    """SQLAlchemy 2's postgresql+psycopg dialect on first connect: not autocommit, so psycopg sends
    BEGIN first; then the pool's reset on return rolls back."""
    out = {}
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            cur.execute("select pg_catalog.version()")
            out["version"] = cur.fetchone()[0]
            cur.execute("select current_schema()")
            out["current_schema"] = cur.fetchone()[0]
            cur.execute("show standard_conforming_strings")
            out["standard_conforming_strings"] = cur.fetchone()[0]
            cur.execute("show transaction isolation level")
            out["isolation"] = cur.fetchone()[0]
        conn.rollback()
        out["status_after_rollback"] = conn.info.transaction_status.name
        out["usable"] = conn.execute("select 41 + 1").fetchone()[0]
        conn.rollback()
    return out


def django_setup(conninfo):
    """Django 4.2+'s postgresql backend with psycopg 3: autocommit connection, ensure_timezone with a
    bound parameter, OPTIONS isolation_level applied by psycopg at each BEGIN, a client-side
    statement_timeout from OPTIONS 'options': '-c statement_timeout=...' is not tried here."""
    out = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        out["startup_timezone"] = conn.info.parameter_status("TimeZone")
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('TimeZone', %s, false)", ["Europe/Paris"])
            out["set_config"] = cur.fetchone()[0]
        out["timezone"] = conn.info.parameter_status("TimeZone")
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            out["repeatable_read"] = conn.execute("show transaction_isolation").fetchone()[0]
        # A refused BEGIN inside conn.transaction() leaves psycopg 3.1 believing a transaction block is
        # still open on that connection object (its exit then refuses to commit), so the refusal is
        # tried on a connection of its own, closed without a commit.
        other = psycopg.connect(conninfo, autocommit=True)
        other.isolation_level = IsolationLevel.SERIALIZABLE

        def serializable():
            with other.transaction():
                other.execute("select 1")

        out["serializable"] = failure(serializable)
        other.close()
        conn.isolation_level = None
        out["usable"] = conn.execute("select 41 + 1").fetchone()[0]
        # Django's CONN_HEALTH_CHECKS and pool reset paths: nothing DSQL refuses besides these.
        cur = conn.execute("SET client_min_messages TO warning")
        out["set_tag"] = cur.statusmessage
        out["client_min_messages"] = conn.execute("SHOW client_min_messages").fetchone()[0]
    return out


def main() -> None:
    conninfo = sys.argv[1]
    out = {"psycopg": psycopg.__version__}
    out["sqlalchemy"] = sqlalchemy_initialize(conninfo)
    out["django"] = django_setup(conninfo)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
