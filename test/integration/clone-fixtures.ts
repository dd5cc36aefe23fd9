/**
 * Data for clone.test.ts: a database holding a value of (nearly) every type the server ships,
 * with the awkward ones (NaN, infinities, NULL array elements, \x00, control characters,
 * TOAST-sized values), and a big table with its sequences, indexes, keys and a materialized
 * view. Each table says which COPY format pgferry must choose for it.
 */
import type pg from 'pg';

export interface TypesTable {
  /** Quoted, schema-qualified, as the clone summary names it. */
  readonly name: string;
  /** What the clone summary must report: text where binary COPY would carry user type OIDs. */
  readonly format: 'binary' | 'text';
  /** The key the rows are compared in; "id" unless said. */
  readonly orderBy?: string;
  /** Big enough to be split at the threshold the types test uses. */
  readonly split?: boolean;
}

/** The types test splits tables above this size, so the odd-named table is copied in ranges. */
export const TYPES_SPLIT = '256KB';

/** The tables typesSql(major) creates, for a source of version `major`. */
export function typesTables(major: number): TypesTable[] {
  return [
    { name: 'public.scalars', format: 'binary' },
    { name: 'public.builtin_arrays', format: 'binary' },
    { name: 'public.toasted', format: 'binary' },
    { name: 'public.enum_arrays', format: 'text' },
    { name: 'public.composites', format: 'text' },
    { name: 'public.composite_arrays', format: 'text' },
    { name: 'public.extension_arrays', format: 'text' },
    { name: 'public.readings_low', format: 'binary' },
    { name: 'public.readings_high', format: 'binary' },
    { name: '"Odd Schema"."Odd ""Name"" tbl"', format: 'text', orderBy: '"Row ID"', split: true },
    ...(major >= 14 ? [{ name: 'public.multiranges', format: 'binary' as const }] : []),
  ];
}

