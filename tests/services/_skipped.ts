/**
 * A test module for tests/services_mod.test.ts, run in a child `deno test` with the
 * services' ports pointed at closed ones: both service tests must be reported as ignored,
 * and the plain test as passed.
 */
import { serviceTest } from "./mod.ts";

serviceTest("needs kafka", ["kafka"], () => {
  throw new Error("a test whose service is down must not run");
});
serviceTest("needs postgres and clickhouse", ["postgres", "clickhouse"], () => {});
Deno.test("needs nothing", () => {});
