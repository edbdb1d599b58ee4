#!/usr/bin/python3
"""End-to-end check: an idle librdkafka client learns at once that its brokers went away.

Usage: confluent_idle.py BOOTSTRAP TOPIC MARKER LIMIT_S

Produces one record (so the client holds broker connections through the
proxy), creates the file MARKER, and then idles: it sends nothing. When a line
arrives on stdin (the test has stopped the brokers), it polls librdkafka's
error callback until the client reports the loss of its broker connections
(_TRANSPORT or _ALL_BROKERS_DOWN). It exits 0 if that came within LIMIT_S
seconds of the line, 1 otherwise. An idle client hears of the loss only if
the proxy closes its connections when the brokers close theirs; otherwise it
would notice at its next request (a metadata refresh, minutes later).
Run it with /usr/bin/python3 (Debian's python3-confluent-kafka).
"""
import sys
import time

from confluent_kafka import KafkaError, Producer

NAME = "confluent-kafka idle"


def fail(msg):
    print(f"{NAME}: FAIL: {msg}", flush=True)
    sys.exit(1)


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, marker, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    lost = []

    def on_error(err):
        print(f"{NAME}: client error: {err}", file=sys.stderr, flush=True)
        if err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            lost.append(time.monotonic())

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "error_cb": on_error,
    })
    delivered = []
    producer.produce(topic, key="k", value="v", on_delivery=lambda err, msg: delivered.append(err))
    if producer.flush(30) or delivered != [None]:
        fail(f"the first record was not delivered: {delivered}")
    if lost:
        fail("broker connections lost before the brokers were stopped")
    open(marker, "w").close()

    if not sys.stdin.readline():
        fail("stdin closed before the brokers were stopped")
    stopped = time.monotonic()
    while not lost and time.monotonic() - stopped < limit:
        producer.poll(0.1)
    if not lost:
        fail(f"no broker connection loss reported within {limit}s of the brokers stopping")
    print(f"{NAME}: OK connection loss reported {lost[0] - stopped:.2f}s after the brokers stopped", flush=True)


if __name__ == "__main__":
    main()
