import { availableParallelism } from 'node:os';

/**
 * Parallel sessions per side when the user names none (COPY pipes, index builds, tables
 * verified at once): one per core, at least two (one waits on the network while the other
 * works), at most eight (more rarely helps one server and costs it connections).
 */
export const DEFAULT_JOBS = Math.max(2, Math.min(8, availableParallelism()));

/**
 * A number of jobs shared by several pieces of work running at once (the copies of every
 * database of `sync --all-databases` within one `--jobs`): each job takes a permit before it
 * opens its sessions and gives it back when it ends; waiters are served first come, first served.
 */
export class Permits {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly total: number) {
    this.free = Math.max(1, total);
  }

  /** Resolves with the permit's release once one is free; release is idempotent. */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/**
 * Runs each branch at once and waits for every one to end (none is left running behind an
 * error, so what undoes them finds them settled); then throws the failure that came first, if any.
 */
export async function allBranches(branches: ReadonlyArray<() => Promise<void>>): Promise<void> {
  let first: { readonly error: unknown } | undefined;
  await Promise.all(
    branches.map((branch) =>
      branch().catch((error: unknown) => {
        first ??= { error };
      }),
    ),
  );
  if (first) throw first.error;
}
