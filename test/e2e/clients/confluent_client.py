#!/usr/bin/python3
"""End-to-end client: confluent-kafka-python (librdkafka) through the proxy.

Usage: confluent_client.py BOOTSTRAP TOPIC N GROUP [PACE_S]

Produces N keyed records (key "k-i", value "v-i", acks=all), then consumes the
topic in consumer group GROUP from the earliest offset until every one of the N
values has been seen. Exits 0 only if all N arrived with matching keys and the
client reported no error (librdkafka's error callback, e.g. a dropped broker
connection, counts as one).

With PACE_S > 0 the produce is spread over PACE_S seconds in flushed batches,
and the consumer keeps polling PACE_S seconds after the last record, so that
connections live across several broker session lifetimes (the proxy must
re-authenticate under them without the client noticing).
Run it with /usr/bin/python3: the Debian package python3-confluent-kafka
installs the module for the system interpreter only.

SASL towards the proxy (its --auth-local-*) comes from the environment:
KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (for
OAUTHBEARER the token), and KAFKA_SSL_CA_FILE for SASL_SSL (SSL alone without a mechanism). With
KAFKA_EXPECT_AUTH_FAILURE=1 the client only tries to produce one record and
exits 0 if librdkafka reported an authentication error, and nothing arrived.
With KAFKA_EXPECT_DENIED=ERROR (a Kafka error name such as
TOPIC_AUTHORIZATION_FAILED) it only produces one record to TOPIC and exits 0 if
the delivery failed with that error.
"""
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

NAME = "confluent-kafka"
TIMEOUT_S = 60.0
BATCHES_PER_S = 10


def fail(msg):
    print(f"{NAME}: FAIL: {msg}", flush=True)
    sys.exit(1)


def sasl_conf():
    mech = os.environ.get("KAFKA_SASL_MECHANISM")
    ca = os.environ.get("KAFKA_SSL_CA_FILE")
    tls = {"ssl.ca.location": ca, "ssl.endpoint.identification.algorithm": "https"} if ca else {}
    if not mech:
        return {"security.protocol": "SSL", **tls} if ca else {}
    conf = {"security.protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT", **tls}
    if mech == "OAUTHBEARER":
        # The token (a signed JWT) comes in KAFKA_SASL_PASSWORD; librdkafka
        # asks for it through oauth_cb, served from poll() and flush().
        token = os.environ["KAFKA_SASL_PASSWORD"]
        return {
            **conf,
            "sasl.mechanisms": mech,
            "oauth_cb": lambda _config: (token, time.time() + 3600),
        }
    return {
        **conf,
        "sasl.mechanisms": mech,
        "sasl.username": os.environ["KAFKA_SASL_USERNAME"],
        "sasl.password": os.environ["KAFKA_SASL_PASSWORD"],
    }


def expect_auth_failure(bootstrap, topic):
    auth_errors, other = [], []

    def on_error(err):
        (auth_errors if err.code() == KafkaError._AUTHENTICATION else other).append(str(err))

    delivered = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000, "error_cb": on_error,
                         "on_delivery": lambda err, msg: delivered.append(err is None), **sasl_conf()})
    producer.produce(topic, key=b"k", value=b"v")
    deadline = time.monotonic() + 15
    while not auth_errors and not delivered and time.monotonic() < deadline:
        producer.poll(0.2)
    if any(delivered):
        fail("a record was delivered with wrong credentials")
    if not auth_errors:
        fail(f"no authentication error reported (other errors: {other})")
    print(f"{NAME}: OK authentication refused: {auth_errors[0]}", flush=True)


