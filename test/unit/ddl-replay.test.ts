import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EVERYTHING, Scope } from '../../src/catalog/index.js';
import type { SchemaChange, TouchedObject } from '../../src/ddl/payload.js';
import { parseSchemaChange } from '../../src/ddl/payload.js';
import { ABSENT, assertRebuildable, dropStatement, tableStatements } from '../../src/ddl/rebuild-plan.js';
import { forTransactionBlock, planReplay, StatementCursor } from '../../src/ddl/replay-plan.js';
import { globToRegex } from '../../src/ddl/scope-sql.js';
import { splitStatements, statementHasTag } from '../../src/ddl/statements.js';

describe('splitStatements', () => {
  it('splits at semicolons outside quotes, dollar quotes, comments and parentheses', () => {
    const text = `INSERT INTO t VALUES ('a;b', E'c\\';d'); -- x; y
      CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql; /* a; /* nested; */ b; */
      CREATE TABLE "we;ird" (id int); CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b);;`;
    assert.deepEqual(
      splitStatements(text).map((s) => s.replace(/\s+/g, ' ').slice(0, 24)),
      ["INSERT INTO t VALUES ('a", '-- x; y CREATE FUNCTION ', '/* a; /* nested; */ b; *', 'CREATE RULE r AS ON INSE'],
    );
  });

  it('keeps a SQL-standard function body (BEGIN ATOMIC … END, CASE inside) in one statement', () => {
    const text = `CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END; ALTER TABLE t ADD c int`;
    assert.deepEqual(splitStatements(text), [
      'CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END',
      'ALTER TABLE t ADD c int',
    ]);
  });

  it('keeps a lone statement without a semicolon', () => {
    assert.deepEqual(splitStatements('ALTER TABLE t ADD c int'), ['ALTER TABLE t ADD c int']);
  });
});

describe('statementHasTag', () => {
  for (const [statement, tag, expected] of [
    ['CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)', 'CREATE INDEX', true],
    ['create or replace function f() …', 'CREATE FUNCTION', true],
    ['CREATE TEMP TABLE x (a int)', 'CREATE TABLE', true],
    ['/* why */ ALTER TABLE t ADD c int', 'ALTER TABLE', true],
    ['ALTER TABLE t ADD c int', 'ALTER INDEX', false],
    ['DO $$ BEGIN ALTER TABLE t ADD c int; END $$', 'ALTER TABLE', false],
    ['CREATE TABLE t(a int)', 'CREATE TABLE', true],
    ['/* a /* nested */ comment */ CREATE VIEW v AS SELECT 1', 'CREATE VIEW', true],
  ] as const) {
    it(`${statement} ${expected ? 'is' : 'is not'} ${tag}`, () => assert.equal(statementHasTag(statement, tag), expected));
  }
});

const end = (
  query: string,
  tag: string,
  objects: Partial<TouchedObject>[] = [{}],
): Extract<SchemaChange, { event: 'ddl_command_end' }> => ({
  event: 'ddl_command_end',
  tag,
  query,
  searchPath: 'public',
  user: 'app',
  settings: null,
  objects: objects.map((o) => ({
    type: 'table',
    identity: 'public.t',
    schema: 'public',
    inExtension: false,
    definition: null,
    ownedBy: null,
    ...o,
  })),
  joined: [],
});

