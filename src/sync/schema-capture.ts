import type pg from 'pg';
import { serverMajor, type ScopeFilter } from '../catalog/index.js';
import {
  captureNames,
  captureQueue,
  coverTruncates,
  installCapture,
  mayCreateEventTriggers,
  TRUNCATE_IN_STREAM_FROM_MAJOR,
  withCaptureSuspended,
} from '../ddl/index.js';
import type { Logger } from '../log/index.js';
import { quoteIdent, quoteLiteral } from '../plumbing/index.js';
import type { MigrationNames } from './source-setup.js';

/** How schema changes on the source reach the target in this run. */
export type CaptureMode =
  /** The event trigger puts each command into the stream. */
  | { readonly kind: 'trigger'; readonly queue: string | undefined }
  /** The role may not create event triggers: only what the stream itself shows is followed. */
  | { readonly kind: 'stream-only'; readonly why: string };

/**
 * Installs (or refreshes) the capture before the slot exists or the stream restarts, so every
 * command after the slot's snapshot is in the stream. Without the privilege sync goes on and
 * says what it will not see.
 */
export async function prepareCapture(
  source: pg.Client,
  names: MigrationNames,
  filter: ScopeFilter,
  log: Logger,
  { resuming }: { readonly resuming: boolean },
): Promise<CaptureMode> {
  const probe = await mayCreateEventTriggers(source);
  const sourceMajor = await serverMajor(source);
  if (!probe.allowed) {
    if (sourceMajor < TRUNCATE_IN_STREAM_FROM_MAJOR) {
      log.error(
        { why: probe.why },
        'PostgreSQL 10 does not stream TRUNCATE and, without the capture, pgferry cannot carry it either: a TRUNCATE on the source is lost on the target (verify at the cut-over would refuse the difference). Run as a superuser, or use DELETE',
      );
    }
    log.warn(
      { why: probe.why },
      'the source role may not create event triggers: schema changes on the source are not carried (a new column reaches the target when its rows do; anything else stops sync with the change named). Run as a superuser (rds_superuser on RDS and Aurora) to carry them',
    );
    return { kind: 'stream-only', why: probe.why };
  }
  const capture = captureNames(names.name);
  if (resuming) {
    const { rows } = await source.query<{ present: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1) AS present`,
      [capture.endTrigger],
    );
    if (!rows[0]!.present) {
      log.error(
        { trigger: capture.endTrigger },
        'the schema-change capture was missing on the source (dropped by someone): schema changes made while it was gone are not on the target; compare with pgferry verify',
      );
    }
  }
  await installCapture(source, { migration: names.name, publication: names.publication, filter, sourceMajor });
  const queue = captureQueue(names.name, sourceMajor);
  if (queue && resuming) {
    await withCaptureSuspended(source, () =>
      source.query(
        `DO $$BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = ${quoteLiteral(names.publication)} AND schemaname = ${quoteLiteral(capture.schema)} AND tablename = ${quoteLiteral(capture.queue)}) THEN
             ALTER PUBLICATION ${quoteIdent(names.publication)} ADD TABLE ${queue};
           END IF;
         END$$`,
      ),
    );
  }
  if (resuming && sourceMajor < TRUNCATE_IN_STREAM_FROM_MAJOR) await coverTruncatesOfPublication(source, names, log, { resuming });
  return { kind: 'trigger', queue };
}

/**
 * On a PostgreSQL 10 source, the TRUNCATE trigger on every published table (see
 * ddl/truncate-capture.ts); made after the publication and before the slot. On a resume a table
 * found without one lost it while sync was away: a TRUNCATE then was not carried.
 */
export async function coverTruncatesOfPublication(
  source: pg.Client,
  names: MigrationNames,
  log: Logger,
  { resuming }: { readonly resuming: boolean },
): Promise<void> {
  const added = await coverTruncates(source, names.name, names.publication);
  if (resuming && added.length > 0) {
    log.error(
      { tables: added },
      'the TRUNCATE capture was missing on these source tables (dropped by someone): a TRUNCATE made while it was gone is not on the target; compare with pgferry verify',
    );
  }
}
