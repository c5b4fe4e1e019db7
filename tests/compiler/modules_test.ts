/**
 * Module contracts: Arrow type text, manifests, and the snapshot and introspection round
 * trip.
 */
import assert from "node:assert/strict";
import { introspect, parse, parseManifest, queryHash, resolve } from "../../compiler/mod.ts";
import { assignable, parseType, typeToString } from "../../compiler/modules/mod.ts";

Deno.test("parseType() reads canonical and aliased Arrow type text", () => {
  for (const t of ["int64", "utf8", "list<float64?>", "timestamp[ms, UTC]", "decimal(10, 2)"]) {
    const p = parseType(t);
    assert.notEqual(typeof p, "string", t);
    assert.equal(typeToString(p as never), t);
  }
  assert.equal(typeToString(parseType("string") as never), "utf8");
  assert.match(parseType("integer") as string, /unknown type/);
});

Deno.test("assignable() widens numbers but never mixes families", () => {
  const t = (s: string) => parseType(s) as never;
  assert.ok(assignable(t("int32"), t("int64")));
  assert.ok(!assignable(t("float64"), t("int64")));
  assert.ok(!assignable(t("utf8"), t("int64")));
});

Deno.test("parseManifest() explains what is wrong with a malformed manifest", () => {
  assert.match(parseManifest("{", "/x") as string, /not valid JSON/);
  assert.match(
    parseManifest(`{"heddle_manifest": 1, "runtime": "cobol"}`, "/x") as string,
    /runtime/,
  );
  const ok = parseManifest(
    `{"heddle_manifest":1,"runtime":"typescript","entry":["deno","run","m.ts"],
      "modules":{"a/b":{"steps":{"s":{"input":{"fields":[{"name":"x","type":"int64"}]}}}}}}`,
    "/x",
  );
  assert.ok(typeof ok !== "string");
  assert.equal(ok.get("a/b")!.ops.get("s")!.role, "transform");
});

Deno.test("introspect() asks the catalog for each query and keys entries by hash", async () => {
  const src = `import "fhub/postgresql" pg
resource db = pg.connection { host: env("PGHOST") }
step q = <connection=db> pg.query { query: "SELECT id AS k FROM t WHERE id = @k" }
`;
  const resolved = resolve(parse(src).value, { programDir: "/tmp" }).value;
  const asked: string[] = [];
  const snap = await introspect(resolved, {
    catalog: (req) => {
      asked.push(`${req.module} ${req.params.join(",")} ${JSON.stringify(req.config)}`);
      return Promise.resolve({
        columns: [{ name: "k", type: "int64" }],
        params: [{ name: "k", type: "int64" }],
      });
    },
  });
  assert.deepEqual(asked, [
    `fhub/postgresql k {"host":{"env":"PGHOST","secret":false,"default":null}}`,
  ]);
  assert.equal(snap.queries[0].hash, queryHash("SELECT id AS k  FROM t WHERE id = @k"));
});
