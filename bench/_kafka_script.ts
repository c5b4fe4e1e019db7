/**
 * The baseline of the end-to-end benchmark: the script a user would write instead of a
 * Heddle workflow, with the same Kafka client (@platformatic/kafka): consume each message,
 * parse it, keep it when `amount > 50`, and produce it with the same acknowledgement setting
 * as Heddle's sink (`acks: -1`), one message at a time. Arguments: broker, input topic,
 * output topic, group. It runs until SIGTERM, and must never batch or filter differently
 * from the workflow it is compared with.
 */
import {
  Consumer,
  type Message,
  Producer,
  stringDeserializer,
  stringSerializer,
} from "@platformatic/kafka";

const [broker, input, output, group] = Deno.args;
const serde = { key: stringSerializer, value: stringSerializer };
const producer = new Producer({
  clientId: "bench-script",
  bootstrapBrokers: [broker],
  acks: -1,
  serializers: { ...serde, headerKey: stringSerializer, headerValue: stringSerializer },
});
const consumer = new Consumer({
  clientId: "bench-script",
  groupId: group,
  bootstrapBrokers: [broker],
  deserializers: {
    key: stringDeserializer,
    value: stringDeserializer,
    headerKey: stringDeserializer,
    headerValue: stringDeserializer,
  },
});
const stream = await consumer.consume({
  topics: [input],
  mode: "committed",
  fallbackMode: "earliest",
});
let stopping = false;
Deno.addSignalListener("SIGTERM", () => {
  stopping = true;
  stream.close().catch(() => {});
});
for await (const m of stream as AsyncIterable<Message<string, string, string, string>>) {
  const row = JSON.parse(m.value) as { amount: number };
  if (row.amount > 50) await producer.send({ messages: [{ topic: output, value: m.value }] });
  if (stopping) break;
}
await consumer.close(true).catch(() => {});
await producer.close().catch(() => {});
