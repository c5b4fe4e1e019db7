/**
 * Lineage counters (runtime/executor/_lineage.ts): a position commits only once every batch
 * derived from it ended, in source order, and a merged origin (what a blocking stage emits)
 * keeps each of its inputs open, once, until every batch carrying it ended.
 */
import assert from "node:assert/strict";
import { Lineage } from "../../runtime/executor/_lineage.ts";
import type { Position } from "../../runtime/connectors/mod.ts";

function lineage() {
  const commits: string[] = [];
  const l = new Lineage((source, position) => {
    commits.push(`${source}@${JSON.stringify(position)}`);
    return Promise.resolve();
  });
  return { l, commits };
}

const at = (n: number) => ({ offset: n }) as unknown as Position;

Deno.test("Lineage commits a position only after its earlier batches and its derived ones end", async () => {
  const { l, commits } = lineage();
  const a = l.open("src", at(1)), b = l.open("src", at(2));
  l.adjust([b], -1);
  await l.settled();
  assert.deepEqual(commits, [], "b ended, but a before it is open");
  l.adjust([a], 2); // a became three batches
  l.adjust([a], -1);
  l.adjust([a], -1);
  await l.settled();
  assert.deepEqual(commits, []);
  l.adjust([a], -1);
  await l.settled();
  assert.deepEqual(commits, ['src@{"offset":2}']);
  assert.equal(l.openBatches, 0);
});

Deno.test("Lineage.merge() holds each input once until every batch carrying it ended", async () => {
  const { l, commits } = lineage();
  const inputs = [l.open("src", at(1)), l.open("src", at(2)), l.open("other", at(7))];
  // The blocking stage received every input (a duplicate too), then its inputs ended.
  const merged = l.merge([...inputs, inputs[0]]);
  for (const o of inputs) l.adjust([o], -1);
  await l.settled();
  assert.deepEqual(commits, [], "the merged origin still holds its inputs");
  assert.equal(l.openBatches, 3);
  l.adjust([merged], 999); // a thousand output batches
  for (let i = 0; i < 999; i++) l.adjust([merged], -1);
  await l.settled();
  assert.deepEqual(commits, []);
  l.adjust([merged], -1);
  await l.settled();
  assert.deepEqual(commits.sort(), ['other@{"offset":7}', 'src@{"offset":2}']);
  assert.equal(l.openBatches, 0);
});

Deno.test("Lineage.merge() of merged origins releases through every level", async () => {
  const { l, commits } = lineage();
  const a = l.open("src", at(1));
  const first = l.merge([a]);
  l.adjust([a], -1);
  const second = l.merge([first]);
  l.adjust([first], -1);
  await l.settled();
  assert.deepEqual(commits, []);
  l.adjust([second], -1);
  await l.settled();
  assert.deepEqual(commits, ['src@{"offset":1}']);
});
