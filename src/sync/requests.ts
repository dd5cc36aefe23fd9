import type pg from 'pg';
import type { ChangeRecording } from '../apply/index.js';
import { asError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { repeatEvery } from '../plumbing/index.js';
import { dropExpiredRecording, readStreamRequests, REQUESTS_CHANNEL, type RecordingRequest } from '../state/index.js';

/** How often a streaming sync looks on the target for a cut-over's requests, when no notification woke it sooner. */
const POLL_MS = 100;

export interface RequestWatch {
  /** Ends the polling; resolves once the read in flight, if any, is done. */
  stop(): Promise<void>;
}

/**
 * What a cut-over asks of a running sync, through the target (state/sync.ts): to stop, to
 * record the rows it applies, and to notify it of each batch while it waits on the progress. Read every POLL_MS, and at once when the cut-over notifies on
 * REQUESTS_CHANNEL (its stop waits on this inside the write freeze). `onStop` is called once.
 * The first read is done before this returns: a run that starts while a cut-over records
 * records from its first batch.
 */
export async function watchRequests(options: {
  readonly target: pg.Client;
  readonly recording: ChangeRecording;
  readonly timers: NodeJS.Timeout[];
  readonly log: Logger;
  readonly onStop: (reason: string) => void;
  /** Whether a cut-over waits on sync's progress (each batch then notifies it), at each read. */
  readonly onProgressWanted: (wanted: boolean) => void;
  readonly onError: (error: Error) => void;
}): Promise<RequestWatch> {
  const { target, recording, log } = options;
  let stopped = false;
  const read = async () => {
    const requests = await readStreamRequests(target);
    await followRecording(target, requests.recording, recording, log);
    options.onProgressWanted(requests.progressWanted);
    if (requests.stop !== undefined && !stopped) {
      stopped = true;
      options.onStop(requests.stop);
    }
  };
  await read();
  let inFlight: Promise<void> | undefined;
  const readOnce = (): Promise<void> => {
    inFlight ??= read()
      .catch((error: unknown) => options.onError(asError(error)))
      .finally(() => (inFlight = undefined));
    return inFlight;
  };
  const onNotification = (message: pg.Notification) => {
    if (message.channel === REQUESTS_CHANNEL) void readOnce();
  };
  target.on('notification', onNotification);
  await target.query(`LISTEN ${REQUESTS_CHANNEL}`);
  const repetition = repeatEvery(POLL_MS, options.timers, readOnce);
  return {
    async stop() {
      target.off('notification', onNotification);
      await repetition.stop();
      await inFlight;
    },
  };
}

/**
 * Records while a request stands. One whose lease ran out is dropped, with what was recorded
 * for it; only once that drop succeeded does recording stop (the cut-over may have renewed it
 * just now, and must then find that nothing went unrecorded).
 */
async function followRecording(
  target: pg.Client,
  request: RecordingRequest | undefined,
  recording: ChangeRecording,
  log: Logger,
): Promise<void> {
  if (request === undefined) {
    if (recording.current) log.info('the cut-over no longer asks for the rows applied: recording stopped');
    recording.stop();
    return;
  }
  if (request.expired && (await dropExpiredRecording(target, request.id))) {
    if (recording.current)
      log.warn({ request: request.id }, "a cut-over's request to record the rows applied lapsed (the cut-over is gone): recording stopped");
    recording.stop();
    return;
  }
  if (recording.current?.id !== request.id) log.info({ request: request.id }, 'recording the rows applied, as a cut-over asked');
  recording.follow(request.id, request.acknowledged);
}
