import pino, { type Logger } from 'pino';
import { scrubSecrets } from '../config/index.js';

export type { Logger } from 'pino';

/**
 * Structured logs go to stderr so stdout stays free for reports and --json. Every message
 * string is scrubbed of secrets; connection objects are never logged, only their descriptions.
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: 'pgferry' },
      redact: { paths: ['password', '*.password', 'connectionString', '*.connectionString'], censor: '******' },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? scrubSecrets(arg) : arg)) as typeof args;
          method.apply(this, scrubbed);
        },
      },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}
