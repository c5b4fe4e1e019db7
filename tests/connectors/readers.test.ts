/**
 * Regression tests for the file findings of issue 16: each reads or writes a small file the
 * way the report did and checks that no row is lost, merged or changed, that limits fail with
 * a clear message, and that partial or leftover outputs are never taken for results.
 */
import assert from "node:assert/strict";
import { type ColumnSpec, ConnectorError } from "../../runtime/connectors/mod.ts";
import { inTempDir, openSink, readFile } from "./_readers.ts";

const int = (name: "int8" | "int32" | "uint8") => ({ kind: "primitive", name }) as const;

Deno.test("a JSONL string holding an escaped quote does not swallow the lines after it", async () => {
  await inTempDir(async (dir) => {
    const lines = ['{"s":"5\\" screen","n":0}'];
    for (let i = 1; i <= 200; i++) lines.push(JSON.stringify({ s: `row ${i}`, n: i }));
    await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n") + "\n");
    const r = await readFile(dir, { path: "in.jsonl", format: "jsonl" }, { batchRows: 64 });
    assert.deepEqual(r.errors, []);
    assert.equal(r.rows.length, 201);
    assert.equal(r.rows[0].s, '5" screen');
    assert.equal(r.rows[200].s, "row 200");
  });
});

Deno.test("a bare quote in an unquoted CSV field rejects that row only (strict)", async () => {
  await inTempDir(async (dir) => {
    const lines = ["id,item"];
    for (let i = 0; i < 202; i++) lines.push(i === 5 ? `${i},5" screen` : `${i},item ${i}`);
    await Deno.writeTextFile(`${dir}/in.csv`, lines.join("\n") + "\n");
    const strict = await readFile(dir, { path: "in.csv", format: "csv" }, { batchRows: 50 });
    assert.equal(strict.rows.length, 201);
    assert.deepEqual(strict.errors.map((e) => e.record), [5]);
    assert.match(strict.errors[0].message, /record 6: field 2: a `"` inside an unquoted field/);
    assert.match(strict.errors[0].message, /quotes: "lenient"/);
    assert.equal(strict.rows[5].id, 6n);

    const lenient = await readFile(dir, { path: "in.csv", format: "csv", quotes: "lenient" });
    assert.deepEqual(lenient.errors, []);
    assert.equal(lenient.rows.length, 202);
    assert.equal(lenient.rows[5].item, '5" screen');
    assert.equal(lenient.rows[6].item, "item 6");
  });
});

Deno.test("19-digit CSV ids are int64 and stay distinct", async () => {
  await inTempDir(async (dir) => {
    const ids = Array.from({ length: 100 }, (_, i) => 1234567890123456700n + BigInt(i));
    await Deno.writeTextFile(`${dir}/in.csv`, "id\n" + ids.join("\n") + "\n");
    const r = await readFile(dir, { path: "in.csv", format: "csv" }, { batchRows: 30 });
    assert.equal(r.types.id, "Int64");
    assert.deepEqual(r.rows.map((row) => row.id), ids);
  });
});

