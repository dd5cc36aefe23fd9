import pino, { type Logger } from 'pino';
import { scrubSecrets } from '../config/index.js';

export type { Logger } from 'pino';

/** Every serialised line, fields and error messages included, is scrubbed on its way out. */
function scrubbing(destination: NodeJS.WritableStream): pino.DestinationStream {
  return { write: (line: string) => destination.write(scrubSecrets(line)) };
}

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
    },
    scrubbing(options.destination ?? process.stderr),
  );
}
