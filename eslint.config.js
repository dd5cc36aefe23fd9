// @ts-check
/**
 * The linter catches what review keeps missing: a promise nobody awaits (a failure that
 * vanishes, a step that runs after its deadline), and casts that tell the compiler what it
 * cannot check. Only rules that find real mistakes are on; formatting is prettier's job.
 * Deliberate fire-and-forget is written `void promise` (with its .catch), so it stays visible.
 */
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'scripts/**', 'eslint.config.js'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/it return promises the runner itself awaits.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
        },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unsafe-type-assertion': 'error',
      '@typescript-eslint/no-non-null-asserted-optional-chain': 'error',
      'no-restricted-syntax': [
        'error',
        {
          // SQLSTATEs and socket codes are read through plumbing/error-codes.ts (sqlState, systemErrorCode).
          selector: "TSAsExpression > TSTypeLiteral > TSPropertySignature[key.name='code']",
          message: 'read error codes with sqlState() or systemErrorCode() from plumbing, not a cast',
        },
      ],
    },
  },
  {
    // Tests, benchmarks and the demo read pgferry's JSON output into its declared report types;
    // a wrong shape fails the assertions that follow, so those casts are checked where it counts.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'demo/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-type-assertion': 'off' },
  },
);
