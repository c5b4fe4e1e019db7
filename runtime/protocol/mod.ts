/**
 * The control channel between the CLI, the control plane and workers: its interfaces and
 * its gRPC transport (`proto/control.proto`).
 */
export * from "./_types.ts";
export {
  connectControlPlane,
  connectWorker,
  type Listening,
  serveControlPlane,
  serveWorker,
} from "./_grpc.ts";
