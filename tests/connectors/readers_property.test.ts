/**
 * Property tests of the file readers against Python's `csv` and `json` modules, the reference
 * implementations most data tools agree with: seeded random files full of quotes, escaped
 * quotes, commas and line breaks inside fields, CRLF, Unicode, empty fields and integers
 * beyond 2^53 are read by both, and every record must come out the same. The CSV tokenizer is
 * also driven with tiny read chunks so that every field, quote pair and CRLF gets split
 * across a chunk boundary somewhere.
 */
import assert from "node:assert/strict";
import { cellText } from "../../runtime/connectors/_columns.ts";
import { CsvReader } from "../../runtime/connectors/_csv.ts";
import type { ColumnSpec } from "../../runtime/connectors/mod.ts";
import { inTempDir, openSink, readFile } from "./_readers.ts";

const FILES = 40;

/** mulberry32: a small seeded generator, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: T[]): T => xs[Math.floor(r() * xs.length)];
const upTo = (r: Rand, n: number) => Math.floor(r() * (n + 1));

const PIECES = [
  "a",
  "Zz",
  " ",
  ",",
  '"',
  "\n",
  "\r\n",
  "\r",
  "é",
  "日本",
  "😀",
  "0",
  "-",
  ".",
  "\t",
];

function digits(r: Rand, n: number): string {
  let s = String(1 + upTo(r, 8));
  for (let i = 1; i < n; i++) s += String(upTo(r, 9));
  return s;
}

function cellValue(r: Rand): string {
  switch (upTo(r, 4)) {
    case 0:
      return "";
    case 1:
      return (r() < 0.3 ? "-" : "") + digits(r, 1 + upTo(r, 30));
    case 2:
      return `${digits(r, 1 + upTo(r, 6))}.${digits(r, 1 + upTo(r, 6))}`;
    default:
      return Array.from({ length: 1 + upTo(r, 6) }, () => pick(r, PIECES)).join("");
  }
}

/** One CSV field as a writer would put it; bare quotes only where `bare` allows them. */
function csvField(r: Rand, value: string, bare: boolean): string {
  const mustQuote = /[,\r\n]/.test(value) || value.startsWith('"') ||
    (value.includes('"') && !bare);
  return !mustQuote && r() < 0.6 ? value : `"${value.replaceAll('"', '""')}"`;
}

function csvFile(r: Rand, bare: boolean): string {
  const width = 1 + upTo(r, 4);
  const eol = r() < 0.5 ? "\n" : "\r\n";
  const header = Array.from({ length: width }, (_, i) => r() < 0.3 ? `"列 ${i}"` : `c${i}`);
  const lines = [header.join(",")];
  const rows = upTo(r, 40);
  for (let i = 0; i < rows; i++) {
    lines.push(Array.from({ length: width }, () => csvField(r, cellValue(r), bare)).join(","));
  }
  return lines.join(eol) + (r() < 0.7 ? eol : "");
}

const JSON_KINDS = ["int", "float", "string", "bool"] as const;

