/**
 * `redactValues` masks secrets and URL passwords in every string of an event, however deep,
 * and leaves what holds nothing to hide as it is (the same objects: no copy per batch).
 */
import assert from "node:assert/strict";
import { redactValues } from "../../runtime/redact/mod.ts";

Deno.test("redactValues masks nested strings and shares what it does not change", () => {
  const clean = { stage: "s1", rows: [1, 2], nested: { ok: "fine", n: null } };
  const event = {
    kind: "attempt-failed",
    detail: {
      clean,
      errors: [{ message: "login with hunter22 failed" }, { message: "no secret" }],
      url: "connect postgres://app:pw123@db:5432/x",
    },
  };
  const out = redactValues(event, ["hunter22"]);
  assert.equal(out.detail.errors[0].message, "login with *** failed");
  assert.equal(out.detail.url, "connect postgres://app:***@db:5432/x");
  assert.equal(out.detail.clean, clean, "an unchanged part is the same object");
  assert.equal(out.detail.errors[1], event.detail.errors[1]);
  assert.equal(event.detail.errors[0].message, "login with hunter22 failed", "input untouched");
  assert.equal(redactValues(clean, ["hunter22"]), clean);
});
