/**
 * Recovery after `kill -9` on the real broker (issue 16: the restarted consumer waited out
 * the dead member's 60 s session before any output). `measureRecovery` (bench/recovery.ts,
 * also `deno task bench --only recovery`) runs `heddle run` of Kafka -> Kafka, kills it with
 * SIGKILL, restarts it and times the first output of an event produced after the kill. The
 * consumer is a static group member, so the broker hands the restarted one its partition at
 * once. The only time bound here is a sanity bound far below the old minute; the 5 s goal is
 * the benchmark's to report.
 */
import assert from "node:assert/strict";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { measureRecovery } from "../../bench/recovery.ts";

serviceTest(
  "a consumer restarted after kill -9 is the same static member and gives output without waiting out the session",
  ["kafka"],
  async () => {
    const result = await measureRecovery(serviceConfig.kafka.brokers[0], { timeoutMs: 120_000 });
    assert.match(result.instance ?? "", /^heddle\.[A-Za-z0-9._-]+\.[0-9a-f]{16}$/);
    assert.ok(
      result.restartMs < 30_000,
      `restart to first output took ${result.restartMs} ms: the old member's session was waited out`,
    );
  },
);