Deno.test("integers wider than int64 stay text instead of becoming floats", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.csv`, "n\n1\n123456789012345678901234567890\n");
    const r = await readFile(dir, { path: "in.csv", format: "csv" });
    assert.equal(r.types.n, "Utf8");
    assert.deepEqual(r.rows.map((row) => row.n), ["1", "123456789012345678901234567890"]);
  });
});

Deno.test("values that do not fit a pinned integer type are row errors, never wrapped", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.csv`, "a,b\n100,7\n200,7\n5,4294967297\n-129,0\n");
    const schema: ColumnSpec[] = [
      { name: "a", type: int("int8"), nullable: true },
      { name: "b", type: int("int32"), nullable: true },
    ];
    const r = await readFile(dir, { path: "in.csv", format: "csv" }, { schema });
    assert.deepEqual(r.rows, [{ a: 100, b: 7 }]);
    assert.deepEqual(r.errors.map((e) => e.record), [1, 2, 3]);
    assert.match(
      r.errors[0].message,
      /column `a`: expected Int8, found text \(out of range\): 200,7/,
    );
    assert.match(r.errors[1].message, /column `b`: expected Int32, found text .*: 5,4294967297/);
    // The reason the control plane sees names the column, never the value.
    assert.match(r.errors[1].reason, /record 3: column `b`: expected Int32, found text \(out/);
    assert.ok(!r.errors[1].reason.includes("4294967297"), r.errors[1].reason);
    assert.deepEqual(r.errors.map((e) => e.column), ["a", "b", "a"]);

    const lines = ['{"a": 127, "u": 255}', '{"a": 128, "u": 1}', '{"a": 1, "u": -1}'];
    await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n"));
    const j = await readFile(dir, { path: "in.jsonl", format: "jsonl" }, {
      schema: [
        { name: "a", type: int("int8"), nullable: true },
        { name: "u", type: int("uint8"), nullable: true },
      ],
    });
    assert.deepEqual(j.rows, [{ a: 127, u: 255 }]);
    assert.deepEqual(j.errors.map((e) => e.record), [1, 2]);
  });
});

Deno.test("CSV records that are not valid UTF-8 are row errors; their neighbours are kept", async () => {
  await inTempDir(async (dir) => {
    const enc = new TextEncoder();
    // A stray byte, an overlong `/`, a UTF-16 surrogate, a sequence cut short; then ä and €.
    const bad = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]];
    const parts: number[] = [...enc.encode("id,s\n")];
    for (let i = 0; i < 40; i++) {
      parts.push(...enc.encode(`${i},x`));
      if (i % 10 === 3) parts.push(...bad[(i - 3) / 10]);
      parts.push(...enc.encode(i % 10 === 5 ? "ä€\n" : "\n"));
    }
    await Deno.writeFile(`${dir}/in.csv`, new Uint8Array(parts));
    const r = await readFile(dir, { path: "in.csv", format: "csv" }, { batchRows: 16 });
    assert.deepEqual(r.errors.map((e) => e.record), [3, 13, 23, 33]);
    for (const e of r.errors) assert.match(e.message, /invalid UTF-8/);
    assert.equal(r.rows.length, 36);
    assert.deepEqual(r.rows.filter((row) => row.s !== "x").map((row) => row.s), [
      "xä€",
      "xä€",
      "xä€",
      "xä€",
    ]);
  });
});

Deno.test("JSONL integers above 2^53 are read exactly", async () => {
  await inTempDir(async (dir) => {
    const big = ["9007199254740993", "-9223372036854775808", "9223372036854775807"];
    const text = big.map((n) => `{"id": ${n}, "x": 1.5}`).join("\n") + "\n";
    await Deno.writeTextFile(`${dir}/in.jsonl`, text);
    const r = await readFile(dir, { path: "in.jsonl", format: "jsonl" });
    assert.equal(r.types.id, "Int64");
    assert.deepEqual(r.rows.map((row) => row.id), big.map(BigInt));

    // And written back exactly, as JSON numbers.
    const sink = await openSink(dir, { path: "out.jsonl", format: "jsonl" });
    for (const b of r.batches) await sink.write(b.table, new AbortController().signal);
    await sink.flush();
    assert.equal(await Deno.readTextFile(`${dir}/out.jsonl`), text.replaceAll(" ", ""));
  });
});

Deno.test("a JSONL key first seen after the first batch is a row error, not dropped", async () => {
  await inTempDir(async (dir) => {
    const lines = ['{"a": 1}', '{"a": 2}', '{"a": 3, "late": "x"}', '{"a": 4, "late": null}'];
    await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n") + "\n");
    const r = await readFile(dir, { path: "in.jsonl", format: "jsonl" }, { batchRows: 2 });
    assert.deepEqual(r.rows, [{ a: 1n }, { a: 2n }, { a: 4n }]);
    assert.deepEqual(r.errors.map((e) => e.record), [2]);
    assert.match(r.errors[0].message, /a key is not a column.*first 2 lines/);
    assert.ok(!r.errors[0].reason.includes("late"), r.errors[0].reason);
    assert.match(r.errors[0].message, /"late": "x"/);

    // A key the step's row type declares is a column from the start.
    const declared = await readFile(dir, { path: "in.jsonl", format: "jsonl" }, {
      batchRows: 2,
      schema: [{ name: "late", type: { kind: "primitive", name: "utf8" }, nullable: true }],
    });
    assert.deepEqual(declared.errors, []);
    assert.deepEqual(declared.rows.map((row) => row.late), [null, null, "x", null]);
  });
});

