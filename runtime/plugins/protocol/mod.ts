/**
 * The wire side of the plugin protocol (proto/plugin.proto), shared by the worker's plugin
 * host and the TypeScript SDK so that both load the same service definition with the same
 * options and spell the environment contract the same way. Messages carry handles only;
 * nothing here may ever put row data on a socket.
 */

import type * as Grpc from "@grpc/grpc-js";
import { grpc, loader as protoLoader } from "../../protocol/mod.ts";
import { fileURLToPath } from "node:url";
import type { ObjectHandle } from "../../registry/mod.ts";

/** The protocol file; plugins in any language are given this path in `HEDDLE_PROTO_PATH`. */
export const PROTO_PATH = fileURLToPath(new URL("../../../proto/plugin.proto", import.meta.url));

/** The environment a worker gives every plugin process (docs/plugins.md, "Environment"). */
export const ENV = {
  /** The Unix socket path the plugin must listen on (`unix://<path>` in gRPC terms). */
  socket: "HEDDLE_PLUGIN_SOCKET",
  /** The worker's pid: a plugin exits when it is gone, and it owns the segment names. */
  workerPid: "HEDDLE_WORKER_PID",
  /** The absolute path of proto/plugin.proto, for SDKs that generate stubs at run time. */
  protoPath: "HEDDLE_PROTO_PATH",
} as const;

/** `ObjectHandle` as proto-loader presents it (camelCase fields, 64-bit numbers as numbers). */
export type WireHandle = ObjectHandle;

export interface WireRowError {
  /** The row of the original input (for a chain, whichever step rejected it). */
  row: number;
  message: string;
  /** The step of the chain that rejected it: 0 is `step`, k is `then[k - 1]`. */
  stepIndex?: number;
}

export interface DescribeResponse {
  manifestJson: string;
  sdk: string;
}

/** A further step of a chain (`ChainStep`). */
export interface WireChainStep {
  step: string;
  configJson: string;
}

export interface InvokeRequest {
  step: string;
  configJson: string;
  input: WireHandle;
  outputSegment: string;
  invocationId: string;
  /** The rest of a fused chain, run in order after `step`; absent or empty for one step. */
  then?: WireChainStep[];
}

/** The whole chain of a request, its first step included. */
export function chainOf(request: InvokeRequest): WireChainStep[] {
  return [{ step: request.step, configJson: request.configJson }, ...(request.then ?? [])];
}

/** Stable codes a plugin reports in `StepError.code`. */
export type StepErrorCode =
  /** The step function threw. */
  | "USER_CODE"
  /** The plugin has no step by that name. */
  | "UNKNOWN_STEP"
  /** The config is not JSON or not what the step accepts. */
  | "BAD_CONFIG"
  /** The input handle could not be mapped, or its data breaks the step's input contract. */
  | "BAD_INPUT"
  /** The step's output breaks its declared output contract. */
  | "BAD_OUTPUT"
  /**
   * A later step of a chain rejected rows after an earlier step changed the row count without
   * saying which input row each output row came from; the worker splits the batch until it can
   * tell (a one-row input needs no mapping).
   */
  | "ROW_ORIGIN_LOST"
  /** The output segment could not be reserved: /dev/shm is full. Retrying cannot help. */
  | "NO_SPACE";

export interface WireStepError {
  code: StepErrorCode | string;
  message: string;
  column: string;
  /** The step of the chain that failed: 0 is `step`, k is `then[k - 1]`. */
  stepIndex?: number;
}

export type InvokeResponse =
  | {
    result: "ok";
    ok: {
      output: WireHandle | null;
      rowErrors: WireRowError[];
      /** Steps of the chain that ran; 0 from a plugin whose SDK predates chains. */
      stepsRun?: number;
    };
  }
  | { result: "error"; error: WireStepError };

export interface HealthResponse {
  status: string;
  pid: number;
}

type Unary<Req, Res> = (
  request: Req,
  options: Grpc.CallOptions,
  callback: (error: Grpc.ServiceError | null, response?: Res) => void,
) => Grpc.ClientUnaryCall;

