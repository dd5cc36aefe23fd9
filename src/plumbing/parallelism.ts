import { availableParallelism } from 'node:os';

/**
 * Parallel sessions per side when the user names none (COPY pipes, index builds, tables
 * verified at once): one per core, at least two (one waits on the network while the other
 * works), at most eight (more rarely helps one server and costs it connections).
 */
export const DEFAULT_JOBS = Math.max(2, Math.min(8, availableParallelism()));