function jsonValueOf(r: Rand, kind: typeof JSON_KINDS[number]): unknown {
  if (kind === "int") {
    // Up to 18 digits: beyond 2^53 often, never beyond int64.
    const n = (r() < 0.3 ? "-" : "") + digits(r, 1 + upTo(r, 17));
    return (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON(n);
  }
  // Never integral, so that Python and JSON agree it is a float.
  if (kind === "float") return (r() - 0.5) * 10 ** (upTo(r, 28) - 14) + 0.5;
  if (kind === "bool") return r() < 0.5;
  const text = Array.from(
    { length: upTo(r, 6) },
    () => pick(r, [...PIECES, "\\", "\u0000", "\u2028", "\ud83d\ude00", "}", "{", ":"]),
  ).join("");
  return text;
}

function jsonlFile(r: Rand): string {
  const keys = Array.from(
    { length: 1 + upTo(r, 4) },
    (_, i) => pick(r, ["k", 'q"', "ü", "a b"]) + i,
  );
  const kinds = keys.map(() => pick(r, [...JSON_KINDS]));
  const lines: string[] = [];
  const rows = 1 + upTo(r, 30);
  for (let i = 0; i < rows; i++) {
    const o: Record<string, unknown> = {};
    keys.forEach((k, c) => {
      if (i > 0 && r() < 0.2) return;
      o[k] = i > 0 && r() < 0.1 ? null : jsonValueOf(r, kinds[c]);
    });
    lines.push(JSON.stringify(o));
    if (r() < 0.1) lines.push(pick(r, ["", "  ", "\t"]));
  }
  return lines.join(r() < 0.5 ? "\n" : "\r\n") + "\n";
}

const PYTHON = `
import csv, json, sys
out = []
for path in sys.argv[1:]:
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            out.append([row for row in csv.reader(f) if row != []])
    else:
        rows = []
        with open(path, encoding="utf-8", newline="") as f:
            for line in f.read().split("\\n"):
                if line.strip() == "":
                    continue
                def tag(v):
                    if isinstance(v, bool): return {"b": v}
                    if isinstance(v, int): return {"i": str(v)}
                    if isinstance(v, float): return {"f": v}
                    return {"s": v}
                rows.append({k: (None if v is None else tag(v)) for k, v in json.loads(line).items()})
        out.append(rows)
print(json.dumps(out))
`;

async function python(paths: string[]): Promise<unknown[]> {
  const out = await new Deno.Command("python3", { args: ["-c", PYTHON, ...paths] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Every record of a CSV file as field texts, read with `chunk`-byte reads. */
async function tokenize(path: string, lenient: boolean, chunk: number) {
  const file = await Deno.open(path);
  try {
    const reader = new CsvReader(file, path, {
      lenient,
      maxRecordBytes: 1 << 20,
      chunkBytes: chunk,
    });
    const records: { cells: string[]; error: string | null }[] = [];
    for (let b = await reader.read(1 + (chunk % 5)); b; b = await reader.read(1 + (chunk % 5))) {
      for (let k = 0; k < b.count; k++) {
        const first = b.firsts[k];
        const cells = Array.from(
          { length: b.widths[k] },
          (_, i) => cellText(b.buf, b.starts[first + i], b.ends[first + i], b.flags[first + i]),
        );
        records.push({ cells, error: b.errors.get(k) ?? null });
      }
    }
    return records;
  } finally {
    file.close();
  }
}

Deno.test("the CSV reader agrees with Python's csv module on random files", async () => {
  await inTempDir(async (dir) => {
    const paths: string[] = [];
    const bare: boolean[] = [];
    for (let seed = 1; seed <= FILES; seed++) {
      const r = random(seed);
      bare.push(seed % 3 === 0);
      paths.push(`${dir}/${seed}.csv`);
      await Deno.writeTextFile(paths[seed - 1], csvFile(r, bare[seed - 1]));
    }
    const expected = await python(paths) as string[][][];
    const written: string[] = [];
    for (let f = 0; f < paths.length; f++) {
      const want = expected[f];
      const where = `seed ${f + 1}`;
      // Lenient mode reads exactly what Python reads, whatever the chunk boundaries.
      for (const chunk of [1, 2, 3, 7, 64, 1 << 20]) {
        const got = await tokenize(paths[f], true, chunk);
        assert.deepEqual(got.map((g) => g.cells), want, `${where}, chunk ${chunk}`);
        assert.deepEqual(got.filter((g) => g.error), [], where);
      }
      // Strict mode reads the same records and rejects exactly those with bare quotes.
      const strict = await tokenize(paths[f], false, 5);
      assert.deepEqual(strict.map((g) => g.cells), want, where);
      if (!bare[f]) assert.deepEqual(strict.filter((g) => g.error), [], where);

      // Through the connector, as text columns: the same values, empty unquoted ones null.
      const header = want[0];
      const schema: ColumnSpec[] = header.map((name) => ({
        name: name.trim(),
        type: { kind: "primitive", name: "utf8" },
        nullable: true,
      }));
      const read = await readFile(dir, { path: `${f + 1}.csv`, format: "csv", quotes: "lenient" }, {
        schema,
        batchRows: 1 + (f % 7),
      });
      assert.deepEqual(read.errors.filter((e) => !/expected \d+ fields/.test(e.message)), []);
      const rows = want.slice(1).filter((row) => row.length === header.length);
      assert.deepEqual(
        read.rows.map((row) => schema.map((s) => row[s.name] ?? "")),
        rows,
        where,
      );
      // Written back by the sink, Python reads the same records again.
      const sink = await openSink(dir, { path: `${f + 1}.out.csv`, format: "csv" }, schema);
      for (const b of read.batches) await sink.write(b.table, new AbortController().signal);
      await sink.flush();
      written.push(`${dir}/${f + 1}.out.csv`);
    }
    const reread = await python(written) as string[][][];
    reread.forEach((got, f) => {
      const header = expected[f][0].map((h) => h.trim());
      const rows = expected[f].slice(1).filter((row) => row.length === header.length);
      assert.deepEqual(got, [header, ...rows], `seed ${f + 1}, written back`);
    });
  });
});

Deno.test("typed CSV columns hold the numbers Python reads, digit for digit", async () => {
  await inTempDir(async (dir) => {
    const r = random(99);
    const ints = Array.from(
      { length: 200 },
      () => (r() < 0.5 ? "-" : "") + digits(r, 1 + upTo(r, 17)),
    );
    const floats = Array.from(
      { length: 200 },
      () => `${digits(r, 1 + upTo(r, 8))}.${digits(r, 1 + upTo(r, 8))}`,
    );
    const lines = ["i,f", ...ints.map((n, k) => `${n},${floats[k]}`)];
    await Deno.writeTextFile(`${dir}/n.csv`, lines.join("\r\n"));
    const read = await readFile(dir, { path: "n.csv", format: "csv" }, { batchRows: 17 });
    assert.deepEqual(read.types, { i: "Int64", f: "Float64" });
    const out = await new Deno.Command("python3", {
      args: [
        "-c",
        `import csv,json,sys
rows = list(csv.reader(open(sys.argv[1], newline="")))[1:]
print(json.dumps([[str(int(a)), float(b)] for a, b in rows]))`,
        `${dir}/n.csv`,
      ],
    }).output();
    const want = JSON.parse(new TextDecoder().decode(out.stdout)) as [string, number][];
    assert.deepEqual(read.rows.map((row) => [String(row.i), row.f]), want);
  });
});

Deno.test("the JSONL reader agrees with Python's json module on random files", async () => {
  await inTempDir(async (dir) => {
    const paths: string[] = [];
    for (let seed = 1; seed <= FILES; seed++) {
      paths.push(`${dir}/${seed}.jsonl`);
      await Deno.writeTextFile(paths[seed - 1], jsonlFile(random(1000 + seed)));
    }
    const expected = await python(paths) as Record<string, Record<string, unknown> | null>[][];
    for (let f = 0; f < paths.length; f++) {
      const read = await readFile(dir, { path: `${f + 1}.jsonl`, format: "jsonl" }, {
        batchRows: 1 + (f % 5),
      });
      assert.deepEqual(read.errors, [], `seed ${1001 + f}`);
      const types = read.types;
      const got = read.rows.map((row) => {
        const o: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(row)) {
          if (v === null) continue;
          o[k] = types[k] === "Int64"
            ? { i: String(v) }
            : types[k] === "Float64"
            ? { f: v }
            : types[k] === "Bool"
            ? { b: v }
            : { s: v };
        }
        return o;
      });
      const want = expected[f].map((row) =>
        Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null))
      );
      assert.deepEqual(got, want, `seed ${1001 + f}`);
    }
  });
});
