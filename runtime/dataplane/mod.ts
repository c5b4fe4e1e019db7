/**
 * The data plane between hosts: Arrow Flight (proto/flight.proto) next to each worker's
 * control service. A producer publishes registry objects for named remote consumers and
 * serves them with DoGet straight from shared memory; a consumer pulls them into its own
 * registry after validating every message as the registry validates a plugin's output. The
 * registry's consumer counts reach across hosts through the `release` action, and an edge's
 * bounded in-flight count is the back-pressure between hosts. On one host nothing here is
 * used: local edges keep passing shared-memory handles. See docs/cluster.md.
 */

export { DataPlaneError, type DataPlaneErrorCode } from "./_errors.ts";
export {
  ACTIONS,
  DataPlane,
  type DataPlaneStats,
  FlightEdge,
  type FlightListening,
  type NextObject,
  serveFlight,
} from "./_server.ts";
export { type ClientStats, FlightClient, type GetOptions } from "./_client.ts";
