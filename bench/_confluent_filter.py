"""Peer of the end-to-end benchmark (bench/e2e.ts): the Kafka -> filter -> Kafka workflow as
the plain confluent-kafka (librdkafka) loop a user would write, with the same guarantee as
Heddle's: consume up to 1,000 records (waiting at most 5 ms), produce the ones whose JSON
`amount` is over 50 (`acks=all`, idempotent), wait for their acknowledgements, then commit the
consumed offsets. Arguments: broker, input topic, output topic, group. It runs until SIGTERM
and must filter exactly as the workflow it is compared with."""

import json
import signal
import sys

from confluent_kafka import Consumer, Producer

broker, source_topic, sink_topic, group = sys.argv[1:5]
consumer = Consumer({
    "bootstrap.servers": broker,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
producer = Producer({"bootstrap.servers": broker, "acks": "all", "enable.idempotence": True})
consumer.subscribe([source_topic])

running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
while running:
    batch = consumer.consume(num_messages=1000, timeout=0.005)
    if not batch:
        continue
    for m in batch:
        if m.error() is None and json.loads(m.value())["amount"] > 50:
            producer.produce(sink_topic, m.value())
    producer.flush()
    consumer.commit(asynchronous=True)
producer.flush()
consumer.close()
