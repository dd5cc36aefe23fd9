import type { ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import { PoolSwitch, type PoolOptions } from '../pgbouncer/index.js';
import type { Finding } from './finding.js';

/**
 * `check --pgbouncer`: the cut-over's own preparation, run and let go (it changes nothing): the
 * admin login, the pooled database that points at the source, the file that defines it and
 * whether pgferry can replace it; then what the pool mode means for the pause.
 */
export async function pgbouncerFindings(options: Omit<PoolOptions, 'maxPauseMs'>, source: ConnectionSpec): Promise<Finding[]> {
  let pool: PoolSwitch;
  try {
    // Where it would point is not checked: the source stands for the target too.
    pool = await PoolSwitch.prepare({ ...options, maxPauseMs: 0 }, [{ source, target: source }]);
  } catch (error) {
    return [
      {
        id: 'pgbouncer.unusable',
        severity: 'error',
        message: messageOf(error),
        why: 'the cut-over pauses the pooled database through the admin console and repoints it by rewriting this file; it refuses to start without both',
        fix: error instanceof PgferryError && error.fix ? error.fix : 'check --pgbouncer and --pgbouncer-ini',
      },
    ];
  }
  try {
    return [poolModeFinding(pool.name, pool.poolMode)];
  } finally {
    await pool.close();
  }
}

export function poolModeFinding(database: string, mode: string): Finding {
  if (mode === 'session') {
    return {
      id: 'pgbouncer.pool-mode',
      severity: 'warning',
      message: `"${database}" is pooled in session mode`,
      why: 'in session pooling a server is held until its client disconnects, so PAUSE waits for every connected client to leave: with a pool of long-lived connections it waits past --drain-timeout and the cut-over is called off',
      fix: `set pool_mode = transaction for "${database}" (if the application needs no session state), or make the application's connections short-lived for the cut-over`,
    };
  }
  return {
    id: 'pgbouncer.pool-mode',
    severity: 'info',
    message: `"${database}" is pooled in ${mode} mode: the cut-over's pause waits only for running ${mode === 'statement' ? 'statements' : 'transactions'}`,
    why: 'clients see a short wait, not an error, while the pool is paused, repointed and resumed',
    fix: 'nothing to do',
  };
}