describe('planReplay', () => {
  const everything = new Scope(EVERYTHING);

  it('runs each statement of a multi-statement string once, in order, never the DML beside it', () => {
    const query = `INSERT INTO a VALUES (1); CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1); ALTER TABLE b ADD w int`;
    const cursor = new StatementCursor();
    assert.deepEqual(planReplay(end(query, 'CREATE TABLE'), cursor, everything), {
      kind: 'statement',
      text: 'CREATE TABLE b (id int PRIMARY KEY)',
    });
    assert.deepEqual(planReplay(end(query, 'ALTER TABLE'), cursor, everything), { kind: 'statement', text: 'ALTER TABLE b ADD w int' });
  });

  it('claims a skipped command’s statement, so the next command of the string is found after it', () => {
    const query = `CREATE PUBLICATION p; ALTER TABLE t ADD c int`;
    const cursor = new StatementCursor();
    assert.equal(planReplay(end(query, 'CREATE PUBLICATION'), cursor, everything).kind, 'skip');
    assert.deepEqual(planReplay(end(query, 'ALTER TABLE'), cursor, everything), { kind: 'statement', text: 'ALTER TABLE t ADD c int' });
  });

  it("skips a DROP of pgferry's own TRUNCATE trigger, and only that, claiming its statement", () => {
    const trigger = (identity: string) => ({ type: 'trigger', identity, schema: 'public', original: true, temporary: false });
    const query = `DROP TRIGGER pgferry_truncate_m ON lone; DROP TRIGGER audit ON lone`;
    const cursor = new StatementCursor();
    assert.equal(
      planReplay(end(query, 'DROP TRIGGER', []), cursor, everything, [trigger('pgferry_truncate_m on public.lone')]).kind,
      'skip',
    );
    assert.deepEqual(planReplay(end(query, 'DROP TRIGGER', []), cursor, everything, [trigger('audit on public.lone')]), {
      kind: 'statement',
      text: 'DROP TRIGGER audit ON lone',
    });
  });

  it("skips temporary objects, which live in the source session only, whether typed or made inside a function (pg_partman's partition_data_time)", () => {
    const temp = { identity: 'pg_temp.partman_temp_data_storage', schema: 'pg_temp' };
    const query = `CREATE TEMP TABLE scratch (a int); DROP TABLE scratch; SELECT partman.partition_data_time('public.readings')`;
    const cursor = new StatementCursor();
    assert.equal(planReplay(end(query, 'CREATE TABLE', [{ ...temp, identity: 'pg_temp.scratch' }]), cursor, everything).kind, 'skip');
    const dropped = [{ type: 'table', identity: 'pg_temp.scratch', schema: 'pg_temp', original: true, temporary: true }];
    assert.equal(planReplay(end(query, 'DROP TABLE', []), cursor, everything, dropped).kind, 'skip');
    assert.equal(
      planReplay(
        end(query, 'CREATE TABLE', [temp, { ...temp, type: 'index', identity: 'pg_temp.partman_temp_data_storage_id_idx' }]),
        cursor,
        everything,
      ).kind,
      'skip',
    );
    // A permanent table beside a temporary one is replayed.
    assert.equal(planReplay(end('SELECT f()', 'CREATE TABLE', [temp, {}]), new StatementCursor(), everything).kind, 'rebuild');
  });

  it('skips commands on large objects (the cut-over carries them), wherever they ran', () => {
    const query = `SELECT lo_create(5); GRANT UPDATE ON LARGE OBJECT 5 TO reader; COMMENT ON LARGE OBJECT 5 IS 'x'; ALTER LARGE OBJECT 5 OWNER TO reader`;
    const cursor = new StatementCursor();
    for (const [tag, type] of [
      ['GRANT', 'LARGE OBJECT'],
      ['COMMENT', 'large object'],
      ['ALTER LARGE OBJECT', 'large object'],
    ] as const) {
      assert.equal(planReplay(end(query, tag, [{ type, identity: '5', schema: null }]), cursor, everything).kind, 'skip', tag);
    }
    assert.equal(
      planReplay(end(`GRANT SELECT ON t TO reader`, 'GRANT', [{ type: 'TABLE' }]), new StatementCursor(), everything).kind,
      'statement',
    );
  });

  it('rebuilds a command that ran inside a DO block, a function call or a procedure', () => {
    for (const query of [`DO $$ BEGIN ALTER TABLE t ADD c int; END $$`, `SELECT partman.create_parent('public.t')`, `CALL make_month()`]) {
      assert.deepEqual(planReplay(end(query, 'ALTER TABLE'), new StatementCursor(), everything), { kind: 'rebuild' }, query);
    }
  });

  it('does not take a later statement for a command fired inside an earlier one', () => {
    const query = `DO $$ BEGIN ALTER TABLE a ADD c int; END $$; ALTER TABLE b ADD d int`;
    const cursor = new StatementCursor();
    assert.deepEqual(planReplay(end(query, 'ALTER TABLE'), cursor, everything), { kind: 'rebuild' });
  });

  it('passes over commands on global objects, which never fire, to find a grant in the same string', () => {
    const query = `CREATE ROLE app LOGIN PASSWORD 'x'; GRANT app TO admin; GRANT USAGE ON SCHEMA public TO app; GRANT SELECT ON items TO app`;
    const cursor = new StatementCursor();
    assert.deepEqual(planReplay(end(query, 'GRANT'), cursor, everything), {
      kind: 'statement',
      text: 'GRANT USAGE ON SCHEMA public TO app',
    });
    assert.deepEqual(planReplay(end(query, 'GRANT'), cursor, everything), { kind: 'statement', text: 'GRANT SELECT ON items TO app' });
    assert.deepEqual(cursor.takeGlobals(), [`CREATE ROLE app LOGIN PASSWORD 'x'`, 'GRANT app TO admin'], 'reported, never carried');
    assert.deepEqual(cursor.takeGlobals(), []);
  });

  it('skips replication set-up, extension members and objects outside the migration', () => {
    const scope = new Scope({ ...EVERYTHING, excludeTables: ['audit.*'] });
    assert.equal(planReplay(end('CREATE PUBLICATION p', 'CREATE PUBLICATION'), new StatementCursor(), scope).kind, 'skip');
    assert.equal(
      planReplay(end('x', 'CREATE FUNCTION', [{ type: 'function', inExtension: true }]), new StatementCursor(), scope).kind,
      'skip',
    );
    const excluded = end('ALTER TABLE audit.log ADD c int', 'ALTER TABLE', [{ identity: 'audit.log', schema: 'audit' }]);
    assert.equal(planReplay(excluded, new StatementCursor(), scope).kind, 'skip');
  });

  it('skips DETACH PARTITION … FINALIZE: the target detached at once', () => {
    assert.equal(
      planReplay(end('ALTER TABLE p DETACH PARTITION c FINALIZE', 'ALTER TABLE'), new StatementCursor(), everything).kind,
      'skip',
    );
  });

  it('passes over GRANTs on a database, which never fire', () => {
    const query = `GRANT CONNECT ON DATABASE app TO r; GRANT SELECT ON t TO r`;
    assert.deepEqual(planReplay(end(query, 'GRANT'), new StatementCursor(), everything), {
      kind: 'statement',
      text: 'GRANT SELECT ON t TO r',
    });
  });

  it('skips every part of a command on an excluded table (its sequence and index too)', () => {
    const scope = new Scope({ ...EVERYTHING, excludeTables: ['secret'] });
    const created = end('CREATE TABLE secret (id serial PRIMARY KEY)', 'CREATE TABLE', [
      { type: 'table', identity: 'public.secret' },
      { type: 'sequence', identity: 'public.secret_id_seq' },
      { type: 'index', identity: 'public.secret_pkey' },
    ]);
    assert.equal(planReplay(created, new StatementCursor(), scope).kind, 'skip');
  });

  it('drops CONCURRENTLY, which a transaction block refuses', () => {
    assert.equal(forTransactionBlock('/* why */ CREATE INDEX CONCURRENTLY i ON t (a)'), 'CREATE INDEX i ON t (a)');
    assert.equal(
      forTransactionBlock('ALTER TABLE p DETACH PARTITION "my part" CONCURRENTLY -- later'),
      'ALTER TABLE p DETACH PARTITION "my part" -- later',
    );
    assert.equal(forTransactionBlock('CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)'), 'CREATE UNIQUE INDEX i ON t (a)');
    assert.equal(forTransactionBlock('DROP INDEX CONCURRENTLY i'), 'DROP INDEX i');
    assert.equal(forTransactionBlock('ALTER TABLE p DETACH PARTITION c CONCURRENTLY'), 'ALTER TABLE p DETACH PARTITION c');
  });
});

