/**
 * The control plane: workflow definitions, runs and attempts (persisted in SQLite), and the
 * compile step of deployment including per-environment resource overrides.
 */
export {
  type ControlLimits,
  type ControlObserver,
  ControlPlane,
  type ControlPlaneOptions,
  DEFAULT_LIMITS,
} from "./_control_plane.ts";
export { applyOverrides, parseEnvFile } from "./_compile.ts";
export type { AttemptRecord } from "./_history.ts";
export { type HistoryApi, openHistory, troubledAttempts } from "./_history_api.ts";
export { DEFAULT_COMPILE_TIMEOUT_MS } from "./_compile_thread.ts";
export {
  place,
  type PlacedEdge,
  type PlacedStage,
  type Placement,
  PlacementError,
  type StageGroup,
  stageGroups,
} from "./_placement.ts";
export { parseCron, parseEvery, ScheduleSyntaxError } from "./_schedule_cron.ts";
export { DEFAULT_WORKER_TIMEOUT_MS, HEARTBEAT_MS } from "./_workers.ts";
export { DEFAULT_LEASE_MS, type Leader, LeaderLease } from "./_lease.ts";
export { StandbyGate } from "./_lease_gate.ts";
export { describeDatabase, isPostgresUrl, StateStoreError } from "./_store_pg.ts";
