import type pg from 'pg';
import type { Scope, ScopeFilter } from '../catalog/index.js';
import type { Logger } from '../log/index.js';
import { serverMajor } from '../catalog/index.js';
import { TRUNCATE_IN_STREAM_FROM_MAJOR } from '../ddl/index.js';
import { coverTruncatesOfPublication, prepareCapture, type CaptureMode } from './schema-capture.js';
import { createPublication, extensionTablesToPublish, tablesToPublish, type MigrationNames } from './source-setup.js';

/**
 * Everything the migration needs on the server it streams from, bar the slot: the schema-change
 * capture, then the publication of the tables in scope (with the capture's queue table where
 * the server has no logical messages). Sync calls it before the first slot; a cut-over calls it
 * on the new primary before the way back's slot. Tables the stream could not identify are
 * refused before anything is made.
 */
export async function publishScope(
  client: pg.Client,
  names: MigrationNames,
  filter: ScopeFilter,
  scope: Scope,
  log: Logger,
): Promise<CaptureMode> {
  const tables = await publishedTables(client, scope, log);
  const capture = await prepareCapture(client, names, filter, log, { resuming: false });
  await createPublication(client, names.publication, [...tables, ...queueOf(capture)]);
  if (capture.kind === 'trigger' && (await serverMajor(client)) < TRUNCATE_IN_STREAM_FROM_MAJOR) {
    await coverTruncatesOfPublication(client, names, log, { resuming: false });
  }
  return capture;
}

/**
 * The publication made again with the tables in scope now: a cut-over refreshes the way back's
 * just before it starts, so a table created on the old primary meanwhile (and created on the new
 * one by sync's replay, which the capture there does not see) is in it.
 */
export async function republishScope(
  client: pg.Client,
  names: MigrationNames,
  scope: Scope,
  capture: CaptureMode,
  log: Logger,
): Promise<void> {
  const tables = await publishedTables(client, scope, log);
  await createPublication(client, names.publication, [...tables, ...queueOf(capture)]);
}

async function publishedTables(client: pg.Client, scope: Scope, log: Logger): Promise<string[]> {
  const tables = await tablesToPublish(client, scope);
  const extensionTables = await extensionTablesToPublish(client, scope);
  if (extensionTables.leftOut.length > 0) {
    log.warn(
      { tables: extensionTables.leftOut },
      'extension configuration tables without a key or replica identity are copied but not streamed: later changes to their rows will not reach the target',
    );
  }
  return [...tables, ...extensionTables.published];
}

function queueOf(capture: CaptureMode): string[] {
  return capture.kind === 'trigger' && capture.queue ? [capture.queue] : [];
}
