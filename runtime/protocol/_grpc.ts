/**
 * gRPC transport of the control channel: serves a `ControlApi` or `WorkerApi` object over
 * `proto/control.proto`, and makes client objects with the same interfaces. Nothing here
 * knows what the calls do; it only moves them, so in-process and remote use share one path.
 * Every server and client is built from `Credentials` (`_auth.ts`): there is no way to
 * serve the control channel without authentication.
 */
import type * as Grpc from "@grpc/grpc-js";
import { grpc, loader } from "./_npm.ts";
import { clientTransport, createServer, type Credentials, serverCredentials } from "./_auth.ts";
import {
  type ControlApi,
  ControlError,
  type ListLogsRequest,
  type ListRunsRequest,
  type LogPage,
  type Run,
  type RunDetails,
  type RunEvent,
  type RunPage,
  type ScheduleInfo,
  type SetScheduleRequest,
  type WirePackage,
  type WorkerApi,
  type WorkerHealth,
} from "./_types.ts";
import { unpackReport } from "./_report.ts";

const protoPath = new URL("../../proto/control.proto", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Loaded = any;

let loaded: Loaded | undefined;
function services(): Loaded {
  const definition: Loaded = grpc.loadPackageDefinition(
    loader.loadSync(protoPath, { longs: Number, defaults: true, enums: String }),
  );
  loaded ??= definition.heddle.control.v1;
  return loaded;
}

/**
 * The largest message either side accepts. Requests above a control plane's own limits
 * (`--max-source-size`) get its clear refusal; this only stops what is far beyond them.
 */
const MAX_MESSAGE = 64 * 1024 * 1024;

type Callback = (error: Grpc.ServiceError | null, value?: unknown) => void;

/** Wraps an async method as a unary gRPC handler, mapping ControlError to status codes. */
function unary<A>(fn: (request: A) => Promise<unknown>) {
  return (call: { request: A }, callback: Callback) => {
    // A method that throws before returning its promise must still answer the call.
    Promise.resolve().then(() => fn(call.request)).then(
      (value) => callback(null, value),
      (e) => callback(toStatus(e)),
    );
  };
}

/** gRPC's status name per ControlError code (names: the package loads on first use). */
const statusOf = {
  "not-found": "NOT_FOUND",
  "invalid": "INVALID_ARGUMENT",
  "unavailable": "UNAVAILABLE",
  "unauthenticated": "UNAUTHENTICATED",
  "not-leader": "FAILED_PRECONDITION",
} as const;

function toStatus(e: unknown): Grpc.ServiceError {
  const code = grpc.status[e instanceof ControlError ? statusOf[e.code] : "INTERNAL"];
  const error = new Error(e instanceof Error ? e.message : String(e)) as Grpc.ServiceError;
  error.code = code;
  error.details = error.message;
  return error;
}

function fromStatus(e: Grpc.ServiceError): Error {
  const code = Object.entries(statusOf).find(([, c]) => grpc.status[c] === e.code)?.[0] as
    | ControlError["code"]
    | undefined;
  if (e.code === grpc.status.UNAVAILABLE) {
    return new ControlError(`the server is unreachable: ${e.details || e.message}`, "unavailable");
  }
  if (e.code === grpc.status.RESOURCE_EXHAUSTED) {
    return new ControlError(
      `the request or its answer is larger than the transport takes (${MAX_MESSAGE} bytes): ` +
        (e.details || e.message),
      "invalid",
    );
  }
  if (e.code === grpc.status.DEADLINE_EXCEEDED) {
    return new ControlError("the server did not answer in time", "unavailable");
  }
  if (e.code === grpc.status.UNAUTHENTICATED) {
    return new ControlError(
      "the server refused the call: a valid token is required (the daemon's owner has it in " +
        "its state directory; pass --state or --token-file)",
      "unauthenticated",
    );
  }
  return code ? new ControlError(e.details || e.message, code) : new Error(e.details || e.message);
}

/** A listening gRPC server; `address` is where it ended up (the port resolved). */
export interface Listening {
  address: string;
  close(): Promise<void>;
}

/**
 * Binds a server made by `createServer` (every call authenticated) at `address`; `register`
 * adds its services. Exported for the cluster's other services (Flight).
 */
export async function listen(
  address: string,
  credentials: Credentials,
  register: (server: Grpc.Server) => void,
): Promise<Listening> {
  const server = createServer(credentials, { "grpc.max_receive_message_length": MAX_MESSAGE });
  register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      address,
      serverCredentials(credentials),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  const bound = address.startsWith("unix:") ? address : address.replace(/:\d+$/, `:${port}`);
  return {
    address: bound,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** Serves a control plane at `address` (`host:port`, port 0 picks one, or `unix:/path`). */
export function serveControlPlane(
  api: ControlApi,
  address: string,
  credentials: Credentials,
): Promise<Listening> {
  return listen(
    address,
    credentials,
    (server) =>
      server.addService(services().ControlPlane.service, {
        Deploy: unary((r: Parameters<ControlApi["deploy"]>[0]) => api.deploy(r)),
        ListWorkflows: unary(async () => ({ workflows: await api.listWorkflows() })),
        StartRun: unary((r: { workflow: string }) => api.startRun(r.workflow)),
        GetRun: unary((r: { runId: string }) => api.getRun(r.runId)),
        ListRuns: unary((r: ListRunsRequest) => api.listRuns(r)),
        StopRun: unary((r: { runId: string }) => api.stopRun(r.runId)),
        ListLogs: unary((r: ListLogsRequest) => api.listLogs(r)),
        GetRunDetails: unary((r: { runId: string }) => api.getRunDetails(r.runId)),
        SetSchedule: unary((r: SetScheduleRequest) => api.setSchedule(r)),
        ListSchedules: unary(async () => ({ schedules: await api.listSchedules() })),
        DeleteSchedule: unary((r: { workflow: string }) => api.deleteSchedule(r.workflow)),
        RegisterWorker: unary(async (r: Parameters<ControlApi["registerWorker"]>[0]) => {
          await api.registerWorker(r);
          return { ok: true };
        }),
        LeaveWorker: unary(async (r: { id: string }) => ({ known: await api.leaveWorker(r.id) })),
        PlanRun: unary(async (r: { workflow: string }) => ({
          placementJson: await api.planRun(r.workflow),
        })),
        FetchPackage: unary((r: { hash: string; name: string; dir?: string }) =>
          api.fetchPackage(r)
        ),
      }),
  );
}

/** Serves a worker at `address`. */
export function serveWorker(
  api: WorkerApi,
  address: string,
  credentials: Credentials,
): Promise<Listening> {
  return listen(address, credentials, (server) =>
    server.addService(services().Worker.service, {
      Execute: (call: Grpc.ServerWritableStream<Parameters<WorkerApi["execute"]>[0], unknown>) => {
        const send = (e: RunEvent) => call.write({ ...e, detailJson: JSON.stringify(e.detail) });
        // A caller that hung up (a control plane that died or gave up on this worker) stops
        // the run: nobody would take its results (docs/cluster.md, "Failures").
        const gone = new AbortController();
        call.on("cancelled", () => gone.abort());
        api.execute(call.request, send, gone.signal).then(
          () => call.end(),
          (e) => call.destroy(toStatus(e)),
        );
      },
      Cancel: unary(async (r: { runId: string }) => ({ found: await api.cancel(r.runId) })),
      Health: unary(() => api.health()),
    }));
}

function client(service: string, address: string, credentials: Credentials): Loaded {
  const transport = clientTransport(credentials, address);
  return new (services()[service])(address, transport.channel, {
    ...transport.options,
    "grpc.max_receive_message_length": MAX_MESSAGE,
  });
}

/** How long a call may take: a deploy compiles, everything else only reads or writes state. */
function deadlineOf(method: string): number {
  return Date.now() + (method === "Deploy" ? 300_000 : 30_000);
}

function call<T>(c: Loaded, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    c[method](
      request,
      { deadline: deadlineOf(method) },
      (e: Grpc.ServiceError | null, v: T) => e ? reject(fromStatus(e)) : resolve(v),
    )
  );
}

/** A `ControlApi` that talks to the control plane at `address`. */
export function connectControlPlane(
  address: string,
  credentials: Credentials,
): ControlApi & { close(): void } {
  const c = client("ControlPlane", address, credentials);
  return {
    deploy: (r) => call(c, "Deploy", r),
    listWorkflows: async () =>
      (await call<{ workflows: ControlApiWorkflows }>(c, "ListWorkflows", {})).workflows,
    startRun: (workflow) => call<Run>(c, "StartRun", { workflow }),
    getRun: (runId) => call<Run>(c, "GetRun", { runId }),
    listRuns: (request = {}) => call<RunPage>(c, "ListRuns", request),
    stopRun: (runId) => call<Run>(c, "StopRun", { runId }),
    listLogs: (request) => call<LogPage>(c, "ListLogs", request),
    getRunDetails: (runId) => call<RunDetails>(c, "GetRunDetails", { runId }),
    setSchedule: (request) => call<ScheduleInfo>(c, "SetSchedule", request),
    listSchedules: async () =>
      (await call<{ schedules: ScheduleInfo[] }>(c, "ListSchedules", {})).schedules,
    deleteSchedule: (workflow) => call<ScheduleInfo>(c, "DeleteSchedule", { workflow }),
    registerWorker: async (info) => void await call(c, "RegisterWorker", info),
    leaveWorker: async (id) => (await call<{ known: boolean }>(c, "LeaveWorker", { id })).known,
    planRun: async (workflow) =>
      (await call<{ placementJson: string }>(c, "PlanRun", { workflow })).placementJson,
    fetchPackage: (ref) => call<WirePackage>(c, "FetchPackage", ref),
    close: () => c.close(),
  };
}

type ControlApiWorkflows = Awaited<ReturnType<ControlApi["listWorkflows"]>>;

/** A `WorkerApi` that talks to the worker at `address`. */
export function connectWorker(
  address: string,
  credentials: Credentials,
): WorkerApi & { close(): void } {
  const c = client("Worker", address, credentials);
  return {
    execute: (request, onEvent, signal) =>
      new Promise((resolve, reject) => {
        const stream = c.Execute(request);
        signal?.addEventListener("abort", () => {
          stream.cancel();
          resolve();
        }, { once: true });
        stream.on("data", (e: RunEvent & { detailJson: string }) => {
          if (signal?.aborted) return;
          const { detailJson, ...rest } = e;
          // A cluster worker's folded events come several to a message (`_report.ts`).
          unpackReport({ ...rest, detail: JSON.parse(detailJson || "{}") }).forEach(onEvent);
        });
        stream.on("end", () => resolve());
        stream.on("error", (e: Grpc.ServiceError) => reject(fromStatus(e)));
      }),
    cancel: async (runId) => (await call<{ found: boolean }>(c, "Cancel", { runId })).found,
    health: () => call<WorkerHealth>(c, "Health", {}),
    close: () => c.close(),
  };
}
