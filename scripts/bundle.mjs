/**
 * Bundles the command line into one file, dist/pgferry.mjs, which bin/pgferry.js loads.
 *
 * Why: every pgferry run used to spend most of its start-up resolving and loading ESM modules
 * (115 files of dist/src plus 110 of pg, pino, commander, ...): `pgferry --version` took
 * 0.25 s against 0.08 s for a bare `node -e 0`; bundled it takes 0.16 s (medians of 5 runs
 * of /usr/bin/time, Node 20, 2 cores). Every run pays it, and scripts and benchmarks run
 * pgferry many times. The library entry (dist/src/index.js) stays unbundled.
 *
 * The input is tsc's output (dist/src/cli/main.js), so the bundle holds exactly the code tsc
 * checked. The linked source map leads back to src/*.ts, but node only reads it when run
 * with --enable-source-maps, which we don't turn on by default since it slows start-up
 * (about 0.02 s): --debug stack traces point into dist/pgferry.mjs unless you add that flag.
 *
 * Bundled, pino's transports (worker threads loading files next to pino's own, through
 * __dirname) would not work; pgferry logs to a stream of its own (src/log) and uses none.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

await build({
  absWorkingDir: fileURLToPath(root),
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/pgferry.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // pg loads pg-native only when asked for its native bindings, which pgferry never is.
  external: ['pg-native'],
  // Inside the bundle package.json is no longer three folders up from the CLI (src/cli/index.ts).
  define: { PGFERRY_VERSION: JSON.stringify(version) },
  // CommonJS dependencies (pg, pino, ...) call require() on node built-ins; an ES module has
  // no require of its own, so give the bundle one.
  banner: {
    js: "import { createRequire as pgferryCreateRequire } from 'node:module';\nconst require = pgferryCreateRequire(import.meta.url);",
  },
  // Bundling renames clashing top-level names (CommanderError becomes CommanderError2); keep
  // the original .name, which stack traces and pino's error serialiser (its `type`) show.
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});
