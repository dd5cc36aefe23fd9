/**
 * pgferry's own state lives on the target, in the `pgferry` schema, so any machine can pick a
 * migration up where another left it (DESIGN decision 7). Each step records what it finished
 * in the same transaction as the work itself. This room alone runs SQL against that schema.
 */
export {
  ensureStateSchema,
  appliedSchemaObjects,
  recordSchemaObject,
  stateSchemaExists,
  stateSchemaIsEmpty,
  dropStateSchema,
} from './schema.js';
export { stateTableExists } from './exists.js';
export type { StateTable } from './exists.js';

export {
  ensureCopyState,
  cloneState,
  startClone,
  storedPlan,
  markUnitDone,
  finishClone,
  resetTableUnits,
  copyPositions,
  plannedSchema,
  copyIsResumable,
  renamePlannedTable,
  recordSnapshotHeld,
  recordSnapshotReleased,
  forgetHeldSnapshots,
  oldestHeldSnapshot,
} from './copy.js';
export type { CloneState, PlannedUnitRow, StoredUnit, UnitPosition } from './copy.js';
export {
  ensureSyncState,
  readSyncState,
  startSyncState,
  copyFinishedState,
  prepareFollowingState,
  forgetFollowingState,
  recordSourceSystem,
  recordSyncProblem,
  setSyncPhase,
  startStreamingRun,
  syncIsStreaming,
  followedThrough,
  readFenceProgress,
  readSlotPosition,
  readSyncPhase,
  appliedPast,
  flushStateWrites,
  HEARTBEAT_FRESH_SECONDS,
  requestSyncStop,
  withdrawSyncStop,
  readStreamRequests,
  recordAppliedBatch,
  recordIdlePosition,
  recordHeartbeat,
  wantProgress,
  readLagProgress,
  readSyncTables,
} from './sync.js';
export type { SyncState, FollowedThrough, SyncPhase, SyncIdentity, AppliedBatch, TableCounts, Heartbeat } from './sync.js';
export {
  ensureCutoverState,
  recordFreezeIntent,
  recordUnfrozen,
  recordCutoverOutcome,
  recordWayBack,
  freezesInPlace,
  lastCutover,
} from './cutover.js';
export type { CutoverRecord, FreezeMode, FreezeRecord, RevokedPrivilege } from './cutover.js';
export {
  requestRecording,
  renewRecording,
  recordingStart,
  endRecording,
  dropExpiredRecording,
  recordChangedRows,
  readRecordedPage,
  recordingPosition,
} from './recording.js';
export type { ChangedRow, RecordingRequest, RecordingPosition, RecordedCursor, RecordedPage } from './recording.js';
export { notifySync, parseProgress, PhaseListener, ProgressListener, PHASE_CHANNEL, PROGRESS_CHANNEL, REQUESTS_CHANNEL } from './notify.js';
export type { SyncProgress } from './notify.js';
