"""psycopg 3 through dsql-proxy: run by test/clients/drivers.test.ts with Debian's /usr/bin/python3.

Usage: psycopg_check.py CONNINFO TABLE
Connects with the libpq conninfo string, does real work on TABLE (created here) and prints one JSON
object with what it saw; the TypeScript test asserts on it. Any failure raises (non-zero exit).
"""

import json
import sys

import psycopg


def main() -> None:
    conninfo, table = sys.argv[1], sys.argv[2]
    out = {"psycopg": psycopg.__version__, "libpq": psycopg.pq.version(), "impl": psycopg.pq.__impl__}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        out["ssl"] = bool(conn.pgconn.ssl_in_use)
        out["user"] = conn.execute("select current_user").fetchone()[0]
        out["server_version"] = conn.info.parameter_status("server_version")
        with conn.cursor() as cur:
            cur.execute(f"drop table if exists {table}")
            cur.execute(f"create table {table} (id int primary key, name text not null, score numeric)")
            # executemany (extended protocol, pipelined by psycopg when libpq supports it)
            cur.executemany(
                f"insert into {table} (id, name, score) values (%s, %s, %s)",
                [(i, f"name {i}", i / 4) for i in range(1, 101)],
            )
            # COPY FROM STDIN and COPY TO STDOUT
            with cur.copy(f"copy {table} (id, name, score) from stdin") as copy:
                for i in range(101, 301):
                    copy.write_row((i, f"copied \t{i}", None))
            rows = []
            with cur.copy(f"copy (select id, name from {table} where id in (1, 150, 300) order by id) to stdout") as copy:
                for row in copy.rows():
                    rows.append(list(row))
            out["copy_out"] = rows
            cur.execute(f"select count(*), sum(score)::text from {table}")
            count, total = cur.fetchone()
            out["count"], out["sum"] = count, total

        # A transaction that commits and one that rolls back
        with conn.transaction():
            conn.execute(f"update {table} set score = 0 where id <= 10")
        try:
            with conn.transaction():
                conn.execute(f"delete from {table}")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        out["after_tx"] = conn.execute(f"select count(*), count(*) filter (where score = 0) from {table}").fetchone()

        # Server-side prepared statements: prepare=True makes psycopg PREPARE at once and reuse it
        names = []
        with conn.cursor() as cur:
            for i in (1, 2, 3, 150):
                cur.execute(f"select name from {table} where id = %s", (i,), prepare=True)
                names.append(cur.fetchone()[0])
            cur.execute(
                "select count(*) from pg_prepared_statements where statement = %s",
                (f"select name from {table} where id = $1",),
            )
            out["prepared_server_side"] = cur.fetchone()[0]
        out["prepared_names"] = names

        # Errors come back as exceptions with the SQLSTATE, and the session keeps working
        try:
            conn.execute("select 1/0")
        except psycopg.errors.DivisionByZero as e:
            out["error_sqlstate"] = e.sqlstate
        out["after_error"] = conn.execute("select 41 + 1").fetchone()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
