/**
 * `heddle cluster` nodes as plain processes on loopback, for tests about a node's own
 * lifecycle rather than about hosts (no namespaces): start one with its stderr collected,
 * stop it with SIGTERM as an operator would and get its exit status.
 */
import { spawnHeddle, StreamText } from "../_cli.ts";

export interface LoopbackNode {
  child: Deno.ChildProcess;
  stderr: StreamText;
}

/** `heddle cluster ARGS`, its stderr collected as text. */
export function startNode(args: string[], env: Record<string, string> = {}): LoopbackNode {
  const child = spawnHeddle(["cluster", ...args], { env });
  return { child, stderr: new StreamText(child.stderr) };
}

/** Stops the node with SIGTERM and waits until it exited; returns its status. */
export async function stopNode(node: LoopbackNode): Promise<Deno.CommandStatus> {
  node.child.kill("SIGTERM");
  const status = await node.child.status;
  await node.child.stdout.cancel();
  await node.stderr.done;
  return status;
}
