/**
 * The control channel between the CLI, the control plane and workers: its interfaces, its
 * gRPC transport (`proto/control.proto`), and the credentials every gRPC service of a node
 * requires (token and TLS), which the cluster's data plane reuses.
 */
export * from "./_types.ts";
export { eventErrorMessage } from "./_event_error.ts";
export {
  connectControlPlane,
  connectWorker,
  listen,
  type Listening,
  serveControlPlane,
  serveWorker,
} from "./_grpc.ts";
export {
  authInterceptor,
  bearer,
  checkListen,
  type ClientTransport,
  clientTransport,
  createServer,
  type Credentials,
  isLoopback,
  ListenRefused,
  peerName,
  requireToken,
  serverCredentials,
  type TlsMaterial,
  TOKEN_HEADER,
  tokenMatches,
  UNAUTHENTICATED_MESSAGE,
} from "./_auth.ts";
export {
  clientCredentials,
  CredentialError,
  type CredentialOptions,
  defaultStateDir,
  newToken,
  nodeCredentials,
  tokenPath,
} from "./_credentials.ts";
export {
  FIRST_ATTEMPTS,
  type FirstAttempts,
  firstAttemptsOf,
  LATENCY_BOUNDS_MS,
  latencyBucket,
  packReport,
  REPORT,
} from "./_report.ts";
export { grpc, loader } from "./_npm.ts";
