/**
 * `heddle_kafka_consumer_lag`: a workflow consuming a real Kafka topic reports, per
 * partition, how many messages follow its committed offset. Messages produced while its
 * first batch is held up by a slow step show as lag once that batch commits, and the lag
 * goes back to 0 when they are committed too. Real Kafka, real `heddle local`.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { createTopics, fresh, produce } from "../connectors/_fixtures.ts";
import { deploy, startLocalUi } from "../ui/_daemon.ts";

/** Polls `/metrics` until `done` says so; returns the last text. */
async function until(
  url: string,
  auth: RequestInit,
  done: (text: string) => boolean,
): Promise<string> {
  const deadline = Date.now() + 60_000;
  let text = "";
  while (Date.now() < deadline) {
    text = await (await fetch(url, auth)).text();
    if (done(text)) return text;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`/metrics never got there:\n${text}`);
}

serviceTest("a Kafka source's consumer lag per partition is exported", ["kafka"], async () => {
  const input = fresh("heddle_lag_in");
  const output = fresh("heddle_lag_out");
  await createTopics([input, output], 2);
  await produce(input, [1, 2, 3, 4, 5, 6].map((n) => ({ n })));
  const dir = await Deno.makeTempDir({ prefix: "heddle-lag-" });
  await Deno.writeTextFile(
    `${dir}/lag.he`,
    [
      'import "fhub/kafka" kafka',
      'import "faulty/steps" faulty',
      `resource kb = kafka.connection { broker: "${serviceConfig.kafka.brokers[0]}" }`,
      "workflow Lag {",
      `  kafka.consume <broker=kb> { topic: "${input}" } : { n: int64 }`,
      "  | faulty.run { sleep_ms: 4000 }",
      `  | kafka.produce <broker=kb> { topic: "${output}" }`,
      "}",
      "",
    ].join("\n"),
  );
  const daemon = await startLocalUi(dir);
  try {
    assert.equal(await deploy(daemon, "lag.he"), 0);
    const started = await heddle(["workflow", "start", ...daemon.server, "Lag"]);
    assert.equal(started.code, 0, started.stderr);
    const metrics = `${daemon.origin}/metrics`;
    const auth = { headers: { authorization: `Bearer ${daemon.token}` } };
    const lag = (text: string) =>
      [...text.matchAll(
        new RegExp(
          `^heddle_kafka_consumer_lag\\{workflow="Lag",stage="Lag\\.0",topic="${input}",` +
            `partition="\\d"\\} (\\d+)$`,
          "gm",
        ),
      )].map((m) => Number(m[1]));
    const rowsOut = (text: string, stage: string) =>
      Number(
        text.match(
          new RegExp(`^heddle_rows_out_total\\{workflow="Lag",stage="${stage}"\\} (\\d+)$`, "m"),
        )?.[1] ?? 0,
      );

    // The first six are read and held by the slow step; four more arrive meanwhile.
    await until(metrics, auth, (text) => rowsOut(text, "Lag.0") === 6);
    await produce(input, [7, 8, 9, 10].map((n) => ({ n })));
    // Once the first batch commits, the messages after it show as lag (how many depends on
    // how the source cut its batches: at least the four produced late, at most all ten).
    const behind = await until(metrics, auth, (text) => lag(text).some((n) => n > 0));
    const total = lag(behind).reduce((a, b) => a + b, 0);
    assert.ok(total >= 4 && total <= 10, behind);
    const caughtUp = await until(metrics, auth, (text) =>
      rowsOut(text, "Lag.2") === 10 &&
      lag(text).length > 0 && lag(text).every((n) => n === 0));
    assert.ok(lag(caughtUp).length >= 1);
  } finally {
    await daemon.stop();
  }
});
