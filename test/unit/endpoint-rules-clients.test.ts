/**
 * The local endpoint's classifier against statements real clients send: pg_dump's connection setup
 * and catalog queries (v15-17), a plain pg_dump script as psql replays it, psql's describe queries,
 * and what ORMs and drivers send on connect, in transactions and in migrations. Each expectation is
 * what DSQL does with the statement (docs: src/local-endpoint/rules/catalogue.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RuleName } from '../../src/local-endpoint/rules/catalogue.js';
import { classify } from '../../src/local-endpoint/rules/classify.js';

type Case = [sql: string, rule: RuleName | undefined];

function check(cases: readonly Case[]): void {
  for (const [sql, rule] of cases) {
    const v = classify(sql);
    assert.equal(v.length, 1, `one statement in ${JSON.stringify(sql)}`);
    assert.equal(v[0]!.refusal?.rule, rule, sql);
  }
}

describe('endpoint rules: pg_dump', () => {
  it("pg_dump's connection setup (v15-17): dies at synchronize_seqscans on DSQL, as AWS recorded", () => {
    check([
      ["SELECT pg_catalog.set_config('search_path', '', false);", undefined],
      ['SET DATESTYLE = ISO', undefined],
      ['SET INTERVALSTYLE = POSTGRES', undefined],
      ['SET extra_float_digits TO 3', undefined],
      ['SET synchronize_seqscans TO off', 'set-parameter'],
      ['SET statement_timeout = 0', 'set-parameter'],
      ['SET lock_timeout = 0', 'set-parameter'],
      ['SET idle_in_transaction_session_timeout = 0', 'set-parameter'],
      ['SET transaction_timeout = 0', 'set-parameter'],
      ['SET quote_all_identifiers = true', 'set-parameter'],
      ['SET row_security = off', 'set-parameter'],
      [
        "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
        'set-parameter',
      ],
      ['BEGIN', undefined],
      ['SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', 'set-transaction'],
      ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE', 'set-transaction'],
      ['LOCK TABLE public.accounts IN ACCESS SHARE MODE', 'lock'],
      [
        'PREPARE dumpFunc(pg_catalog.oid) AS\nSELECT\nproretset,\nprosrc,\nprobin,\nprovolatile,\nproisstrict,\n' +
          'prosecdef,\nlanname,\nproconfig,\nprocost,\nprorows,\npg_catalog.pg_get_function_arguments(p.oid) AS funcargs\n' +
          'FROM pg_catalog.pg_proc p, pg_catalog.pg_language l\nWHERE p.oid = $1 AND l.oid = p.prolang',
        'prepare',
      ],
      ["EXECUTE dumpFunc('16390')", undefined],
      [
        'SELECT c.tableoid, c.oid, c.relname, c.relacl, c.relkind, c.relnamespace, (SELECT rolname FROM ' +
          'pg_catalog.pg_roles WHERE oid = c.relowner) AS rolname, c.relchecks, c.relhastriggers, ' +
          "c.relpersistence, c.relispartition, pg_get_partkeydef(c.oid) AS partkeydef, CASE WHEN c.relkind = 'f' " +
          'THEN (SELECT ftserver FROM pg_catalog.pg_foreign_table WHERE ftrelid = c.oid) ELSE 0 END AS foreignserver ' +
          "FROM pg_class c LEFT JOIN pg_depend d ON (c.relkind = 'S' AND d.classid = c.tableoid AND d.objid = c.oid) " +
          "WHERE c.relkind IN ('r', 'S', 'v', 'c', 'm', 'f', 'p') ORDER BY c.oid",
        undefined,
      ],
      ['COPY public.accounts (id, name) TO stdout;', undefined],
      ['COMMIT', undefined],
    ]);
  });

  it('a plain pg_dump script replayed in one Query: each statement judged on its own', () => {
    const script = `--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';
SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: admin
--

CREATE TABLE public.accounts (
    id integer NOT NULL,
    name text,
    note text DEFAULT 'it''s; fine'::text
);

ALTER TABLE public.accounts OWNER TO admin;

CREATE SEQUENCE public.accounts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id;
ALTER TABLE ONLY public.accounts ALTER COLUMN id SET DEFAULT nextval('public.accounts_id_seq'::regclass);

CREATE FUNCTION public.bump(i integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
BEGIN
  RETURN i + 1; -- not the end of the statement
END;
$$;

COPY public.accounts (id, name, note) FROM stdin;
SELECT pg_catalog.setval('public.accounts_id_seq', 1, false);
ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);
CREATE INDEX accounts_name_idx ON public.accounts USING btree (name);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES public.accounts(id);
CREATE TRIGGER accounts_touch BEFORE UPDATE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.touch();
`;
    const verdicts = classify(script);
    assert.deepEqual(
      verdicts.map((v) => [script.slice(v.start, v.end).split('\n')[0], v.refusal?.rule, v.writes]),
      [
        ['SET statement_timeout = 0', 'set-parameter', false],
        ['SET lock_timeout = 0', 'set-parameter', false],
        ["SET client_encoding = 'UTF8'", undefined, false],
        ['SET standard_conforming_strings = on', 'set-parameter', false],
        ["SELECT pg_catalog.set_config('search_path', '', false)", undefined, false],
        ['SET check_function_bodies = false', 'set-parameter', false],
        ['SET xmloption = content', 'set-parameter', false],
        ['SET client_min_messages = warning', 'set-parameter', false],
        ['SET row_security = off', 'set-parameter', false],
        ["SET default_tablespace = ''", 'set-parameter', false],
        ['SET default_table_access_method = heap', 'set-parameter', false],
        ['CREATE TABLE public.accounts (', undefined, false],
        ['ALTER TABLE public.accounts OWNER TO admin', undefined, false],
        ['CREATE SEQUENCE public.accounts_id_seq', undefined, false],
        ['ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id', undefined, false],
        [
          "ALTER TABLE ONLY public.accounts ALTER COLUMN id SET DEFAULT nextval('public.accounts_id_seq'::regclass)",
          undefined,
          false,
        ],
        ['CREATE FUNCTION public.bump(i integer) RETURNS integer', undefined, false],
        ['COPY public.accounts (id, name, note) FROM stdin', undefined, true],
        ["SELECT pg_catalog.setval('public.accounts_id_seq', 1, false)", undefined, false],
        ['ALTER TABLE ONLY public.accounts', undefined, false],
        ['CREATE INDEX accounts_name_idx ON public.accounts USING btree (name)', 'create-index-sync', false],
        ['ALTER TABLE ONLY public.orders', 'foreign-key', false],
        [
          'CREATE TRIGGER accounts_touch BEFORE UPDATE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.touch()',
          'trigger',
          false,
        ],
      ],
    );
  });
});

describe('endpoint rules: psql', () => {
  it("psql's describe queries (\\dt, \\d t) are plain catalog SELECTs", () => {
    check([
      [
        `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`,
        undefined,
      ],
      [
        `SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(accounts)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;`,
        undefined,
      ],
      [
        `SELECT conname, conrelid::pg_catalog.regclass AS ontable,
       pg_catalog.pg_get_constraintdef(oid, true) AS condef
  FROM pg_catalog.pg_constraint c
 WHERE confrelid IN (SELECT pg_catalog.pg_partition_ancestors('16384')
                     UNION ALL VALUES ('16384'::pg_catalog.regclass))
       AND contype = 'f' AND conparentid = 0
ORDER BY conname;`,
        undefined,
      ],
      [
        `SELECT t.tgname, pg_catalog.pg_get_triggerdef(t.oid, true), t.tgenabled, t.tgisinternal
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = '16384' AND (NOT t.tgisinternal OR (t.tgisinternal AND t.tgenabled = 'D'))
ORDER BY 1;`,
        undefined,
      ],
      ['SELECT pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c LIMIT 1000', undefined],
    ]);
  });
});

describe('endpoint rules: ORMs and drivers', () => {
  it('Django: time zone through set_config is fine; savepoints, sync indexes and foreign keys are not', () => {
    check([
      ["SELECT set_config('TimeZone', 'UTC', false)", undefined],
      ['SAVEPOINT "s140245_x1"', 'savepoint'],
      ['RELEASE SAVEPOINT "s140245_x1"', 'savepoint'],
      ['ROLLBACK TO SAVEPOINT "s140245_x1"', 'savepoint'],
      [
        'CREATE TABLE "shop_item" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "name" varchar(100) NOT NULL)',
        undefined,
      ],
      ['CREATE INDEX "shop_item_name_4fd3e3_idx" ON "shop_item" ("name")', 'create-index-sync'],
      ['CREATE INDEX "shop_item_name_like" ON "shop_item" ("name" varchar_pattern_ops)', 'create-index-sync'],
      [
        'ALTER TABLE "shop_order" ADD CONSTRAINT "shop_order_item_id_fk_shop_item_id" FOREIGN KEY ("item_id") ' +
          'REFERENCES "shop_item" ("id") DEFERRABLE INITIALLY DEFERRED',
        'foreign-key',
      ],
      ['SET CONSTRAINTS ALL IMMEDIATE', undefined],
    ]);
  });

  it('Rails: its connection SETs, advisory-lock migrations and bigserial keys', () => {
    check([
      ["SET client_min_messages TO 'warning'", 'set-parameter'],
      ['SET standard_conforming_strings = on', 'set-parameter'],
      ["SET SESSION timezone TO 'UTC'", undefined],
      ['SET intervalstyle = iso_8601', undefined],
      ['SELECT pg_try_advisory_lock(4211224611830917120)', 'advisory-lock'],
      ['SELECT pg_advisory_unlock(4211224611830917120)', 'advisory-lock'],
      ['CREATE TABLE "schema_migrations" ("version" character varying NOT NULL PRIMARY KEY)', undefined],
      ['CREATE TABLE "users" ("id" bigserial primary key, "email" character varying)', 'serial'],
    ]);
  });

  it('Prisma, knex, TypeORM, Flyway: migration locks, SERIAL keys, unique indexes, extensions', () => {
    check([
      ['SELECT pg_advisory_lock(72707369)', 'advisory-lock'],
      [
        'CREATE TABLE "User" (\n    "id" SERIAL NOT NULL,\n    "email" TEXT NOT NULL,\n\n    CONSTRAINT "User_pkey" PRIMARY KEY ("id")\n)',
        'serial',
      ],
      ['CREATE UNIQUE INDEX "User_email_key" ON "User"("email")', 'create-index-sync'],
      [
        'create table "knex_migrations" ("id" serial primary key, "name" varchar(255), "batch" integer, "migration_time" timestamptz)',
        'serial',
      ],
      ['select * from "knex_migrations_lock" where "is_locked" = $1 for update', undefined],
      ['CREATE EXTENSION IF NOT EXISTS "uuid-ossp"', 'extension'],
      ['START TRANSACTION', undefined],
      ['SELECT * FROM current_schema()', undefined],
      ['SELECT pg_try_advisory_xact_lock(77431708279161)', 'advisory-lock'],
    ]);
  });

  it('drivers: pgjdbc and Npgsql connect-time statements, Npgsql and PgBouncer resets', () => {
    check([
      ['SET extra_float_digits = 3', undefined],
      ["SET application_name = 'PostgreSQL JDBC Driver'", undefined],
      ['DISCARD ALL', 'discard'],
      ['SELECT version()', undefined],
      ['SHOW TRANSACTION ISOLATION LEVEL', undefined],
      ['BEGIN ISOLATION LEVEL READ COMMITTED', 'isolation-level'],
      ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED', 'set-transaction'],
    ]);
  });

  it('the AWS-documented way to create an index works and is rewritten for PostgreSQL', () => {
    const sql =
      'CREATE INDEX ASYNC idx_orders_customer ON orders (customer_id) INCLUDE (total) NULLS NOT DISTINCT';
    const [v] = classify(sql);
    assert.equal(v?.refusal, undefined);
    assert.equal(v?.asyncIndex, true);
    assert.deepEqual(
      v?.edits.map((e) => [sql.slice(e.start, e.end), e.text]),
      [['ASYNC', '']],
    );
  });
});
