export {
  installCapture,
  removeCapture,
  withCaptureSuspended,
  captureNames,
  captureQueue,
  mayCreateEventTriggers,
  CAPTURE_SCHEMA,
  TRUNCATE_IN_STREAM_FROM_MAJOR,
} from './capture.js';
export type { CaptureNames, CaptureSetup } from './capture.js';
export { SchemaChangeReplayer } from './replay.js';
export type { DdlPolicy, ReplayOptions } from './replay.js';
export { coverTruncates } from './truncate-capture.js';