describe('tableStatements', () => {
  const col = (name: string, type = 'integer', notNull = false, dflt: string | null = null, identity = '') => ({
    name,
    type,
    notNull,
    default: dflt,
    identity,
    generated: '',
  });
  const shape = (columns: ReturnType<typeof col>[]) => ({ ...ABSENT, exists: true, columns });
  const definition = (columns: ReturnType<typeof col>[]) => ({
    name: 'public.t',
    columns,
    constraints: [],
    partitionOf: null,
    bound: null,
    partitionKey: null,
    partitions: null,
  });

  it('matches columns by position: renames, retypes, defaults and NOT NULL, then additions', () => {
    assert.deepEqual(
      tableStatements(
        'public.t',
        shape([col('id'), col('name', 'text')]),
        definition([col('id', 'bigint', true), col('title', 'text', false, "'x'::text"), col('added', 'text')]),
        false,
      ),
      [
        'ALTER TABLE public.t ALTER COLUMN "id" TYPE bigint USING "id"::bigint',
        'ALTER TABLE public.t ALTER COLUMN "id" SET NOT NULL',
        'ALTER TABLE public.t RENAME COLUMN "name" TO "title"',
        `ALTER TABLE public.t ALTER COLUMN "title" SET DEFAULT 'x'::text`,
        'ALTER TABLE public.t ADD COLUMN "added" text',
      ],
    );
  });

  it('creates identity and generated columns as such, and adds or drops an identity', () => {
    const generated = { ...col('twice', 'integer'), default: '(id * 2)', generated: 's' };
    assert.deepEqual(tableStatements('public.t', ABSENT, definition([col('id', 'integer', true, null, 'a'), generated]), true), [
      'CREATE TABLE public.t ("id" integer GENERATED ALWAYS AS IDENTITY NOT NULL, "twice" integer GENERATED ALWAYS AS ((id * 2)) STORED)',
    ]);
    assert.deepEqual(
      tableStatements('public.t', shape([col('id', 'integer', true)]), definition([col('id', 'integer', true, null, 'd')]), false),
      ['ALTER TABLE public.t ALTER COLUMN "id" ADD GENERATED BY DEFAULT AS IDENTITY'],
    );
    assert.deepEqual(
      tableStatements('public.t', shape([col('id', 'integer', true, null, 'a')]), definition([col('id', 'integer', true)]), false),
      ['ALTER TABLE public.t ALTER COLUMN "id" DROP IDENTITY'],
    );
  });

  it('refuses a source with fewer columns than the target (a drop it did not see)', () => {
    assert.throws(
      () => tableStatements('public.t', shape([col('a'), col('b')]), definition([col('a')]), false),
      /1 columns on the source and 2/,
    );
  });

  it('never makes a table anew for anything but CREATE TABLE (a rename inside a DO block would leave the old one stale)', () => {
    assert.throws(() => tableStatements('public.renamed', ABSENT, definition([col('a')]), false), /renamed or moved/);
  });

  it('rebuilds only the commands it reproduces exactly', () => {
    for (const tag of ['CREATE TABLE', 'ALTER TABLE', 'CREATE INDEX', 'CREATE FUNCTION', 'DROP VIEW', 'CREATE SCHEMA'])
      assert.doesNotThrow(() => assertRebuildable(tag));
    for (const tag of ['COMMENT', 'GRANT', 'ALTER TYPE', 'ALTER FUNCTION', 'CREATE TYPE', 'ALTER SEQUENCE']) {
      assert.throws(() => assertRebuildable(tag), /not rebuilt/, tag);
    }
  });

  it('creates a partition from its parent and bound', () => {
    const partition = { ...definition([col('id')]), partitionOf: 'public.p', bound: 'FOR VALUES IN (1)' };
    assert.deepEqual(tableStatements('public.c', ABSENT, partition, true), [
      'CREATE TABLE public.c PARTITION OF public.p FOR VALUES IN (1)',
    ]);
  });

  it("follows the source's partition list: attaches a partition made inside a function, detaches one the source let go", () => {
    // pg_partman's maintenance: CREATE TABLE … (LIKE …) then ATTACH PARTITION, and retention's DETACH,
    // each reported as a command on the parent alone.
    const bound = (day: number) => `FOR VALUES FROM ('2026-12-${day} 00:00:00+00') TO ('2026-12-${day + 1} 00:00:00+00')`;
    const part = (day: number) => ({ name: `public.readings_p2026_12_${day}`, bound: bound(day) });
    const parent = {
      ...definition([col('id')]),
      name: 'public.readings',
      partitionKey: 'RANGE (taken_at)',
      partitions: [part(11), part(12), part(13)],
    };
    const target = {
      ...shape([col('id')]),
      partitions: [part(10), part(11)],
      tablesOnTarget: new Set(['public.readings_p2026_12_11', 'public.readings_p2026_12_12']),
    };
    assert.deepEqual(tableStatements('public.readings', target, parent, false), [
      'ALTER TABLE public.readings DETACH PARTITION public.readings_p2026_12_10',
      `ALTER TABLE public.readings ATTACH PARTITION public.readings_p2026_12_12 ${bound(12)}`,
    ]);
    // A payload from a capture that recorded no partition list changes none.
    assert.deepEqual(tableStatements('public.readings', target, { ...parent, partitions: null }, false), []);
  });

  it('drops what the source dropped, by its identity', () => {
    const dropped = (type: string, identity: string) => ({ type, identity, schema: 'public', original: true, temporary: false });
    assert.equal(dropStatement(dropped('table column', 'public."My T".c')), 'ALTER TABLE public."My T" DROP COLUMN IF EXISTS c');
    assert.equal(dropStatement(dropped('trigger', '"a on b" on public.t')), 'DROP TRIGGER IF EXISTS "a on b" ON public.t');
    assert.equal(dropStatement(dropped('default value', 'for public.t.c')), undefined);
  });
});

describe('schema-change payloads and scope', () => {
  it('refuses a payload that is not the capture’s', () => {
    assert.throws(() => parseSchemaChange('{"v":2}'), /malformed/);
    assert.throws(() => parseSchemaChange('nope'), /malformed/);
  });

  it('turns globs into anchored regular expressions', () => {
    const matches = (glob: string, text: string) => new RegExp(globToRegex(glob)).test(text);
    assert.ok(matches('audit_*', 'audit_2026'));
    assert.ok(!matches('audit_*', 'xaudit_2026'));
    assert.ok(matches('public.{a,b}?', 'public.b1'));
    assert.ok(!matches('public.t', 'publicXt'));
  });
});
