/**
 * A real `heddle local` serving its UI on a free loopback port, for the UI and metrics
 * tests: its state and allowed directory are fresh temporary ones, and the programs the
 * tests deploy (the quickstart, a failing workflow, a slow one, one that does not compile)
 * are written into the allowed directory.
 */
import { heddle, spawnHeddle, StreamText } from "../_cli.ts";
import { quickstartCopy } from "../_quickstart.ts";
import {
  EXAMPLE_PLUGINS,
  freePort,
  localArgs,
  writeCopyProgram,
  writeNumbers,
} from "../e2e/_fixtures.ts";

export interface Daemon {
  /** The allowed directory, holding the programs and what their runs write. */
  dir: string;
  /** The UI's address with the token, as heddle printed it. */
  url: string;
  /** The UI's origin, e.g. `http://127.0.0.1:40123`. */
  origin: string;
  token: string;
  /** `--server ADDRESS --state DIR` for `heddle workflow`. */
  server: string[];
  stderr: StreamText;
  stop(): Promise<void>;
}

/** Starts the daemon with the test programs in its allowed directory. */
export async function startDaemon(): Promise<Daemon> {
  const dir = await quickstartCopy();
  await writeNumbers(dir, 10);
  // Fails: the batch holding n = 5 throws on every attempt, and no handler catches the row.
  await writeCopyProgram(
    dir,
    "broken.he",
    "Broken",
    "faulty.double { throw_n: [5] } retry { attempts: 2, backoff: 10ms }",
  );
  // Slow: every batch sleeps, so the run is still going when the test presses Stop.
  await Deno.mkdir(`${dir}/slow`);
  await writeNumbers(`${dir}/slow`, 200_000);
  await Deno.writeTextFile(`${dir}/slow/out.csv`, "previous\n");
  await writeCopyProgram(dir, "slow.he", "Slow", "faulty.run { sleep_ms: 200 }", {
    input: "slow/numbers.csv",
    output: "slow/out.csv",
  });
  await Deno.writeTextFile(
    `${dir}/typo.he`,
    'import "fhub/file" file\nworkflow Typo {\n  file.read { path: "x.csv", format: "csv" }\n  | nosuch.step {}\n}\n',
  );
  return await startLocalUi(dir);
}

/**
 * Starts `heddle local` allowed to use `dir` (removed by `stop`), with the example plugins
 * and its UI on a free port; returns once its worker listens.
 */
export async function startLocalUi(dir: string): Promise<Daemon> {
  const state = await Deno.makeTempDir({ prefix: "heddle-ui-state-" });
  const port = freePort();
  const child = spawnHeddle([...localArgs(state, port, dir), "--ui-listen", "127.0.0.1:0"], {
    env: { HEDDLE_PATH: EXAMPLE_PLUGINS },
  });
  const stderr = new StreamText(child.stderr);
  const [, url] = await stderr.waitFor(/ui listening on (\S+)/);
  await stderr.waitFor(/worker listening on/);
  const parsed = new URL(url);
  return {
    dir,
    url,
    origin: parsed.origin,
    token: parsed.searchParams.get("token")!,
    server: ["--server", `127.0.0.1:${port}`, "--state", state],
    stderr,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel();
      await stderr.done;
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(state, { recursive: true });
    },
  };
}

/** Deploys `file` (relative to the daemon's directory) with `heddle workflow deploy`. */
export async function deploy(daemon: Daemon, file: string): Promise<number> {
  const result = await heddle(["workflow", "deploy", ...daemon.server, `${daemon.dir}/${file}`]);
  return result.code;
}