/** The generated client, typed. */
export interface PluginClient extends Grpc.Client {
  Describe: Unary<Record<string, never>, DescribeResponse>;
  Invoke: Unary<InvokeRequest, InvokeResponse>;
  Health: Unary<Record<string, never>, HealthResponse>;
}

/** What a plugin implements; the TypeScript SDK's server fills it in. */
export interface PluginHandlers {
  describe(): DescribeResponse;
  invoke(request: InvokeRequest): Promise<InvokeResponse>;
  health(): HealthResponse;
}

interface Loaded {
  service: Grpc.ServiceDefinition;
  Client: new (address: string, credentials: Grpc.ChannelCredentials) => PluginClient;
}

let loaded: Loaded | undefined;

function load(): Loaded {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(PROTO_PATH, {
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  // deno-lint-ignore no-explicit-any -- the package object is built from the proto at run time.
  const pkg = grpc.loadPackageDefinition(definition) as any;
  const ctor = pkg.heddle.plugin.v1.Plugin;
  loaded = { service: ctor.service, Client: ctor };
  return loaded;
}

/** The gRPC address of a Unix socket path. */
export function socketAddress(path: string): string {
  return `unix://${path}`;
}

/** A client for the plugin listening on `socketPath`. */
export function connectPlugin(socketPath: string): PluginClient {
  const { Client } = load();
  return new Client(socketAddress(socketPath), grpc.credentials.createInsecure());
}

/** Calls a unary method as a promise, failing after `deadlineMs`. */
export function call<Req, Res>(
  client: PluginClient,
  method: "Describe" | "Invoke" | "Health",
  request: Req,
  deadlineMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method] as unknown as Unary<Req, Res>;
    fn.call(client, request, { deadline: Date.now() + deadlineMs }, (error, response) => {
      if (error) reject(error);
      else resolve(response as Res);
    });
  });
}

/** Serialized size of an Invoke request: exactly the bytes gRPC frames for it. */
export function invokeRequestBytes(request: InvokeRequest): number {
  const method = load().service.Invoke;
  return method.requestSerialize(request).length;
}

/** Starts a gRPC server for `handlers` on `socketPath`; resolves once it listens. */
export async function servePlugin(
  socketPath: string,
  handlers: PluginHandlers,
): Promise<Grpc.Server> {
  const server = new grpc.Server();
  server.addService(load().service, {
    Describe: (_c: unknown, cb: Grpc.sendUnaryData<DescribeResponse>) =>
      cb(null, handlers.describe()),
    Health: (_c: unknown, cb: Grpc.sendUnaryData<HealthResponse>) => cb(null, handlers.health()),
    Invoke: (
      c: Grpc.ServerUnaryCall<InvokeRequest, InvokeResponse>,
      cb: Grpc.sendUnaryData<InvokeResponse>,
    ) => {
      handlers.invoke(c.request).then((res) => cb(null, res), (err) => cb(err as Error, null));
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(
      socketAddress(socketPath),
      grpc.ServerCredentials.createInsecure(),
      (err) => err ? reject(err) : resolve(),
    )
  );
  return server;
}

export {
  arrowTypeText,
  checkSchema,
  type DeclaredField,
  declaredField,
  type DeclaredRow,
  type SchemaViolation,
} from "./_schema.ts";

/**
 * Resolves when the plugin should stop: on SIGTERM, or once its worker
 * (`HEDDLE_WORKER_PID`) is gone, since an orphaned plugin would hold its socket and memory
 * forever. Every TypeScript plugin process waits on this after `servePlugin`.
 */
export function untilStopped(): Promise<void> {
  const workerPid = Number(Deno.env.get(ENV.workerPid) ?? 0);
  return new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGTERM", resolve);
    if (workerPid <= 0) return;
    const timer = setInterval(() => {
      if (!processAlive(workerPid)) {
        clearInterval(timer);
        resolve();
      }
    }, 1000);
  });
}

function processAlive(pid: number): boolean {
  try {
    return Deno.statSync(`/proc/${pid}`).isDirectory;
  } catch {
    return false;
  }
}
