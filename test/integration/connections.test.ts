/**
 * Connections, end to end through the real `pgferry` binary: URLs and libpq keyword strings,
 * the PGFERRY_* and PG* variables, password files, every sslmode that matters against a
 * cluster serving a self-signed certificate, and the one-line errors for bad input. Every run
 * is also checked for the role's password leaking into stdout or stderr.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, resolveConnection } from '../../src/config/index.js';
import { makeServerCertificate, runPgferry, startClusters, type CliResult, type Cluster } from '../harness/index.js';

const USER = 'app';
/** `@` and `/` must be percent-encoded in a URL, so a leak of either form is caught. */
const PASSWORD = 'S3cr3t-p@ss/word!';
const WRONG_PASSWORD = 'Wr0ng-p@ss/word!';
const SECRETS = [PASSWORD, WRONG_PASSWORD].flatMap((secret) => [
  secret,
  encodeURIComponent(secret),
  new URLSearchParams({ p: secret }).toString().slice(2),
]);

let tls: Cluster;
let plain: Cluster;
let work: string;
/** One database on each cluster, owned by the app role; both sides of a check may use them. */
let tlsDb: string;
let plainDb: string;
let rootCertFile: string;

before(async () => {
  // log_connections says, server side, whether each session was encrypted.
  [tls, plain] = await startClusters([
    { version: 17, tlsHostNames: ['localhost'], settings: { log_connections: true } },
    { version: 17, settings: { log_connections: true } },
  ]);
  for (const cluster of [tls, plain]) {
    await cluster.sql('postgres', `CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD}'`);
  }
  tlsDb = await tls.createDatabase({ prefix: 'conn' });
  plainDb = await plain.createDatabase({ prefix: 'conn' });
  await tls.sql('postgres', `ALTER DATABASE ${tlsDb} OWNER TO ${USER}`);
  await plain.sql('postgres', `ALTER DATABASE ${plainDb} OWNER TO ${USER}`);
  work = mkdtempSync(join(tmpdir(), 'pgferry-conn-'));
  rootCertFile = join(work, 'root.crt');
  writeFileSync(rootCertFile, tls.certificate!.certificate);
});