/** Numeric infinities exist from 14, interval infinities from 17. */
export function typesSql(major: number): string {
  const numericInfinity = major >= 14;
  const intervalInfinity = major >= 17;
  return String.raw`
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'ünïcødé ☃', 'with "quote", comma');
CREATE TYPE public.pair AS (label text, amount numeric, feeling public.mood);
CREATE TYPE public.wrapper AS (inner_pair public.pair, tags text[], at timestamptz);
CREATE DOMAIN public.posint AS int CHECK (VALUE > 0);
CREATE DOMAIN public.short_text AS text CHECK (length(VALUE) < 100);
CREATE DOMAIN public.moods AS public.mood[];
CREATE TYPE public.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);

CREATE TABLE public.scalars (
  id int PRIMARY KEY,
  dropped_me text,
  num numeric, f4 real, f8 double precision, i2 smallint, i8 bigint, b boolean,
  ts timestamp, tstz timestamptz, d date, t time, ttz timetz, iv interval,
  by bytea, u uuid, ip inet, net cidr, mac macaddr, mac8 macaddr8, m money,
  bits bit(8), vbits varbit(20), tv tsvector, tq tsquery, jb jsonb, js json, x xml,
  pt point, ln line, ls lseg, bx box, pa path, pg polygon, ci circle,
  tx text, vc varchar(20), ch char(5), nm name, o oid, lsn pg_lsn,
  e public.mood, dom public.posint, dtext public.short_text,
  r4 int4range, r8 int8range, rn numrange, rts tsrange, rtstz tstzrange, rd daterange, rf public.floatrange,
  cit public.citext, hs public.hstore,
  gen int GENERATED ALWAYS AS (id * 2) STORED
);
ALTER TABLE public.scalars DROP COLUMN dropped_me;

INSERT INTO public.scalars VALUES
(1, 3.14159, 1.5, 2.718281828459045, 32767, 9223372036854775807, true,
 '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.123456+05:30', '2024-02-29', '23:59:59.999999', '12:00:00+14', '1 year 2 mons -3 days 04:05:06.789',
 '\x00deadbeef00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.1.5/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '1234.56',
 B'10101010', B'101', 'a fat:2,4 cat:1A rat:3B,5C', 'fat & (rat | cat:*) & !dog <-> mouse',
 '{"k": "v", "n": 1.50, "nested": {"arr": [true, false, null]}, "u": "é 😀", "ctl": "\u0001\t\n", "esc": "\\\""}',
 '{"b": 1,  "a": [1, 2],   "a": null}', '<doc a="1"><x>ü &amp; &lt;</x></doc>',
 '(1.5,-2)', '{1,2,3}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(1,0))', '<(0,0),5>',
 'ünïcødé — 日本語 😀 Z̤͔ͧ̑̓', 'short', 'ab', 'a_name', 4294967295, '16/B374D848',
 'happy', 42, 'dom text',
 '[1,10)', '[-9223372036854775808,0)', '(1.5,2.25]', '[2020-01-01 00:00,2021-01-01 00:00)', '[2020-01-01 00:00+00,infinity)', '[2020-01-01,2020-02-01)', '[1.5,2.5]',
 'MiXeD CaSe', 'a=>1, "b c"=>"d\"e", n=>NULL'),
(3, 'NaN', 'NaN', '-Infinity', -32768, -9223372036854775808, false,
 'infinity', '-infinity', 'infinity', '00:00', '00:00:00-15:59', '-178000000 years',
 '\x', '00000000-0000-0000-0000-000000000000', '::ffff:1.2.3.4', '2001:db8::/32', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff:ff:ff', '-92233720368547758.08',
 B'00000000', B'', '', 'a:* <2> b',
 'null', '[]', '<?xml version="1.0" encoding="UTF-8"?><r>ü</r>',
 '(-0,1e-300)', '{0,-1,0}', '[(-1,-1),(1e300,1e-300)]', '(0,0),(0,0)', '((0,0),(1,1))', '((0,0))', '<(1.5,-2.5),0>',
 E'tab\there\nnew line\r\\back\\slash \x01\x1f\x7f \\. \\N NULL', '', '', '', 0, '0/0',
 'ünïcødé ☃', 1, '',
 'empty', '(,)', '[-1e-20,1e20]', '[-infinity,infinity]', '(,infinity]', '[-infinity,infinity)', '[-Infinity,Infinity]',
 '', ''),
(6, '123456789012345678901234567890.123456789012345678901234567890', '3.4028235e38', '4.9e-324', 0, 0, NULL,
 '4713-01-01 00:00:00 BC', '4714-11-24 00:00:00+00 BC', '5874897-12-31', '24:00:00', '24:00:00-15:59', '178000000 years 11 mons 30 days 23:59:59.999999',
 '\xffffffff', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', '0.0.0.0/0', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00', '92233720368547758.07',
 B'11111111', B'11111111111111111111', $$'quoted lexeme' 'it''s':1$$, $$'a\:b' & 'c d'$$,
 '-0.0e-1000', '"just a string"', 'plain text &amp; <b>bold</b>',
 '(1.7976931348623157e308,-1.7976931348623157e308)', '{1,0,-0.5}', '[(1,2),(3,4)]', '(3,4),(1,2)', '[(1,2)]', '((1,2),(3,4),(5,6),(7,8))', '<(0,0),1e-10>',
 repeat('≠', 2000), repeat('x', 20), 'abcde', repeat('n', 63), 1, 'FFFFFFFF/FFFFFFFF',
 'with "quote", comma', 2147483647, repeat('y', 99),
 '[,5)', '[5,5]', '(,0)', '[2020-01-01 00:00,)', '["2020-06-30 23:59:59.999999+00","2020-07-01 00:00:00+00")', '[2000-01-01,)', '(,0]',
 E'ÄÖÜ straße', 'k=>"\\\\\"''"');
INSERT INTO public.scalars (id) VALUES (2);
${numericInfinity ? `INSERT INTO public.scalars (id, num) VALUES (4, 'Infinity'), (5, '-Infinity');` : ''}
${intervalInfinity ? `INSERT INTO public.scalars (id, iv) VALUES (7, 'infinity'), (8, '-infinity');` : ''}

CREATE TABLE public.builtin_arrays (
  id int PRIMARY KEY, ia int[], ia2 int[], ta text[], na numeric[], fa float8[], tsa timestamptz[], ba bytea[],
  ja jsonb[], ua uuid[], ra int4range[], boola bool[], pa point[], ia3 int[], va varchar(3)[]
);
INSERT INTO public.builtin_arrays VALUES
(1, '{1,2,3}', '{{1,2},{3,NULL}}', '{"a b","c,d","e\"f","g\\h",NULL,"NULL","",ünï}', '{1.5,NaN,-0.0,1e-30}', '{NaN,Infinity,-Infinity,-0,1e-310}',
 '{infinity,-infinity,"2024-01-01 00:00:00+00",NULL}', '{"\\x00ff00",NULL,"\\x"}', ARRAY['{"a":1}'::jsonb, 'null', NULL], '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
 '{"[1,2)",empty,NULL}', '{t,f,NULL}', '{"(1,2)","(3,4)"}', '[0:1][5:6]={{1,2},{3,4}}', '{abc,"",NULL}'),
(2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
(3, '{NULL}', '{{{1},{2}},{{3},{4}}}', '{{"x y",NULL},{"\\\\","{}"}}', '{NULL,NULL}', '{{1.5},{NULL}}', '{"-infinity"}', '{"\\xdeadbeef"}',
 '{"[]","{}"}', '{NULL}', '{"(,)"}', '{{t},{f}}', '{NULL}', '[-5:-3]={7,8,9}', '{"a\"b"}'),
(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE public.toasted (id int PRIMARY KEY, body text, doc jsonb, blob bytea);
INSERT INTO public.toasted
  SELECT 1, string_agg(md5(g::text), '' ORDER BY g), jsonb_agg(jsonb_build_object('k', g, 'v', md5(g::text)) ORDER BY g),
         string_agg(decode(md5(g::text), 'hex') || '\x00'::bytea, ''::bytea ORDER BY g)
    FROM generate_series(1, 40000) g;
INSERT INTO public.toasted VALUES
  (2, repeat('x', 2000000), to_jsonb(repeat('😀ü', 100000)), decode(repeat('00', 300000), 'hex')),
  (3, repeat(E'😀ü\t\\\n', 150000), NULL, '\x00'),
  (4, '', '{}', '\x');

CREATE TABLE public.enum_arrays (id int PRIMARY KEY, feelings public.mood[], grid public.mood[], via_domain public.moods, one public.mood);
INSERT INTO public.enum_arrays VALUES
  (1, '{sad,happy,NULL}', '{{sad,ok},{happy,"ünïcødé ☃"}}', '{ok}', 'sad'),
  (2, '{}', NULL, '{}', NULL),
  (3, NULL, '{{NULL}}', '{"with \"quote\", comma",NULL}', 'with "quote", comma');

CREATE TABLE public.composites (id int PRIMARY KEY, p public.pair, nested public.wrapper);
INSERT INTO public.composites VALUES
  (1, ROW('a, "quoted" \ back', 1.5, 'ok'), ROW(ROW('x', 'NaN', NULL), '{a,NULL,"b c"}', 'infinity')),
  (2, ROW(NULL, NULL, NULL), NULL),
  (3, NULL, ROW(NULL, '{}', '-infinity')),
  (4, ROW(E'ctl\x01\t\n', -0.000001, 'ünïcødé ☃'), ROW(ROW('', 0, 'sad'), NULL, '2024-02-29 12:00:00+00'));

CREATE TABLE public.composite_arrays (id int PRIMARY KEY, pairs public.pair[], wrappers public.wrapper[]);
INSERT INTO public.composite_arrays VALUES
  (1, ARRAY[ROW('a', 1, 'sad')::public.pair, NULL, ROW(NULL, NULL, NULL)::public.pair], NULL),
  (2, '{}', '{}'),
  (3, ARRAY[ROW(E'back\\slash "q"', -0.5, 'happy')::public.pair], ARRAY[ROW(ROW('in', 2, 'ok')::public.pair, '{x}', 'infinity')::public.wrapper]);

CREATE TABLE public.extension_arrays (id int PRIMARY KEY, doms public.posint[], cits public.citext[], hss public.hstore[], frs public.floatrange[]);
INSERT INTO public.extension_arrays VALUES
  (1, '{1,2,NULL}', '{Abc,NULL,"q \"x\""}', ARRAY['a=>1'::public.hstore, NULL, ''], '{"[1,2]",empty}'),
  (2, '{}', '{}', '{}', '{}'),
  (3, NULL, NULL, NULL, NULL);

CREATE TABLE public.readings (id int, at date NOT NULL, value float8, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.readings_low PARTITION OF public.readings FOR VALUES FROM ('-infinity') TO ('2020-01-01');
CREATE TABLE public.readings_high PARTITION OF public.readings FOR VALUES FROM ('2020-01-01') TO ('infinity');
INSERT INTO public.readings SELECT g, date '2019-12-25' + g, g / 7.0 FROM generate_series(1, 20) g;
INSERT INTO public.readings VALUES (21, '-infinity', 'NaN');

CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Odd ""Name"" tbl" ("Row ID" bigint PRIMARY KEY, "Mixed Case" text, "sel""ect" public.mood, "Tags" public.mood[]);
INSERT INTO "Odd Schema"."Odd ""Name"" tbl" SELECT g * 3, md5(g::text) || ' ' || g, (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::public.mood,
         CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY['ok', NULL, 'sad']::public.mood[] END
  FROM generate_series(1, 30000) g;

${
  major >= 14
    ? String.raw`
CREATE TABLE public.multiranges (id int PRIMARY KEY, m4 int4multirange, m8 int8multirange, mn nummultirange, md datemultirange,
                                 mts tsmultirange, mtstz tstzmultirange, mf public.floatmultirange, mra int4multirange[]);
INSERT INTO public.multiranges VALUES
  (1, '{[1,3),[5,8)}', '{(,0),[10,)}', '{[1.5,2.5],[NaN,NaN]}', '{[-infinity,2020-01-01),[2021-01-01,infinity)}',
   '{[2020-01-01 00:00,2020-01-02 00:00)}', '{[-infinity,infinity]}', '{[-Infinity,0),[1.5,Infinity]}', '{"{[1,2)}","{}",NULL}'),
  (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);`
    : ''
}
`;
}

