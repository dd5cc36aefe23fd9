/**
 * Bundles the command line into one file, dist/pgferry.mjs, which bin/pgferry.js loads.
 *
 * Why: every pgferry run used to spend most of its start-up resolving and loading ESM modules
 * (dist/src plus pg, pino, commander, ...): `pgferry --version` took TODO s against TODO s
 * for a bare `node -e 0`; bundled it takes TODO s (medians of 5 runs). Scripts and benchmarks
 * that run pgferry many times pay that on each run. The library entry (dist/src/index.js)
 * stays unbundled.
 *
 * The input is tsc's output (dist/src/cli/main.js), so the bundle holds exactly the code tsc
 * checked. The linked source map leads back to src/*.ts, but node only reads it when run
 * with --enable-source-maps, which we don't turn on by default since it slows start-up:
 * --debug stack traces point into dist/pgferry.mjs unless you add that flag yourself.
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
  banner: { js: "import { createRequire as pgferryCreateRequire } from 'node:module';\nconst require = pgferryCreateRequire(import.meta.url);" },
  // Bundling renames clashing top-level names (CommanderError becomes CommanderError2); keep
  // the original .name, which stack traces and pino's error serialiser (its `type`) show.
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});