after(async () => {
  await Promise.all([tls?.stop(), plain?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A URL for the app role; no sslmode unless asked, so libpq's default (prefer) applies. */
function appUrl(
  cluster: Cluster,
  database: string,
  options: { params?: Record<string, string>; host?: string; password?: string | null; port?: number } = {},
): string {
  const password = options.password === undefined ? PASSWORD : options.password;
  const auth = password === null ? USER : `${USER}:${encodeURIComponent(password)}`;
  const query = new URLSearchParams(options.params ?? {}).toString();
  return `postgres://${auth}@${options.host ?? cluster.host}:${options.port ?? cluster.port}/${database}${query ? `?${query}` : ''}`;
}

function uniqueName(label: string): string {
  return `pgferry_${label}_${randomBytes(3).toString('hex')}`;
}

interface CheckJson {
  ready: boolean;
  source: { connection: string; version: string; database: string };
  target: { connection: string; version: string; database: string };
}

/** Runs `pgferry check … --json`, asserts no secret leaked, and returns the parsed report. */
async function checkSucceeds(args: readonly string[], env: Record<string, string> = {}): Promise<CheckJson> {
  const result = await runPgferry(['check', ...args, '--json'], env);
  assertNoSecrets(result);
  assert.ok(result.code === 0 || result.code === 3, `expected exit 0 or 3, got ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as CheckJson;
}

function assertNoSecrets(result: CliResult): void {
  for (const secret of SECRETS) {
    assert.ok(!result.stdout.includes(secret), `stdout leaks a password (${JSON.stringify(secret)}):\n${result.stdout}`);
    assert.ok(!result.stderr.includes(secret), `stderr leaks a password (${JSON.stringify(secret)}):\n${result.stderr}`);
  }
}

/**
 * A failed run: the exit code, nothing on stdout, and exactly one stderr line without a stack
 * trace that matches every pattern given (the side, what failed, what to do).
 */
async function failsWith(
  args: readonly string[],
  code: number,
  patterns: readonly RegExp[],
  env: Record<string, string> = {},
): Promise<string> {
  const result = await runPgferry(args, env);
  assertNoSecrets(result);
  assert.equal(result.code, code, `expected exit ${code}, got ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  assert.equal(result.stdout, '');
  const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${result.stderr}`);
  const line = lines[0]!;
  assert.doesNotMatch(line, /\bat .+:\d+:\d+/, 'a stack frame reached the user');
  assert.match(line, /^pgferry: /);
  for (const pattern of patterns) assert.match(line, pattern);
  return line;
}

/** The server's log line for the session with this application_name: proof of what it negotiated. */
function connectionLogLine(cluster: Cluster, applicationName: string): string {
  const lines = readFileSync(cluster.logFile, 'utf8').split('\n');
  const line = lines.find((l) => l.includes('connection authorized') && l.includes(`application_name=${applicationName}`));
  assert.ok(line, `no "connection authorized" line for ${applicationName} in the server log`);
  return line;
}

/** Opens a session with pgferry's own connect() and asks the server whether it is encrypted. */
async function sessionIsEncrypted(url: string): Promise<boolean> {
  const spec = await resolveConnection('source', url, {});
  const { client } = await connect(spec);
  try {
    const result = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return result.rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

describe('TLS', () => {
  test('sslmode=require encrypts against a self-signed certificate without verifying it', async () => {
    const name = uniqueName('require');
    const url = appUrl(tls, tlsDb, { params: { sslmode: 'require', application_name: name } });
    const report = await checkSucceeds(['--source', url, '--target', appUrl(tls, tlsDb, { params: { sslmode: 'require' } })]);
    assert.equal(report.source.connection, `postgres://${USER}@127.0.0.1:${tls.port}/${tlsDb}?sslmode=require`);
    assert.equal(report.source.database, tlsDb);
    assert.match(connectionLogLine(tls, name), /SSL enabled/);
    assert.equal(await sessionIsEncrypted(url), true);
  });

  test('sslmode=verify-full with sslrootcert and the host the certificate names', async () => {
    const name = uniqueName('verifyfull');
    const params = { sslmode: 'verify-full', sslrootcert: rootCertFile };
    const url = appUrl(tls, tlsDb, { host: 'localhost', params: { ...params, application_name: name } });
    const report = await checkSucceeds(['--source', url, '--target', appUrl(tls, tlsDb, { host: 'localhost', params })]);
    assert.equal(report.source.connection, `postgres://${USER}@localhost:${tls.port}/${tlsDb}?sslmode=verify-full`);
    assert.match(connectionLogLine(tls, name), /SSL enabled/);
    assert.equal(await sessionIsEncrypted(url), true);
  });

  test('sslmode=verify-ca checks the chain but not the name, as libpq does', async () => {
    const url = appUrl(tls, tlsDb, { params: { sslmode: 'verify-ca', sslrootcert: rootCertFile } });
    await checkSucceeds(['--source', url, '--target', url]);
  });

  test('verify-full fails when the certificate does not name the host', async () => {
    // The certificate names localhost only; 127.0.0.1 is the same server by another name.
    const url = appUrl(tls, tlsDb, { params: { sslmode: 'verify-full', sslrootcert: rootCertFile } });
    await failsWith(['check', '--source', url, '--target', url], 1, [
      /^pgferry: source: /,
      /certificate does not name host "127\.0\.0\.1"/,
      /host name the certificate was issued for/,
    ]);
  });

  test('verify-full fails when the certificate is not signed by the given root', async () => {
    // Another cluster's trust: a root file holding a certificate that did not sign this one.
    const strangerFile = join(work, 'stranger.crt');
    writeFileSync(strangerFile, (await makeServerCertificate(['localhost'])).certificate);
    const url = appUrl(tls, tlsDb, { host: 'localhost', params: { sslmode: 'verify-full', sslrootcert: strangerFile } });
    await failsWith(['check', '--source', appUrl(tls, tlsDb), '--target', url], 1, [
      /^pgferry: target: /,
      /not signed by a trusted root/,
      /sslrootcert=/,
    ]);
  });

  for (const sslmode of ['verify-ca', 'verify-full']) {
    test(`sslmode=${sslmode} without a root certificate file is a usage error`, async () => {
      // HOME is empty, so libpq's default ~/.postgresql/root.crt does not exist either.
      const url = appUrl(tls, tlsDb, { host: 'localhost', params: { sslmode } });
      await failsWith(['check', '--source', url, '--target', appUrl(tls, tlsDb)], 2, [
        /^pgferry: source: /,
        /root certificate file ".*root\.crt" does not exist/,
        new RegExp(`sslmode=${sslmode}`),
        /point sslrootcert= at the CA certificate/,
      ]);
    });
  }

  test('sslmode=require against a server without TLS fails clearly', async () => {
    const url = appUrl(plain, plainDb, { params: { sslmode: 'require' } });
    await failsWith(['check', '--source', appUrl(plain, plainDb), '--target', url], 1, [
      /^pgferry: target: /,
      /does not accept TLS but sslmode=require requires it/,
      /enable ssl on the server, or lower sslmode/,
    ]);
  });

  test('the default sslmode (prefer) encrypts when the server offers TLS and not when it does not', async () => {
    const tlsName = uniqueName('prefer_tls');
    const plainName = uniqueName('prefer_plain');
    const source = appUrl(tls, tlsDb, { params: { application_name: tlsName } });
    const target = appUrl(plain, plainDb, { params: { application_name: plainName } });
    const report = await checkSucceeds(['--source', source, '--target', target]);
    // prefer is the default, so it is not shown.
    assert.equal(report.source.connection, `postgres://${USER}@127.0.0.1:${tls.port}/${tlsDb}`);
    assert.equal(report.target.connection, `postgres://${USER}@127.0.0.1:${plain.port}/${plainDb}`);
    assert.match(connectionLogLine(tls, tlsName), /SSL enabled/);
    assert.doesNotMatch(connectionLogLine(plain, plainName), /SSL enabled/);
    assert.equal(await sessionIsEncrypted(appUrl(tls, tlsDb)), true);
    assert.equal(await sessionIsEncrypted(appUrl(plain, plainDb)), false);
  });
});

describe('libpq environment', () => {
  test('PGFERRY_SOURCE and PGFERRY_TARGET stand in for the flags', async () => {
    const report = await checkSucceeds([], { PGFERRY_SOURCE: appUrl(tls, tlsDb), PGFERRY_TARGET: appUrl(plain, plainDb) });
    assert.equal(report.source.database, tlsDb);
    assert.equal(report.target.database, plainDb);
    assert.equal(report.target.connection, `postgres://${USER}@127.0.0.1:${plain.port}/${plainDb}`);
  });

  test('a keyword string takes what it leaves out from PGHOST, PGPORT, PGUSER and PGPASSWORD', async () => {
    const env = { PGHOST: plain.host, PGPORT: String(plain.port), PGUSER: USER, PGPASSWORD: PASSWORD };
    const report = await checkSucceeds(['--source', `dbname=${plainDb}`, '--target', `dbname='${plainDb}' sslmode=disable`], env);
    assert.equal(report.source.connection, `postgres://${USER}@127.0.0.1:${plain.port}/${plainDb}`);
    assert.equal(report.target.connection, `postgres://${USER}@127.0.0.1:${plain.port}/${plainDb}?sslmode=disable`);
  });

  test('the password comes from the file PGPASSFILE names', async () => {
    const passFile = join(work, `pgpass-${randomBytes(3).toString('hex')}`);
    writeFileSync(passFile, `# comment\n${plain.host}:${plain.port}:*:${USER}:${PASSWORD}\n`, { mode: 0o600 });
    const url = appUrl(plain, plainDb, { password: null });
    const report = await checkSucceeds(['--source', url, '--target', url], { PGPASSFILE: passFile });
    assert.equal(report.source.connection, `postgres://${USER}@127.0.0.1:${plain.port}/${plainDb}`);
  });

  test('the password comes from $HOME/.pgpass', async () => {
    const home = mkdtempSync(join(work, 'home-'));
    writeFileSync(join(home, '.pgpass'), `*:${tls.port}:${tlsDb}:${USER}:${PASSWORD}\n`, { mode: 0o600 });
    const url = `host=${tls.host} port=${tls.port} dbname=${tlsDb} user=${USER}`;
    const report = await checkSucceeds(['--source', url, '--target', url], { HOME: home });
    assert.equal(report.source.database, tlsDb);
  });

  test('without any password the server asking for one is reported, not a crash', async () => {
    const url = appUrl(plain, plainDb, { password: null });
    await failsWith(['check', '--source', url, '--target', url], 1, [/^pgferry: source: /, /password/, /PGPASSWORD or the password file/]);
  });
});

describe('bad input', () => {
  let silent: Server;
  let silentPort: number;
  const sockets = new Set<Socket>();

  before(async () => {
    // Accepts TCP connections and never says a word: what a firewall black hole or a wrong service looks like.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    silentPort = typeof address === 'object' && address ? address.port : 0;
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  test('a closed port: the side, the address, and to check the server is running', async () => {
    const closed = await closedPort();
    await failsWith(['check', '--source', appUrl(plain, plainDb, { port: closed }), '--target', appUrl(plain, plainDb)], 1, [
      /^pgferry: source: /,
      new RegExp(`nothing accepts connections at 127\\.0\\.0\\.1:${closed}`),
      /check that the server is running/,
    ]);
  });

  test('a host name that does not resolve', async () => {
    const url = appUrl(plain, plainDb, { host: 'no-such-host.pgferry.invalid', params: { connect_timeout: '3' } });
    const line = await failsWith(['check', '--source', appUrl(plain, plainDb), '--target', url], 1, [/^pgferry: target: /]);
    // Without a reachable DNS server the lookup may itself time out; either way the line says what to do.
    assert.match(line, /host name "no-such-host\.pgferry\.invalid" (does not resolve|did not resolve within 3 s) — check the host/);
  });

  test('a DNS lookup that stalls is reported as such when connect_timeout expires', async () => {
    // This machine's resolver answers at once, so a stalled one is stood in for by a hook in the
    // CLI process: lookups of .invalid names answer EAI_AGAIN only after connect_timeout.
    const hook = join(work, 'stalled-dns.mjs');
    writeFileSync(
      hook,
      `import dns from 'node:dns';
const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (!String(host).endsWith('.invalid')) return lookup.apply(this, arguments);
  const done = typeof options === 'function' ? options : callback;
  setTimeout(() => done(Object.assign(new Error('getaddrinfo EAI_AGAIN ' + host), { code: 'EAI_AGAIN' })), 3500);
};
`,
    );
    const url = appUrl(plain, plainDb, { host: 'stalled.pgferry.invalid', params: { connect_timeout: '2' } });
    await failsWith(
      ['check', '--source', url, '--target', appUrl(plain, plainDb)],
      1,
      [/^pgferry: source: host name "stalled\.pgferry\.invalid" did not resolve within 2 s/, /a DNS server is reachable/],
      { NODE_OPTIONS: `--import ${hook}` },
    );
  });

  test('a wrong password: the side, the user, where the password came from', async () => {
    const url = appUrl(plain, plainDb, { password: WRONG_PASSWORD });
    await failsWith(['check', '--source', url, '--target', appUrl(plain, plainDb)], 1, [
      /^pgferry: source: /,
      /password authentication failed for user "app" \(password from connection string\)/,
      /check the password/,
    ]);
  });

  test('a wrong password from PGPASSWORD says so', async () => {
    const url = appUrl(plain, plainDb, { password: null });
    await failsWith(
      ['check', '--source', appUrl(plain, plainDb), '--target', url],
      1,
      [/^pgferry: target: /, /\(password from PGPASSWORD\)/],
      {
        PGPASSWORD: WRONG_PASSWORD,
      },
    );
  });

  test('a database that does not exist', async () => {
    await failsWith(['check', '--source', appUrl(plain, plainDb), '--target', appUrl(plain, 'no_such_db')], 1, [
      /^pgferry: target: /,
      new RegExp(`database "no_such_db" does not exist on 127\\.0\\.0\\.1:${plain.port}`),
      /create it, or fix the database name/,
    ]);
  });

  test('a server that accepts the connection and never answers times out after connect_timeout', async () => {
    const url = appUrl(plain, plainDb, { port: silentPort, params: { connect_timeout: '2' } });
    const started = Date.now();
    await failsWith(['check', '--source', url, '--target', appUrl(plain, plainDb)], 1, [
      /^pgferry: source: /,
      new RegExp(`no answer from 127\\.0\\.0\\.1:${silentPort} within 2 s`),
      /raise connect_timeout/,
    ]);
    assert.ok(Date.now() - started < 15_000, 'the timeout was not honoured');
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['an unparsable URL', `postgres://${USER}:${encodeURIComponent(PASSWORD)}@[::1/db`, /the URL cannot be parsed/],
    ['a keyword without a value', `password=${PASSWORD} host=localhost port`, /expected "key=value"/],
    ['an unterminated quote', `host=localhost password='${PASSWORD}`, /has no closing quote/],
    ['neither form', 'just-some-words', /neither a postgres:\/\/ URL nor a list of key=value pairs/],
    ['an unknown keyword', `host=localhost password='${PASSWORD}' colour=blue`, /unknown parameter "colour"/],
  ];
  for (const [what, text, reason] of malformed) {
    test(`a malformed connection string: ${what}`, async () => {
      await failsWith(['check', '--source', appUrl(plain, plainDb), '--target', text], 2, [
        /^pgferry: target connection string /,
        reason,
        / — /,
      ]);
    });
  }

  test('a password left unencoded in a URL is refused without showing any piece of it', async () => {
    // "/" in the password ends the host early: "ss" would become the host and "word!@…" the database.
    const url = `postgres://${USER}:${PASSWORD}@${plain.host}:${plain.port}/${plainDb}`;
    const line = await failsWith(['check', '--source', url, '--target', appUrl(plain, plainDb)], 2, [
      /^pgferry: source connection string is malformed: /,
      /percent-encode "@", "\/"/,
    ]);
    assert.ok(!line.includes('word!') && !line.includes('S3cr3t'), line);
  });

  test('an unquoted password with a space in a keyword string is refused without showing any piece of it', async () => {
    const line = await failsWith(
      ['check', '--source', appUrl(plain, plainDb), '--target', `host=${plain.host} password=S3cr3t p@ss/word!`],
      2,
      [/^pgferry: target connection string is malformed: /, /single quotes/],
    );
    assert.ok(!line.includes('p@ss') && !line.includes('S3cr3t'), line);
  });

  test('an unknown flag', async () => {
    const url = appUrl(plain, plainDb);
    await failsWith(['check', '--source', url, '--target', url, '--colour'], 2, [/unknown option '--colour'/, /pgferry --help/]);
  });

  test('a missing --source', async () => {
    await failsWith(['check', '--target', appUrl(plain, plainDb)], 2, [
      /no source database given/,
      /pass --source .* or set PGFERRY_SOURCE/,
    ]);
  });

  test('with --debug a stack trace may follow, still without the password', async () => {
    const url = appUrl(plain, plainDb, { password: WRONG_PASSWORD });
    const result = await runPgferry(['check', '--debug', '--source', url, '--target', appUrl(plain, plainDb)]);
    assertNoSecrets(result);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^pgferry: source: password authentication failed/m);
    assert.match(result.stderr, /\n\s+at /);
  });
});

/** A port nothing listens on: bound once to learn a free number, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