Deno.test("a duplicate CSV header is an error naming the columns", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.csv`, "id,name,id\n1,a,2\n");
    await assert.rejects(
      readFile(dir, { path: "in.csv", format: "csv" }),
      (e: unknown) =>
        e instanceof ConnectorError && e.code === "config" &&
        /duplicate header names: `id` \(columns 1 and 3\)/.test(e.message),
    );
  });
});

Deno.test("a record longer than max_record_bytes fails with its number and the limit", async () => {
  await inTempDir(async (dir) => {
    const long = "x".repeat(5000);
    await Deno.writeTextFile(`${dir}/in.csv`, `a,b\n1,2\n3,${long}\n`);
    await assert.rejects(
      readFile(dir, { path: "in.csv", format: "csv", max_record_bytes: 1000 }),
      /record 2 \(at byte 8\) is longer than 1000 bytes, the limit `max_record_bytes` sets/,
    );
    const ok = await readFile(dir, { path: "in.csv", format: "csv", max_record_bytes: 10_000 });
    assert.equal(ok.rows.length, 2);
  });
});

Deno.test("an endless line stops the reader at the limit instead of filling memory", async () => {
  await inTempDir(async (dir) => {
    // A FIFO never ends: without a limit the reader would wait for a newline forever.
    const made = await new Deno.Command("mkfifo", { args: [`${dir}/in.csv`] }).output();
    assert.ok(made.success);
    const writer = (async () => {
      const fifo = await Deno.open(`${dir}/in.csv`, { write: true });
      const chunk = new TextEncoder().encode("x".repeat(1 << 16));
      await fifo.write(new TextEncoder().encode("a\n"));
      let written = 0;
      try {
        while (written < 1 << 30) written += await fifo.write(chunk);
      } catch {
        // The reader gave up and closed its end.
      } finally {
        fifo.close();
      }
      return written;
    })();
    await assert.rejects(
      readFile(dir, { path: "in.csv", format: "csv", max_record_bytes: 4 << 20 }),
      /record 1 \(at byte 2\) is longer than 4194304 bytes/,
    );
    const written = await writer;
    assert.ok(written < 64 << 20, `the reader stopped early (${written} bytes written)`);
  });
});

Deno.test("quoted empty CSV fields are empty strings, unquoted ones null, both ways", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.csv`, 'a,b\r\n"",x\r\n,"y"\r\n');
    const r = await readFile(dir, { path: "in.csv", format: "csv" });
    assert.deepEqual(r.rows, [{ a: "", b: "x" }, { a: null, b: "y" }]);
    const sink = await openSink(dir, { path: "out.csv", format: "csv" });
    for (const b of r.batches) await sink.write(b.table, new AbortController().signal);
    await sink.flush();
    assert.equal(await Deno.readTextFile(`${dir}/out.csv`), 'a,b\n"",x\n,y\n');
  });
});

/** Runs a Deno child that opens a sink on `dir/out.csv`, writes, and waits to be killed. */
function sinkHolder(dir: string): Deno.ChildProcess {
  const mod = new URL("../../runtime/connectors/mod.ts", import.meta.url).href;
  const script = `
    import { builtinConnectors } from ${JSON.stringify(mod)};
    const sink = await builtinConnectors().get("fhub/file.write").open({
      config: { path: "out.csv", format: "csv" }, resources: {}, schema: null,
      batchRows: 10, resumeAfter: null, baseDir: ${JSON.stringify(dir)}, workflow: "T" });
    console.log("open");
    // A pending promise alone does not keep Deno alive: a timer does, until the test kills it.
    setInterval(() => {}, 1 << 30);`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function waitOpen(child: Deno.ChildProcess): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  assert.match(value ?? "", /open/);
  reader.releaseLock();
}

