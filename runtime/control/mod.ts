/**
 * The control plane: workflow definitions, runs and attempts (persisted in SQLite), and the
 * compile step of deployment including per-environment resource overrides.
 */
export { ControlPlane, type ControlPlaneOptions } from "./_control_plane.ts";
export { applyOverrides, parseEnvFile } from "./_compile.ts";
export type { AttemptRecord } from "./_store.ts";
