#!/usr/bin/python3
"""End-to-end client: kafka-python through the proxy.

Usage: kafkapython_client.py BOOTSTRAP TOPIC N GROUP [PACE_S]

Produces N keyed records (key "k-i", value "v-i", acks=all), then consumes the
topic in consumer group GROUP from the earliest offset until every one of the N
values has been seen. Exits 0 only if all N arrived with matching keys and the
client logged no warning or error (kafka-python logs a dropped connection, a
failed request or a retry at WARNING or above).

With PACE_S > 0 the produce is spread over PACE_S seconds in flushed batches,
and the consumer keeps polling PACE_S seconds after the last record, so that
connections live across several broker session lifetimes (the proxy must
re-authenticate under them without the client noticing).
Run it with /usr/bin/python3: the Debian package python3-kafka installs the
module for the system interpreter only.

api_version is left unset on purpose, so kafka-python probes the broker (through
the proxy) and infers a version from the ApiVersions response. That makes this
test also cover the proxy's ApiVersions handling.
"""
import logging
import os
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka import errors as kafka_errors
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.oauth.abstract import AbstractTokenProvider

NAME = "kafka-python"
TIMEOUT_S = 60.0
BATCHES_PER_S = 10


class ErrorCounter(logging.Handler):
    """Counts (and keeps the first of) the client's WARNING+ log records."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.endswith(("Sending username and password in the clear", "Exchanging credentials in the clear")):
            return  # SASL on SASL_PLAINTEXT, as configured
        if msg.startswith("Unable to send to wakeup socket"):
            # kafka-python's own poll-loop wakeup pipe was full (its
            # selector thread busy on a loaded machine): no request or
            # connection is affected, and a broker causes it just as well.
            return
        self.records.append(f"{record.name} {record.levelname} {msg}")


def fail(msg):
    print(f"{NAME}: FAIL: {msg}", flush=True)
    sys.exit(1)


class TokenProvider(AbstractTokenProvider):
    """A fixed OAUTHBEARER token (a signed JWT)."""

    def __init__(self, token):
        super().__init__()
        self._token = token

    def token(self):
        return self._token


def sasl_kwargs():
    """SASL towards the proxy from KAFKA_SASL_MECHANISM, _USERNAME, _PASSWORD
    (for OAUTHBEARER the token), and KAFKA_SSL_CA_FILE for SASL_SSL (SSL
    without a mechanism).

    kafka-python 2.0 sends SaslHandshake v0 and then raw SASL tokens.
    """
    mech = os.environ.get("KAFKA_SASL_MECHANISM")
    ca = os.environ.get("KAFKA_SSL_CA_FILE")
    tls = {"ssl_cafile": ca, "ssl_check_hostname": True} if ca else {}
    if not mech:
        return {"security_protocol": "SSL", **tls} if ca else {}
    conf = {"security_protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT", **tls}
    if mech == "OAUTHBEARER":
        return {
            **conf,
            "sasl_mechanism": mech,
            "sasl_oauth_token_provider": TokenProvider(os.environ["KAFKA_SASL_PASSWORD"]),
        }
    return {
        **conf,
        "sasl_mechanism": mech,
        "sasl_plain_username": os.environ["KAFKA_SASL_USERNAME"],
        "sasl_plain_password": os.environ["KAFKA_SASL_PASSWORD"],
    }


def expect_auth_failure(bootstrap, topic):
    """KAFKA_EXPECT_AUTH_FAILURE=1: wrong credentials must fail to connect
    with an authentication error and deliver nothing."""
    logged = ErrorCounter()
    logging.getLogger("kafka").addHandler(logged)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=10000, **sasl_kwargs())
        producer.send(topic, key=b"k", value=b"v").get(timeout=10)
        fail("a record was delivered with wrong credentials")
    except Exception as e:  # NoBrokersAvailable, KafkaTimeoutError, AuthenticationFailedError
        # After SaslHandshake v0 a broker answers a failed token by closing
        # the connection (there is no error frame), which kafka-python logs
        # as an error on the <authenticating> connection.
        text = " ".join([repr(e)] + logged.records)
        if "uthentication" not in text and "<authenticating>" not in text:
            fail(f"no authentication error: {text}")
    print(f"{NAME}: OK authentication refused", flush=True)


def expect_denied(bootstrap, topic, want):
    """KAFKA_EXPECT_DENIED=ERROR (a Kafka error name such as
    TOPIC_AUTHORIZATION_FAILED): a produce to TOPIC must deliver nothing, and
    the topic's metadata must carry that error.

    kafka-python 2.0.2 fails its metadata refresh with the topic's error but
    its producer only waits on it, so against a broker as through the proxy
    the send times out instead of raising the error; the admin client's
    Metadata shows the error by name."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=5000, **sasl_kwargs())
    try:
        producer.send(topic, key=b"k", value=b"must-not-arrive").get(timeout=5)
        fail(f"a record was delivered to {topic}, which the ACLs deny")
    except KafkaError as e:
        produce_error = e
    finally:
        producer.close(timeout=5)
    if getattr(produce_error, "message", None) != want and not isinstance(produce_error, KafkaTimeoutError):
        fail(f"produce failed with {produce_error!r}, want {want} or a metadata timeout")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000, **sasl_kwargs())
    try:
        names = [kafka_errors.for_code(t["error_code"]).message for t in admin.describe_topics([topic])]
    finally:
        admin.close()
    if names != [want]:
        fail(f"metadata for {topic}: errors {names}, want [{want}]")
    print(f"{NAME}: OK denied: {want} (produce: {produce_error!r})", flush=True)


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
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    client_errors = ErrorCounter()
    logging.getLogger("kafka").addHandler(client_errors)
    start = time.monotonic()
    deadline = start + TIMEOUT_S + 2 * pace

    # kafka-python 2.0.2 (Debian bookworm) asks for topic metadata with
    # Metadata v1, which has no allow_auto_topic_creation field. Apache Kafka
    # treats v0-v3 as "auto-create allowed", but kfake (the demo's test
    # broker) reads the missing field as false and answers
    # UNKNOWN_TOPIC_OR_PARTITION forever, so the producer would block until
    # max_block_ms. Create the topic explicitly (CreateTopics, through the
    # proxy like everything else) instead of relying on auto-creation.
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000, **sasl_kwargs())
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        # The first send to an unknown topic waits for metadata (and the
        # broker's auto-creation); allow that to take a while.
        max_block_ms=int(TIMEOUT_S * 1000),
        request_timeout_ms=30000,
        **sasl_kwargs(),
    )
    print(f"{NAME}: negotiated api_version={producer.config['api_version']}", file=sys.stderr, flush=True)
    futures = []
    batches = max(1, int(pace * BATCHES_PER_S))
    per_batch = -(-n // batches)
    for b in range(batches):
        for i in range(b * per_batch, min(n, (b + 1) * per_batch)):
            futures.append(producer.send(topic, key=f"k-{i}".encode(), value=f"v-{i}".encode()))
        if pace > 0:
            producer.flush(timeout=max(1.0, deadline - time.monotonic()))
            time.sleep(max(0.0, start + (b + 1) * pace / batches - time.monotonic()))
    producer.flush(timeout=max(1.0, deadline - time.monotonic()))
    errors = []
    for f in futures:
        try:
            f.get(timeout=0)
        except Exception as e:  # KafkaError or timeout
            errors.append(repr(e))
    producer.close(timeout=5)
    if errors:
        fail(f"{len(errors)} produce errors, first: {errors[0]}")
    produced_at = time.monotonic()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        **sasl_kwargs(),
    )
    # Subscribed at construction, kafka-python may join the group before
    # its metadata has the topic, and its range assignor then warns "No
    # partition metadata" and assigns nothing until the next rebalance.
    # Learn the topic's partitions (a Metadata request through the proxy)
    # first, so the join assigns them.
    metadata_deadline = time.monotonic() + 10
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > metadata_deadline:
            fail(f"no partition metadata for {topic} after 10s")
        time.sleep(0.1)
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
            batches = consumer.poll(timeout_ms=1000 if pace == 0 else 200)
            for records in batches.values():
                for r in records:
                    key = (r.key or b"").decode()
                    value = (r.value or b"").decode()
                    if not value.startswith("v-") or key != "k-" + value[2:]:
                        bad.append((key, value))
                    seen.add(value)
        if len(seen) == n and not bad:
            consumer.commit()
    finally:
        # Closing cancels the fetch in flight, which kafka-python logs as
        # an error ("Fetch to node N failed: Cancelled"): not the proxy's.
        logging.getLogger("kafka").removeHandler(client_errors)
        consumer.close()

    if bad:
        fail(f"{len(bad)} records with mismatched key/value, first: {bad[0]}")
    if client_errors.records:
        fail(f"{len(client_errors.records)} client warnings/errors logged, first: {client_errors.records[0]}")
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
    except KafkaError as e:
        fail(f"kafka error: {e!r}")