/** Rows in the big table: the issue's "2M-row table". */
export const BIG_ROWS = 2_000_000;

/**
 * The big table (identity key, a secondary index, a check), a child with a serial key, a
 * unique constraint and a foreign key, sequences in every state, and a materialized view.
 */
export const BIG_SQL = `
CREATE TABLE public.big (
  id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  n int NOT NULL CONSTRAINT big_n_sane CHECK (n >= 0),
  note text NOT NULL DEFAULT 'before'
);
INSERT INTO public.big (n) SELECT g % 1000 FROM generate_series(1, ${BIG_ROWS}) g;
CREATE INDEX big_n_idx ON public.big (n);
CREATE TABLE public.child (
  id serial PRIMARY KEY,
  big_id int NOT NULL REFERENCES public.big (id),
  label text CONSTRAINT child_label_key UNIQUE
);
INSERT INTO public.child (big_id, label) SELECT g * 7, 'c' || g FROM generate_series(1, 1000) g;
CREATE SEQUENCE public.standalone START 100;
SELECT setval('public.standalone', 5000);
CREATE SEQUENCE public.untouched;
CREATE SEQUENCE public.descending INCREMENT -1 MINVALUE -1000 MAXVALUE -1 START -1;
SELECT nextval('public.descending') FROM generate_series(1, 10);
CREATE MATERIALIZED VIEW public.big_summary AS SELECT n % 10 AS k, count(*) AS c, sum(id) AS s FROM public.big GROUP BY 1;
CREATE UNIQUE INDEX big_summary_k ON public.big_summary (k);
CREATE VIEW public.child_view AS SELECT c.label, b.n FROM public.child c JOIN public.big b ON b.id = c.big_id;
`;