def expect_denied(bootstrap, topic, want):
    client_errors, reports = [], []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 15000,
                         "error_cb": client_errors.append,
                         "on_delivery": lambda err, msg: reports.append(err), **sasl_conf()})
    producer.produce(topic, key=b"k", value=b"must-not-arrive")
    producer.flush(20)
    if not reports:
        fail("no delivery report within 20 s")
    err = reports[0]
    if err is None:
        fail(f"a record was delivered to {topic}, which the ACLs deny")
    if err.name() != want:
        fail(f"delivery failed with {err.name()} ({err}), want {want}; client errors: {[str(e) for e in client_errors]}")
    print(f"{NAME}: OK denied: {err.name()}: {err.str()}", flush=True)


def main():
    if os.environ.get("KAFKA_EXPECT_DENIED"):
        expect_denied(sys.argv[1], sys.argv[2], os.environ["KAFKA_EXPECT_DENIED"])
        return
    if os.environ.get("KAFKA_EXPECT_AUTH_FAILURE") == "1":
        expect_auth_failure(sys.argv[1], sys.argv[2])
        return
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, n, group = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pace = float(sys.argv[5]) if len(sys.argv) == 6 else 0.0
    start = time.monotonic()
    deadline = start + TIMEOUT_S + 2 * pace

    errors = []
    delivered = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered[0] += 1

    client_errors = []

    def on_error(err):
        # librdkafka reports transient errors (e.g. a broker connection going
        # down) here. Through a healthy proxy there are none: count them all.
        print(f"{NAME}: client error: {err}", file=sys.stderr, flush=True)
        client_errors.append(str(err))

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "message.timeout.ms": int(TIMEOUT_S * 1000),
        "error_cb": on_error,
        **sasl_conf(),
    })
    batches = max(1, int(pace * BATCHES_PER_S))
    per_batch = -(-n // batches)
    for b in range(batches):
        for i in range(b * per_batch, min(n, (b + 1) * per_batch)):
            while True:
                try:
                    producer.produce(topic, key=f"k-{i}", value=f"v-{i}", on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        if pace > 0:
            remaining = producer.flush(max(1.0, deadline - time.monotonic()))
            if remaining:
                fail(f"{remaining} records still undelivered after flush")
            time.sleep(max(0.0, start + (b + 1) * pace / batches - time.monotonic()))
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    if remaining:
        fail(f"{remaining} records still undelivered after flush")
    if errors:
        fail(f"{len(errors)} produce errors, first: {errors[0]}")
    if delivered[0] != n:
        fail(f"delivered {delivered[0]} of {n}")
    produced_at = time.monotonic()

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "error_cb": on_error,
        **sasl_conf(),
    })
    consumer.subscribe([topic])
    seen = set()
    bad = []
    linger_until = None
    try:
        while time.monotonic() < deadline:
            if len(seen) >= n:
                # Keep fetching (idle long polls) across session renewals.
                if linger_until is None:
                    linger_until = time.monotonic() + pace
                if time.monotonic() >= linger_until:
                    break
            msg = consumer.poll(1.0 if pace == 0 else 0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            key = (msg.key() or b"").decode()
            value = (msg.value() or b"").decode()
            if not value.startswith("v-") or key != "k-" + value[2:]:
                bad.append((key, value))
            seen.add(value)
        if len(seen) == n and not bad:
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:
                # Auto-commit may already have stored everything (PACE_S).
                if e.args[0].code() != KafkaError._NO_OFFSET:
                    raise
    finally:
        consumer.close()

    if bad:
        fail(f"{len(bad)} records with mismatched key/value, first: {bad[0]}")
    if client_errors:
        fail(f"{len(client_errors)} client errors, first: {client_errors[0]}")
    expected = {f"v-{i}" for i in range(n)}
    if seen != expected:
        missing = sorted(expected - seen)
        fail(f"consumed {len(seen & expected)}/{n} distinct values within {TIMEOUT_S:.0f}s; "
             f"missing e.g. {missing[:5]}")
    print(f"{NAME}: OK produced={n} consumed={len(seen)} distinct topic={topic} group={group} "
          f"client_errors=0 produce={produced_at - start:.1f}s consume={time.monotonic() - produced_at:.1f}s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        fail(f"kafka exception: {e}")
