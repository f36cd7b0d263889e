// node-postgres against weft: a table of every type weft stores, inserts with bound
// parameters (the extended protocol), reads back through pg's type parsers, a named prepared
// statement, a pool, a write conflict (40001) and its retry, and an error that keeps the
// client usable. Usage: node pg_check.js <port>
'use strict';
const assert = require('assert');
const { Client, Pool } = require('pg');

const port = Number(process.argv[2]);
const cfg = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };

async function main() {
  const c = new Client(cfg);
  await c.connect();
  await c.query('DROP TABLE IF EXISTS nodedrv');
  await c.query(
    'CREATE TABLE nodedrv (id serial PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint,' +
      ' f4 real, f8 double precision, n numeric(10,2), t text, vc varchar(20), bp char(3),' +
      ' by bytea, d date, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb)');
  const row = [
    true, 2, 4, '9007199254740993', 1.5, 2.25, '12.34', 'tëxt', 'vc', 'abc',
    Buffer.from([0, 1, 255]), '2024-01-02', '2024-01-02 03:04:05.123456',
    new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 123)), '12345678-1234-5678-1234-567812345678',
    JSON.stringify({ a: [1, 2] }), { b: 'x', a: null },
  ];
  const cols = 'b,i2,i4,i8,f4,f8,n,t,vc,bp,by,d,ts,tz,u,j,jb';
  const ph = row.map((_, i) => `$${i + 1}`).join(',');
  const ins = await c.query(`INSERT INTO nodedrv (${cols}) VALUES (${ph}) RETURNING id`, row);
  assert.strictEqual(ins.rows[0].id, 1);
  await c.query(`INSERT INTO nodedrv (${cols}) VALUES (${ph})`, row.map(() => null));

  const got = (await c.query(`SELECT ${cols} FROM nodedrv WHERE id = $1`, [1])).rows[0];
  assert.strictEqual(got.b, true);
  assert.strictEqual(got.i2, 2);
  assert.strictEqual(got.i4, 4);
  assert.strictEqual(got.i8, '9007199254740993'); // int8 comes back as a string
  assert.strictEqual(got.f4, 1.5);
  assert.strictEqual(got.f8, 2.25);
  assert.strictEqual(got.n, '12.34');
  assert.strictEqual(got.t, 'tëxt');
  assert.strictEqual(got.vc, 'vc');
  assert.strictEqual(got.bp, 'abc');
  assert.deepStrictEqual(got.by, Buffer.from([0, 1, 255]));
  assert.ok(got.d instanceof Date && got.d.getFullYear() === 2024 && got.d.getDate() === 2);
  assert.ok(got.ts instanceof Date && got.ts.getMinutes() === 4);
  assert.strictEqual(got.tz.toISOString(), '2024-01-02T03:04:05.123Z');
  assert.strictEqual(got.u, '12345678-1234-5678-1234-567812345678');
  assert.deepStrictEqual(got.j, { a: [1, 2] });
  assert.deepStrictEqual(got.jb, { a: null, b: 'x' });
  const nulls = (await c.query(`SELECT ${cols} FROM nodedrv WHERE id = 2`)).rows[0];
  for (const k of Object.keys(nulls)) assert.strictEqual(nulls[k], null, k);

  // A named prepared statement, run twice with different parameters.
  const named = { name: 'by_id', text: 'SELECT i4 + $1::int AS v FROM nodedrv WHERE id = $2' };
  assert.strictEqual((await c.query({ ...named, values: [10, 1] })).rows[0].v, 14);
  assert.strictEqual((await c.query({ ...named, values: [20, 1] })).rows[0].v, 24);
  // Rows as arrays, and the result's field descriptions.
  const arr = await c.query({ text: 'SELECT id, t FROM nodedrv ORDER BY id', rowMode: 'array' });
  assert.deepStrictEqual(arr.rows, [[1, 'tëxt'], [2, null]]);
  assert.deepStrictEqual(arr.fields.map((f) => f.name), ['id', 't']);
  assert.deepStrictEqual(arr.fields.map((f) => f.dataTypeID), [23, 25]);

  // An error leaves the client usable.
  await assert.rejects(c.query('SELECT * FROM no_such_table'), (e) => e.code === '42P01');
  await assert.rejects(c.query('INSERT INTO nodedrv (id) VALUES (1)'), (e) => e.code === '23505');
  assert.strictEqual((await c.query('SELECT count(*)::int AS n FROM nodedrv')).rows[0].n, 2);

  // A pool.
  const pool = new Pool({ ...cfg, max: 3 });
  const counts = await Promise.all([1, 2, 3, 4, 5].map((i) =>
    pool.query('SELECT $1::int + count(*)::int AS n FROM nodedrv', [i])));
  assert.deepStrictEqual(counts.map((r) => r.rows[0].n), [3, 4, 5, 6, 7]);

  // A write conflict: the second commit fails with 40001; a retry succeeds.
  await c.query('DROP TABLE IF EXISTS nodeacct');
  await c.query('CREATE TABLE nodeacct (id int PRIMARY KEY, bal int)');
  await c.query('INSERT INTO nodeacct VALUES (1, 100)');
  const a = await pool.connect();
  const b = await pool.connect();
  await a.query('BEGIN');
  await b.query('BEGIN');
  await a.query('UPDATE nodeacct SET bal = bal - 10 WHERE id = 1');
  await b.query('UPDATE nodeacct SET bal = bal - 20 WHERE id = 1');
  await a.query('COMMIT');
  await assert.rejects(b.query('COMMIT'), (e) => e.code === '40001');
  for (let attempt = 0; ; attempt++) {
    try {
      await b.query('BEGIN');
      await b.query('UPDATE nodeacct SET bal = bal - 20 WHERE id = 1');
      await b.query('COMMIT');
      break;
    } catch (e) {
      if (e.code !== '40001' || attempt > 5) throw e;
      await b.query('ROLLBACK').catch(() => {});
    }
  }
  assert.strictEqual((await c.query('SELECT bal FROM nodeacct WHERE id = 1')).rows[0].bal, 70);
  a.release();
  b.release();
  await pool.end();
  await c.end();
  console.log('node-postgres ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
