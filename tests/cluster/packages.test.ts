/**
 * Work a worker needs comes with the run (issue 10.5): the control plane's node alone has
 * the program and the Python plugin's package (the workers' mount namespaces cover both
 * directories with an empty tmpfs, and their module path is empty), and each worker has
 * the data in its own `--allow-path`. The plugin still runs on a worker: the deploy
 * carries its package by content hash, the worker fetches it once over the authenticated
 * control channel and caches it; a later run fetches nothing; a cached copy changed on
 * disk is found and fetched again, and the run uses the deployed code. Go, Rust and
 * TypeScript plugins whose builds and imports reach outside their directories (the Go
 * `replace` and Cargo `path` of the SDKs, `@heddle/sdk` through the Deno workspace) run on a
 * worker that has none of the repository they come from.
 */
import assert from "node:assert/strict";
import { clusterTest, NetnsCluster } from "./_netns.ts";
import { heddle } from "../_cli.ts";
import {
  announced,
  cli,
  controlPlaneCommand,
  ended,
  logLines,
  root,
  workerCommand,
} from "./_heddle.ts";
import {
  checkPackage,
  MAX_PACKAGE_BYTES,
  PackageError,
  packageHash,
  type PluginPackage,
  readPackage,
  storedPackage,
  storePackage,
} from "../../runtime/plugins/mod.ts";
import { PackagedPlugins } from "../../runtime/worker/_packages.ts";
import { buildCacheRoot } from "../../runtime/plugins/mod.ts";
import { sourceKey } from "../../runtime/plugins/_build.ts";

const PROGRAM = `import "fhub/file" file
import "py-flags/amounts" flags

workflow Flags {
  file.read { path: "data/amounts.csv", format: "csv" }
  | flags.large { cents: 1000 }
  | file.write { path: "data/out/flags.jsonl", format: "jsonl" }
}
`;
const ROWS = 3000;

/** Deno's own cache, kept when a worker gets a cache directory of its own. */
async function denoDir(): Promise<string> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(new TextDecoder().decode(info.stdout)).denoDir;
}

/** `cp -r ARGS`, which must succeed. */
async function copy(...args: string[]): Promise<void> {
  const copied = await new Deno.Command("cp", { args: ["-r", ...args] }).output();
  assert.ok(copied.success, new TextDecoder().decode(copied.stderr));
}

/** The rows a correct run writes: `is_large` from 1000 cents on. */
function expectedRows(): string[] {
  return Array.from(
    { length: ROWS },
    (_, i) => JSON.stringify({ id: i, amount_cents: i * 7, is_large: i * 7 >= 1000 }),
  ).sort();
}

/** A worker of `startNodes`: its plugin runtimes, its environment, its `--allow-path`. */
interface WorkerSpec {
  runtimes: string[];
  env: Record<string, string>;
  dir: string;
}

/**
 * A control plane on the cluster's first node with `modules` as its module path, and a
 * worker on each other node as `workers` say, whose mount namespace covers each of `hide`
 * with an empty tmpfs (checked); returns the client options and the deployer's environment
 * once the plan places `program` on every worker.
 */
async function startNodes(
  cluster: NetnsCluster,
  base: string,
  modules: string,
  hide: string[],
  workers: WorkerSpec[],
  program: string,
) {
  const token = `${base}/token`;
  await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
  const common = ["--token-file", token, "--insecure", "--output", "json"];
  const [first, ...rest] = cluster.nodes;
  const cp = first.spawn(controlPlaneCommand(first.address, `${base}/state-cp`, ...common), {
    cwd: root,
    env: { HEDDLE_PATH: modules },
  });
  const control = await announced(cp, "control plane");
  for (const [i, { runtimes, env, dir }] of workers.entries()) {
    const node = rest[i];
    // The worker's node has neither the program's directory nor the plugins'.
    const seen = await node.output(["ls", "-A", ...hide], { env, hide });
    assert.equal(seen.replace(/^.*:$/gm, "").trim(), "", "the worker sees no deployed file");
    const process = node.spawn(
      workerCommand(
        control,
        node.address,
        dir,
        `${dir}/state`,
        "--runtimes",
        runtimes.join(","),
        ...common,
      ),
      { cwd: root, env, hide },
    );
    await announced(process, "worker");
  }
  const client = ["--server", control, "--token-file", token];
  // The deployer's host has the plugins too (`inspect --plan` checks the program there).
  const deployer = { HEDDLE_PATH: modules };
  await cli(["workflow", "deploy", program, ...client], deployer);
  for (let i = 0;; i++) {
    const plan = await cli(["inspect", "--plan", program, ...client], deployer) as {
      stages: { worker: string }[];
    };
    if (new Set(plan.stages.map((s) => s.worker)).size === workers.length) break;
    assert.ok(i < 100, "the workers never registered");
    await new Promise((r) => setTimeout(r, 200));
  }
  return { client, deployer };
}

