/**
 * gRPC's npm packages, loaded on first use rather than with the modules that name them:
 * evaluating `@grpc/grpc-js` and `@grpc/proto-loader` (with protobufjs) costs about 150 ms of
 * CPU, which every `heddle run`, `check` and `fmt` paid at start-up although only a cluster
 * node, a plugin host or the Flight data plane ever opens a channel. Types come from
 * `import type` at each use; values go through these proxies, which load the package on the
 * first property read and never otherwise.
 */
import type * as Grpc from "@grpc/grpc-js";
import type * as ProtoLoader from "@grpc/proto-loader";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function lazy<T extends object>(name: string): T {
  let loaded: T | undefined;
  return new Proxy({} as T, {
    get: (_target, key) => Reflect.get(loaded ??= require(name) as T, key),
  });
}

/** `@grpc/grpc-js`, loaded when first read. */
export const grpc: typeof Grpc = lazy("@grpc/grpc-js");
/** `@grpc/proto-loader`, loaded when first read. */
export const loader: typeof ProtoLoader = lazy("@grpc/proto-loader");
