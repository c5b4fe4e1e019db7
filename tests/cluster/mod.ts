/**
 * The multi-host harness as the benchmark uses it (bench/cluster.ts): the namespaces of
 * `_netns.ts` and the paths of the node scripts that run inside them. Tests in this folder
 * import the private files directly.
 */
export {
  leftovers,
  namespacesUnavailable,
  NetnsCluster,
  NetnsNode,
  type NodeProcess,
} from "./_netns.ts";

/** Real `heddle cluster` processes and the quickstart on them (the recovery benchmark). */
export {
  cli,
  ended,
  heldCopies,
  interfaceBytes,
  logLines,
  moving,
  outputs,
  planOnBoth,
  runAlone,
  startCluster,
  startQuickstart,
  until,
} from "./_heddle_cluster.ts";

/** `_node.ts`: a Heddle data-plane node as a process (serve, pull, fetch). */
export const NODE_SCRIPT = new URL("./_node.ts", import.meta.url).pathname;
/** `_flight_peer.py`: pyarrow.flight as the reference peer (serve, get, bench, compare). */
export const FLIGHT_PEER = new URL("./_flight_peer.py", import.meta.url).pathname;
