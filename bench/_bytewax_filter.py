"""Peer of the end-to-end benchmark (bench/e2e.ts): the Kafka -> filter -> Kafka workflow
written as a bytewax dataflow, on one worker, with bytewax's own Kafka connectors (librdkafka
through confluent-kafka). Arguments: broker, input topic, output topic. It keeps a record when
its JSON value's `amount` is over 50 and produces the value unchanged with `acks=all`, as the
Heddle workflow does; bytewax's sink flushes (waits for the acknowledgements) after each batch.
It runs until SIGTERM and must filter exactly as the workflow it is compared with."""

import json
import sys

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main

broker, source_topic, sink_topic = sys.argv[1:4]

flow = Dataflow("kafka_filter")
messages = op.input("in", flow, KafkaSource([broker], [source_topic]))
kept = op.filter("amount_over_50", messages, lambda m: json.loads(m.value)["amount"] > 50)
out = op.map("to_sink", kept, lambda m: KafkaSinkMessage(m.key, m.value))
op.output("out", out, KafkaSink([broker], sink_topic, add_config={"acks": "all"}))

if __name__ == "__main__":
    cli_main(flow, workers_per_process=1)