/** The run's log lines that say a package was fetched. */
async function fetchLines(runId: string, client: string[], env: Record<string, string>) {
  const lines = await logLines(runId, client, env);
  return lines.filter((l) => l.message.includes("fetched from the control plane"));
}

clusterTest(
  "a worker runs a plugin package it never had: fetched once, cached, checked again on use",
  async () => {
    await using cluster = await NetnsCluster.create(3);
    const base = await Deno.makeTempDir({ prefix: "heddle-packages-" });
    try {
      // Seen by the control plane's node only.
      const deploy = `${base}/deploy`;
      const modules = `${base}/modules`;
      await Deno.mkdir(deploy);
      await Deno.writeTextFile(`${deploy}/flags.he`, PROGRAM);
      await Deno.mkdir(modules);
      await copy(`${root}examples/plugins/py-flags`, `${modules}/py-flags`);
      // No bytecode another run left: the package is its sources.
      await Deno.remove(`${modules}/py-flags/py_flags/__pycache__`, { recursive: true })
        .catch(() => {});
      const csv = ["id,amount_cents", ...Array.from({ length: ROWS }, (_, i) => `${i},${i * 7}`)];
      const workers: (WorkerSpec & { cache: string })[] = [];
      for (const i of [0, 1]) {
        const dir = `${base}/w${i}`;
        await Deno.mkdir(`${dir}/data`, { recursive: true });
        await Deno.writeTextFile(`${dir}/data/amounts.csv`, csv.join("\n") + "\n");
        workers.push({
          // Only the first worker can run the Python group: the plugin runs there each time.
          runtimes: [i === 0 ? "python" : "typescript"],
          env: { HEDDLE_PATH: "", XDG_CACHE_HOME: `${base}/cache${i}`, DENO_DIR: await denoDir() },
          dir,
          cache: `${base}/cache${i}/heddle/plugin-packages`,
        });
      }
      const { client, deployer } = await startNodes(
        cluster,
        base,
        modules,
        [deploy, modules],
        workers,
        `${deploy}/flags.he`,
      );

      /** Runs the workflow; returns its fetch log lines and checks its rows. */
      const runOnce = async () => {
        for (const w of workers) {
          await Deno.remove(`${w.dir}/data/out`, { recursive: true }).catch(() => {});
        }
        const started = await cli(["workflow", "start", "Flags", ...client], deployer) as {
          runs: { id: string }[];
        };
        const runId = started.runs[0].id;
        const status = await ended(runId, client);
        assert.equal(status.status, "succeeded", status.error);
        const out = workers.map((w) => `${w.dir}/data/out/flags.jsonl`);
        const written = await Promise.all(out.map((f) => Deno.readTextFile(f).catch(() => null)));
        const text = written.find((t) => t !== null);
        assert.ok(text, "a worker wrote the output in its own --allow-path");
        assert.deepEqual(text.split("\n").filter((l) => l).sort(), expectedRows());
        return await fetchLines(runId, client, deployer);
      };

      const firstRun = await runOnce();
      assert.equal(firstRun.length, 1, "the package was fetched once");
      assert.match(firstRun[0].message, /plugin package `py-flags` \([0-9a-f]{12}\) fetched/);
      const cachedHashes = [...Deno.readDirSync(workers[0].cache)].map((e) => e.name);
      assert.equal(cachedHashes.length, 1, `one package cached: ${cachedHashes}`);
      const [hash] = cachedHashes;
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.ok(firstRun[0].message.includes(hash.slice(0, 12)));
      const other = await Deno.stat(workers[1].cache).catch(() => null);
      assert.equal(other, null, "the worker without the plugin's group fetched nothing");

      const second = await runOnce();
      assert.equal(second.length, 0, "a cached package is not fetched again");

      // Someone changes the cached code: every flag would turn true.
      const cached = `${workers[0].cache}/${hash}/py-flags/py_flags/amounts.py`;
      const original = await Deno.readTextFile(cached);
      await Deno.writeTextFile(cached, original.replace("greater_equal", "not_equal"));
      const third = await runOnce();
      assert.equal(third.length, 1, "the damaged copy was fetched again");
      assert.equal(third[0].level, "warn");
      assert.match(third[0].message, /changed on disk and was replaced/);
      assert.equal(await Deno.readTextFile(cached), original);
    } finally {
      for (const node of cluster.nodes) await node.stop();
      await Deno.remove(base, { recursive: true });
    }
  },
);

