import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLsn, parseLsn } from '../../src/replication/index.js';

describe('LSN text form: X/Y at the edges, bigint inside', () => {
  // [text as PostgreSQL prints it, the position as a number]
  const cases: ReadonlyArray<readonly [string, bigint]> = [
    ['0/0', 0n],
    ['0/1', 1n],
    ['0/1906D58', 0x1906d58n],
    ['0/FFFFFFFF', 0xffffffffn],
    ['1/0', 0x1_0000_0000n],
    ['16/B374D848', 97500059720n],
    ['FFFFFFFF/FFFFFFFF', 0xffff_ffff_ffff_ffffn],
  ];
  for (const [text, lsn] of cases) {
    it(`${text} is ${lsn} and prints back as ${text}`, () => {
      assert.equal(parseLsn(text), lsn);
      assert.equal(formatLsn(lsn), text);
    });
  }

  it('reads lower case and surrounding space, and prints as the server does (upper case, no leading zeros)', () => {
    assert.equal(parseLsn('16/b374d848'), 97500059720n);
    assert.equal(parseLsn(' 0/1 '), 1n);
    assert.equal(formatLsn(parseLsn('00000016/0B374D84')), '16/B374D84');
  });

  it('orders as numbers, not as text', () => {
    assert.ok(parseLsn('0/10000000') > parseLsn('0/9FFFFFF'));
    assert.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
  });

  for (const malformed of [
    '',
    '12345',
    '0/',
    '/0',
    '0//0',
    '1/2/3',
    'G/0',
    '0/-1',
    '-1/0',
    '0x1/0',
    '123456789/0',
    '0/123456789',
    '16 / B374D848',
  ]) {
    it(`rejects ${JSON.stringify(malformed)}`, () => {
      assert.throws(() => parseLsn(malformed), /not a WAL position/);
    });
  }
});