const temps = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(".heddle-tmp-"));

Deno.test("a temp output left by kill -9 is removed by the next sink; a live one is kept", async () => {
  await inTempDir(async (dir) => {
    const killed = sinkHolder(dir);
    await waitOpen(killed);
    const leftover = temps(dir);
    assert.equal(leftover.length, 1);
    // Make it look like a real partial output, older than a just-created file.
    await Deno.writeTextFile(`${dir}/${leftover[0]}`, "n\n1\n2\n", { append: true });
    killed.kill("SIGKILL");
    await killed.status;
    await killed.stdout.cancel().catch(() => {});

    const live = sinkHolder(dir);
    await waitOpen(live);
    try {
      const now = temps(dir);
      assert.ok(!now.includes(leftover[0]), "the dead process's temp file was removed");
      assert.equal(now.length, 1, "the live sink's temp file exists");
      const mine = await openSink(dir, { path: "out.csv", format: "csv" });
      assert.ok(temps(dir).includes(now[0]), "a temp file locked by a live process is kept");
      await mine.abort();
      assert.deepEqual(temps(dir), now);
    } finally {
      live.kill("SIGKILL");
      await live.status;
      await live.stdout.cancel().catch(() => {});
    }
  });
});

Deno.test("abort leaves the previous file untouched and removes the temp file", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/out.jsonl`, "previous\n");
    await Deno.writeTextFile(`${dir}/in.jsonl`, '{"a": 1}\n');
    const r = await readFile(dir, { path: "in.jsonl", format: "jsonl" });
    const sink = await openSink(dir, { path: "out.jsonl", format: "jsonl" });
    for (const b of r.batches) await sink.write(b.table, new AbortController().signal);
    await sink.abort();
    assert.equal(await Deno.readTextFile(`${dir}/out.jsonl`), "previous\n");
    assert.deepEqual(temps(dir), []);
  });
});

Deno.test("gzip and zstd inputs are read transparently, by their extension", async () => {
  await inTempDir(async (dir) => {
    const rows = [
      "n,text",
      ...Array.from({ length: 30000 }, (_, i) => `${i},"row ${i}, with a comma"`),
    ];
    const text = rows.join("\n") + "\n";
    const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    await Deno.writeFile(`${dir}/in.csv.gz`, gz);
    // Made with the zstd command line tool at level 19 from the same text.
    await Deno.copyFile(
      new URL("./fixtures/numbers.csv.zst", import.meta.url),
      `${dir}/in.csv.zst`,
    );
    for (const path of ["in.csv.gz", "in.csv.zst"]) {
      const r = await readFile(dir, { path, format: "csv" }, { batchRows: 4096 });
      assert.deepEqual(r.errors, [], path);
      assert.equal(r.rows.length, 30000, path);
      assert.deepEqual(r.rows[29999], { n: 29999n, text: "row 29999, with a comma" }, path);
      assert.equal(r.rows.reduce((s, row) => s + Number(row.n), 0), (29999 * 30000) / 2, path);
    }
    const jsonl = new Blob(['{"a": 12345678901234567890}\n{"a": 1}\n']).stream()
      .pipeThrough(new CompressionStream("gzip"));
    await Deno.writeFile(`${dir}/in.jsonl.gz`, jsonl);
    const j = await readFile(dir, { path: "in.jsonl.gz", format: "jsonl" });
    assert.deepEqual(j.rows.map((row) => row.a), ["12345678901234567890", "1"]);
  });
});

Deno.test("a corrupt compressed input fails the read with the file named", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.csv.gz`, "this is not gzip\n");
    await assert.rejects(
      readFile(dir, { path: "in.csv.gz", format: "csv" }),
      (e: unknown) =>
        e instanceof ConnectorError && /cannot decompress `.*in\.csv\.gz`/.test(e.message),
    );
  });
});
