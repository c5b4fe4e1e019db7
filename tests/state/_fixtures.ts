/**
 * What the PostgreSQL state-store tests share: a database of their own on the services'
 * PostgreSQL (so that other tests' tables are never touched), dropped afterwards, and a
 * `heddle local` or `heddle cluster` started on it.
 */
import pg from "pg";
import { serviceConfig } from "../services/mod.ts";
import { spawnHeddle, StreamText } from "../_cli.ts";

/** A fresh database, `heddle_state_<random>`, with its connection string; dropped on dispose. */
export async function stateDatabase(): Promise<{ url: string } & AsyncDisposable> {
  const name = `heddle_state_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: serviceConfig.postgres.url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  return {
    url: serviceConfig.postgres.url.replace(/\/[^/]*$/, `/${name}`),
    [Symbol.asyncDispose]: () => admin(`drop database if exists ${name} with (force)`),
  };
}

/** A running `heddle` daemon whose stderr is collected. */
export interface Node {
  child: Deno.ChildProcess;
  stderr: StreamText;
  /** Sends `signal` and waits for the exit; returns the status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Spawns `heddle ARGS` and waits until its stderr matches `ready`. */
export async function startNode(
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<Node> {
  const child = spawnHeddle(args, { env });
  const stderr = new StreamText(child.stderr);
  const stdout = child.stdout.cancel();
  let stopped: Promise<Deno.CommandStatus> | null = null;
  const node = {
    child,
    stderr,
    stop: (signal: Deno.Signal = "SIGTERM") => {
      if (!stopped) {
        try {
          child.kill(signal);
        } catch {
          // It already ended.
        }
        stopped = child.status.then(async (s) => (await stdout, await stderr.done, s));
      }
      return stopped;
    },
  };
  try {
    await stderr.waitFor(ready);
  } catch (e) {
    await node.stop("SIGKILL");
    throw e;
  }
  return node;
}
