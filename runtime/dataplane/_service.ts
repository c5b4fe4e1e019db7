/**
 * The Flight service definition for @grpc/grpc-js: proto/flight.proto loaded with
 * @grpc/proto-loader, with the FlightData messages of DoGet, DoPut and DoExchange switched
 * to the hand-written codec in `_codec.ts` (bodies are copied once on send and not at all on
 * receive). Server and client take their definition from here, so both sides always agree.
 */
import type * as Grpc from "@grpc/grpc-js";
import { loader } from "../protocol/mod.ts";
import { decodeFlightData, encodeFlightData, type FlightData } from "./_codec.ts";

const protoPath = new URL("../../proto/flight.proto", import.meta.url).pathname;

let definition: Grpc.ServiceDefinition | undefined;

const flightData = {
  serialize: (value: FlightData) => encodeFlightData(value),
  deserialize: (bytes: Uint8Array) => decodeFlightData(bytes),
};

/** `arrow.flight.protocol.FlightService`, FlightData methods on the hand-written codec. */
export function flightService(): Grpc.ServiceDefinition {
  if (definition) return definition;
  const loaded = loader.loadSync(protoPath, {
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const service = loaded["arrow.flight.protocol.FlightService"] as Grpc.ServiceDefinition;
  const methods: Record<string, Grpc.MethodDefinition<unknown, unknown>> = { ...service };
  const withRequest = ["DoPut", "DoExchange"];
  const withResponse = ["DoGet", "DoExchange"];
  for (const name of new Set([...withRequest, ...withResponse])) {
    const method = { ...service[name] };
    if (withRequest.includes(name)) {
      method.requestSerialize = flightData.serialize;
      method.requestDeserialize = flightData.deserialize;
    }
    if (withResponse.includes(name)) {
      method.responseSerialize = flightData.serialize;
      method.responseDeserialize = flightData.deserialize;
    }
    methods[name] = method;
  }
  definition = methods as Grpc.ServiceDefinition;
  return definition;
}

/** Channel options for both sides: Arrow batches are larger than gRPC's 4 MB default. */
export const CHANNEL_OPTIONS: Grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
  "grpc-node.flow_control_window": 1 << 30,
};