/** Whether Go and Cargo are installed (the Go and Rust plugins build on the worker). */
const toolchains = (await Promise.all(
  [["go", "version"], ["cargo", "--version"]].map(([tool, arg]) =>
    new Deno.Command(tool, { args: [arg] }).output().then((o) => o.success, () => false)
  ),
)).every(Boolean);

/** What `go env NAME` says on this host. */
async function goEnv(name: string): Promise<string> {
  const out = await new Deno.Command("go", { args: ["env", name] }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

clusterTest(
  "Go, Rust and TypeScript plugins that build and import outside their directories run on a worker without the repository",
  async () => {
    if (!toolchains) return console.log("skip: go or cargo is not installed");
    await using cluster = await NetnsCluster.create(2);
    const base = await Deno.makeTempDir({ prefix: "heddle-packages-deps-" });
    try {
      // A repository the control plane's node alone sees: the polyglot example with its four
      // plugins, the SDKs their builds and imports reach (`../../../sdk/go`, `sdk/rust`,
      // `@heddle/sdk` through the Deno workspace), and the sources the TypeScript SDK imports.
      const repo = `${base}/repo`;
      const plugins = ["geo", "text-norm", "ts-enrich", "py-flags"].map((p) =>
        `examples/plugins/${p}`
      );
      const dirs = [...plugins, "sdk", "runtime", "compiler", "proto"];
      await Deno.mkdir(`${repo}/.git`, { recursive: true });
      for (const dir of dirs) {
        await Deno.mkdir(`${repo}/${dir}`, { recursive: true });
        await copy(`${root}${dir}/.`, `${repo}/${dir}`);
      }
      await Deno.copyFile(`${root}examples/polyglot.he`, `${repo}/examples/polyglot.he`);
      const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
      await Deno.writeTextFile(
        `${repo}/deno.json`,
        JSON.stringify({ ...config, workspace: ["./sdk/typescript"] }, null, 2),
      );
      // The expected outputs: the same program run on the deployer's host.
      const alone = `${base}/alone`;
      await Deno.mkdir(`${alone}/data`, { recursive: true });
      await Deno.copyFile(`${root}examples/data/card_events.csv`, `${alone}/data/card_events.csv`);
      await Deno.copyFile(`${repo}/examples/polyglot.he`, `${alone}/polyglot.he`);
      const modules = `${repo}/examples/plugins`;
      const ran = await heddle(["run", `${alone}/polyglot.he`], { env: { HEDDLE_PATH: modules } });
      assert.equal(ran.code, 0, ran.stderr);

      const dir = `${base}/w0`;
      await Deno.mkdir(`${dir}/data`, { recursive: true });
      await Deno.copyFile(`${root}examples/data/card_events.csv`, `${dir}/data/card_events.csv`);
      const env = {
        HEDDLE_PATH: "",
        XDG_CACHE_HOME: `${base}/cache`,
        DENO_DIR: await denoDir(),
        // The host's toolchain caches, so that the builds on the worker stay quick: Go's
        // build cache and modules, and the Cargo target directory `.ci/run` fills. Nothing
        // can be downloaded in the namespace.
        GOCACHE: await goEnv("GOCACHE"),
        GOMODCACHE: await goEnv("GOMODCACHE"),
        GOPROXY: "off",
        CARGO_TARGET_DIR: Deno.env.get("CARGO_TARGET_DIR") ?? `${buildCacheRoot()}/cargo-target`,
        CARGO_NET_OFFLINE: "true",
      };
      const runtimes = ["go", "rust", "typescript", "python"];
      const { client, deployer } = await startNodes(
        cluster,
        base,
        modules,
        [repo],
        [{ runtimes, env, dir }],
        `${repo}/examples/polyglot.he`,
      );
      const started = await cli(["workflow", "start", "Polyglot", ...client], deployer) as {
        runs: { id: string }[];
      };
      const runId = started.runs[0].id;
      const status = await ended(runId, client);
      assert.equal(status.status, "succeeded", status.error);
      for (const file of ["polyglot.jsonl", "polyglot_rejected.jsonl"]) {
        const [got, want] = await Promise.all(
          [dir, alone].map((d) => Deno.readTextFile(`${d}/data/out/${file}`)),
        );
        assert.deepEqual(got.split("\n").sort(), want.split("\n").sort(), file);
      }
      const fetched = (await fetchLines(runId, client, deployer)).map((l) => l.message);
      assert.equal(fetched.length, 4, fetched.join("\n"));
      // Each came with what it needs from outside its directory.
      const cache = `${base}/cache/heddle/plugin-packages`;
      const trees = [...Deno.readDirSync(cache)].map((e) => `${cache}/${e.name}`);
      for (const path of ["sdk/go/go.mod", "sdk/rust/Cargo.toml", "sdk/typescript/mod.ts"]) {
        const found = await Promise.all(
          trees.map((t) => Deno.stat(`${t}/${path}`).catch(() => null)),
        );
        assert.ok(found.some((f) => f?.isFile), `${path} came along`);
      }
    } finally {
      for (const node of cluster.nodes) await node.stop();
      await Deno.remove(base, { recursive: true });
    }
  },
);

Deno.test("a package from a peer is checked before it is stored: paths, duplicates, hash", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-package-check-" });
  try {
    const pkg = await readPackage(`${root}examples/plugins/py-flags`, "py-flags");
    assert.equal(pkg.dir, "py-flags", "nothing outside it comes along");
    assert.ok(pkg.files.some((f) => f.path === "py-flags/heddle.manifest.json"));
    assert.ok(!pkg.files.some((f) => f.path.includes("__pycache__")));
    assert.equal(pkg.hash, packageHash([...pkg.files].reverse(), pkg.dir), "order does not matter");
    const bad = (change: Partial<PluginPackage>) => () =>
      checkPackage({ ...pkg, ...change }, pkg.hash);
    const file = (path: string) => ({ path, content: new Uint8Array([1]), executable: false });
    for (const path of ["../evil.py", "/etc/passwd", "a/../../b", "a//b", "."]) {
      const files = [...pkg.files, file(path)];
      assert.throws(bad({ files }), /is not a relative path inside it/, path);
    }
    assert.throws(bad({ name: "../up" }), /its name is not a relative path/);
    assert.throws(bad({ dir: "elsewhere" }), /its directory `elsewhere` is not a place for it/);
    assert.throws(bad({ dir: "../py-flags" }), /is not a place for it/);
    const noManifest = pkg.files.filter((f) => !f.path.endsWith("heddle.manifest.json"));
    assert.throws(bad({ files: noManifest }), /it has no heddle.manifest.json in `py-flags`/);
    assert.throws(bad({ files: [...pkg.files, pkg.files[0]] }), /a file comes twice/);
    const changed = pkg.files.map((f, i) => i === 0 ? { ...f, content: new Uint8Array([0]) } : f);
    assert.throws(bad({ files: changed }), /hashes to [0-9a-f]{12}, not to its name/);

    // Stored once; a changed, added or removed file makes the copy damaged.
    const ref = { hash: pkg.hash, name: pkg.name };
    assert.equal(await storedPackage(dir, ref), "missing");
    const moduleRoot = await storePackage(dir, pkg);
    assert.equal(moduleRoot, `${dir}/${pkg.hash}`);
    assert.equal((await storedPackage(dir, ref) as PluginPackage).hash, pkg.hash);
    await Deno.writeTextFile(`${moduleRoot}/py-flags/extra.py`, "print('hi')\n");
    assert.equal(await storedPackage(dir, ref), "damaged");
    await Deno.remove(`${moduleRoot}/py-flags/extra.py`);
    assert.equal((await storedPackage(dir, ref) as PluginPackage).hash, pkg.hash);
    await Deno.remove(`${moduleRoot}/py-flags/heddle.manifest.json`);
    assert.equal(await storedPackage(dir, ref), "damaged");
    await assert.rejects(storedPackage(dir, { ...ref, name: "../x" }), PackageError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker refuses a package whose content is not what the run names", async () => {
  const cache = await Deno.makeTempDir({ prefix: "heddle-package-refuse-" });
  try {
    const pkg = await readPackage(`${root}examples/plugins/py-flags`, "py-flags");
    const forged = {
      ...pkg,
      files: pkg.files.map((f) =>
        f.path.endsWith("amounts.py") ? { ...f, content: new TextEncoder().encode("evil") } : f
      ),
    };
    let fetches = 0;
    const plugins = new PackagedPlugins([{ hash: pkg.hash, name: pkg.name }], {
      source: { cache, fetch: () => (fetches++, Promise.resolve(forged)) },
      host: () => {
        throw new Error("no host may start from a forged package");
      },
      emit: () => {},
    });
    const input = { id: "x", segment: "/x", offset: 0, length: 0, schemaFingerprint: "", rows: 0 };
    const result = await plugins.invokeChain(
      [{ step: "py-flags/amounts.large", config: {} }],
      input,
    );
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.error.code, "start-failed");
    assert.match(
      result.error.message,
      /plugin package `py-flags` .*hashes to [0-9a-f]{12}, not to its name/,
    );
    assert.equal(fetches, 1);
    assert.deepEqual([...Deno.readDirSync(cache)], [], "nothing of it was stored");
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

/** Writes `files` (path: content) under `dir`. */
async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${path}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, content);
  }
}

Deno.test("a package carries what its build and imports name outside it, at the same places, and runs there", async () => {
  const geo = await readPackage(`${root}examples/plugins/geo`, "geo");
  assert.equal(geo.dir, "examples/plugins/geo");
  const paths = (pkg: PluginPackage) => new Set(pkg.files.map((f) => f.path));
  for (const path of ["examples/plugins/geo/go.mod", "sdk/go/go.mod", "sdk/go/heddle.go"]) {
    assert.ok(paths(geo).has(path), path);
  }
  const rust = await readPackage(`${root}examples/plugins/text-norm`, "text-norm");
  assert.ok(paths(rust).has("sdk/rust/Cargo.toml") && paths(rust).has("sdk/rust/src/lib.rs"));
  assert.ok(![...paths(rust)].some((p) => p.includes("/target/")), "no build products");

  // The TypeScript SDK through the workspace, what it imports, and the file it reads.
  const ts = await readPackage(`${root}examples/plugins/ts-enrich`, "ts-enrich");
  for (const path of ["sdk/typescript/mod.ts", "runtime/registry/mod.ts", "proto/plugin.proto"]) {
    assert.ok(paths(ts).has(path), path);
  }
  assert.ok(!paths(ts).has("sdk/typescript/deno.json"), "only the modules its graph reaches");
  const config = ts.files.find((f) => f.path === "deno.json");
  assert.ok(config, "an import map written at the top of the copy");
  const json = JSON.parse(new TextDecoder().decode(config.content));
  assert.equal(json.imports["@heddle/sdk"], "./sdk/typescript/mod.ts");
  assert.match(json.imports["apache-arrow"], /^npm:apache-arrow@/);
  assert.equal(json.lock, false);
  assert.equal(
    await Deno.stat(`${root}examples/plugins/ts-enrich/deno.json`).catch(() => null),
    null,
    "nothing written into the deployer's tree",
  );

  // The copy resolves `@heddle/sdk` to the SDK that came with it.
  const store = await Deno.makeTempDir({ prefix: "heddle-package-ts-" });
  try {
    const moduleRoot = await storePackage(store, ts);
    assert.equal(moduleRoot, `${store}/${ts.hash}/examples/plugins`);
    const info = await new Deno.Command("deno", {
      args: ["info", "--json", "main.ts"],
      cwd: `${moduleRoot}/ts-enrich`,
    }).output();
    assert.ok(info.success, new TextDecoder().decode(info.stderr));
    const modules = JSON.parse(new TextDecoder().decode(info.stdout)).modules as {
      specifier: string;
    }[];
    const local = modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"));
    assert.ok(local.includes(`file://${store}/${ts.hash}/sdk/typescript/mod.ts`), local.join("\n"));
    assert.ok(local.every((s) => s.startsWith(`file://${store}/`)), "nothing from the checkout");
    // And it runs there: a program's step served by the copy (its npm packages, gRPC's too,
    // installed next to the copy's configuration).
    await Deno.writeTextFile(`${store}/amounts.csv`, "amount\n1.5\n-2.25\n");
    await Deno.writeTextFile(
      `${store}/cents.he`,
      'import "fhub/file" file\nimport "ts-enrich/enrich" enrich\n\nworkflow Cents {\n' +
        '  file.read { path: "amounts.csv", format: "csv" }\n  | enrich.cents\n' +
        '  | file.write { path: "cents.jsonl", format: "jsonl" }\n}\n',
    );
    const ran = await heddle(["run", `${store}/cents.he`], { env: { HEDDLE_PATH: moduleRoot } });
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual((await Deno.readTextFile(`${store}/cents.jsonl`)).trim().split("\n"), [
      '{"amount":1.5,"amount_cents":150}',
      '{"amount":-2.25,"amount_cents":-225}',
    ]);
  } finally {
    await Deno.remove(store, { recursive: true });
  }
});

Deno.test({
  name: "a Cargo workspace member carries the workspace root with itself alone as member",
  ignore: !toolchains,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-package-cargo-" });
  try {
    const repo = `${dir}/repo`;
    await writeTree(repo, {
      ".git/HEAD": "",
      "Cargo.toml": '[workspace]\nmembers = ["plugins/*", "other"]\nresolver = "2"\n\n' +
        '[workspace.dependencies]\nlib = { path = "libs/lib" }\n\n[profile.release]\ndebug = false\n',
      "libs/lib/Cargo.toml": '[package]\nname = "lib"\nversion = "0.1.0"\nedition = "2021"\n',
      "libs/lib/src/lib.rs": "pub fn one() -> i32 { 1 }\n",
      "other/Cargo.toml": '[package]\nname = "other"\nversion = "0.1.0"\nedition = "2021"\n',
      "other/src/lib.rs": "",
      "plugins/p/heddle.manifest.json": '{"entry": ["{binary}"]}',
      "plugins/p/Cargo.toml": '[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n\n' +
        "[dependencies]\nlib = { workspace = true }\n",
      "plugins/p/src/main.rs": 'fn main() { println!("{}", lib::one()); }\n',
    });
    const pkg = await readPackage(`${repo}/plugins/p`, "p");
    const paths = pkg.files.map((f) => f.path).sort();
    assert.deepEqual(paths, [
      "Cargo.toml",
      "libs/lib/Cargo.toml",
      "libs/lib/src/lib.rs",
      "plugins/p/Cargo.toml",
      "plugins/p/heddle.manifest.json",
      "plugins/p/src/main.rs",
    ]);
    const rootToml = new TextDecoder().decode(
      pkg.files.find((f) => f.path === "Cargo.toml")!.content,
    );
    assert.match(rootToml, /members = \["plugins\/p"\]/);
    assert.match(rootToml, /\[profile.release\]/);
    // Cargo resolves the copy's workspace: the member and its workspace dependency.
    const moduleRoot = await storePackage(`${dir}/store`, pkg);
    const metadata = await new Deno.Command("cargo", {
      args: ["metadata", "--offline", "--format-version", "1"],
      cwd: `${moduleRoot}/p`,
    }).output();
    assert.ok(metadata.success, new TextDecoder().decode(metadata.stderr));
    const names = JSON.parse(new TextDecoder().decode(metadata.stdout)).packages
      .map((p: { name: string }) => p.name).sort();
    assert.deepEqual(names, ["lib", "p"]);
    const original = await Deno.readTextFile(`${repo}/Cargo.toml`);
    assert.match(original, /"plugins\/\*", "other"/, "the deployer's tree is untouched");
    // The build cache keys on the workspace dependency too: a change there rebuilds.
    const spec = { dir: `${repo}/plugins/p`, name: "p", build: ["cargo"], entry: ["{binary}"] };
    const before = await sourceKey(spec);
    await Deno.writeTextFile(`${repo}/libs/lib/src/lib.rs`, "pub fn one() -> i32 { 2 }\n");
    assert.notEqual(await sourceKey(spec), before);
    // A workspace root above the module root that names nothing else still comes along.
    await writeTree(repo, {
      "Cargo.toml": '[workspace]\nmembers = ["plugins/q"]\n',
      "plugins/q/heddle.manifest.json": '{"entry": ["{binary}"]}',
      "plugins/q/Cargo.toml": '[package]\nname = "q"\nversion = "0.1.0"\nedition = "2021"\n',
      "plugins/q/src/main.rs": "fn main() {}\n",
    });
    const alone = await readPackage(`${repo}/plugins/q`, "q");
    assert.equal(alone.dir, "plugins/q");
    assert.deepEqual(alone.files.map((f) => f.path).sort(), [
      "Cargo.toml",
      "plugins/q/Cargo.toml",
      "plugins/q/heddle.manifest.json",
      "plugins/q/src/main.rs",
    ]);
    checkPackage(alone, alone.hash);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a package naming something outside its repository, missing, or too large is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-package-limits-" });
  try {
    const repo = `${dir}/repo`;
    await writeTree(dir, {
      "outside/lib/go.mod": "module example.com/lib\n",
      "repo/.git/HEAD": "",
      "repo/plugins/p/heddle.manifest.json": '{"entry": ["{binary}"]}',
    });
    const goMod = (target: string) =>
      Deno.writeTextFile(
        `${repo}/plugins/p/go.mod`,
        `module p\n\nreplace example.com/lib => ${target}\n`,
      );
    await goMod("../../../outside/lib");
    await assert.rejects(
      readPackage(`${repo}/plugins/p`, "p"),
      (e: Error) => {
        assert.ok(e instanceof PackageError);
        assert.match(
          e.message,
          /plugin package `p` .*: go\.mod names `.*\/outside\/lib`, outside the package's repository .*\/repo; a deploy carries only what lies inside it/,
        );
        return true;
      },
    );
    await goMod("../../missing");
    await assert.rejects(
      readPackage(`${repo}/plugins/p`, "p"),
      /go\.mod names `.*\/repo\/missing`, which is not a directory/,
    );
    // Inside the repository it comes along; past the size a deploy carries, it is refused.
    await Deno.mkdir(`${repo}/big`);
    await goMod("../../big");
    await Deno.writeFile(`${repo}/big/blob.bin`, new Uint8Array(MAX_PACKAGE_BYTES + 1));
    await assert.rejects(
      readPackage(`${repo}/plugins/p`, "p"),
      /plugin package `p` .* is larger than 33554432 bytes, .*\(with what it names outside it: \.\.\/\.\.\/big\)/,
    );
    await Deno.writeFile(`${repo}/big/blob.bin`, new Uint8Array(10));
    const pkg = await readPackage(`${repo}/plugins/p`, "p");
    assert.deepEqual(pkg.files.map((f) => f.path).sort(), [
      "big/blob.bin",
      "plugins/p/go.mod",
      "plugins/p/heddle.manifest.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