/** Settings that make every type's text output depend on the value alone. */
export const PINNED_SETTINGS = `SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3;
  SET IntervalStyle = 'postgres'; SET lc_monetary = 'C'; SET bytea_output = 'hex'; SET xmloption = 'content'`;

/** Every row of `table` as the server prints it, in key order, under the pinned settings. */
export async function rowsAsText(client: pg.Client, table: string, orderBy = 'id'): Promise<string[]> {
  await client.query(PINNED_SETTINGS);
  const { rows } = await client.query<{ row: string }>(`SELECT whole_row::text AS row FROM ${table} whole_row ORDER BY ${orderBy}`);
  return rows.map((r) => r.row);
}

export interface ChunkHash {
  readonly chunk: number;
  readonly rows: number;
  readonly md5: string;
}

/** md5 over the ordered rows of `table`, in chunks of ids so no single string gets huge. */
export async function chunkHashes(client: pg.Client, table: string, chunkSize = 250_000): Promise<ChunkHash[]> {
  await client.query(PINNED_SETTINGS);
  await client.query(`SET work_mem = '64MB'`);
  const { rows } = await client.query<{ chunk: number; rows: number; md5: string }>(
    `SELECT ((id - 1) / ${chunkSize})::int AS chunk, count(*)::int AS rows, md5(string_agg(whole_row::text, ',' ORDER BY id)) AS md5
       FROM ${table} whole_row GROUP BY 1 ORDER BY 1`,
  );
  return rows;
}
