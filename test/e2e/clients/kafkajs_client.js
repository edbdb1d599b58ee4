#!/usr/bin/env node
// End-to-end client: kafkajs through the proxy.
//
// Usage: node kafkajs_client.js BOOTSTRAP TOPIC N GROUP [PACE_S]
//
// Produces N keyed records (key "k-i", value "v-i", acks=all), then consumes
// the topic in consumer group GROUP from the earliest offset until every one
// of the N values has been seen. Exits 0 only if all N arrived with matching
// keys and kafkajs logged no warning or error (it logs a dropped connection,
// a failed request or a retry at WARN or ERROR). kafkajs is installed into
// test/e2e/node_modules by scripts/install-test-deps.sh.
//
// With PACE_S > 0 the produce is spread over PACE_S seconds in acknowledged
// batches, and the consumer keeps fetching PACE_S seconds after the last
// record, so that connections live across several broker session lifetimes
// (the proxy must re-authenticate under them without the client noticing).
//
// SASL towards the proxy (its --auth-local-*) comes from the environment:
// KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (for
// OAUTHBEARER the token), and KAFKA_SSL_CA_FILE for SASL_SSL (SSL alone without a mechanism). With
// KAFKA_EXPECT_AUTH_FAILURE=1 the client only connects a producer and exits 0
// if kafkajs refused with a SASL authentication error (for OAUTHBEARER: if
// the send after it fails, see expectAuthFailure). With
// KAFKA_EXPECT_DENIED=ERROR (a Kafka error name such as
// TOPIC_AUTHORIZATION_FAILED) it only sends one record to TOPIC and exits 0 if
// the send failed with that error.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const NAME = 'kafkajs'
const TIMEOUT_MS = 60000
const BATCHES_PER_S = 10
const sleep = ms => new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))

// Every WARN or ERROR kafkajs logs, printed to stderr and counted.
const clientErrors = []
const logCreator = () => ({ namespace, level, label, log }) => {
  const line = `${label} [${namespace}] ${log.message} ${JSON.stringify(log)}`
  console.error(`${NAME}: ${line}`)
  if (level <= logLevel.WARN) clientErrors.push(line)
}

function fail (msg) {
  console.log(`${NAME}: FAIL: ${msg}`)
  process.exit(1)
}

function saslOptions () {
  const mechanism = process.env.KAFKA_SASL_MECHANISM
  const ca = process.env.KAFKA_SSL_CA_FILE
  const tls = ca ? { ssl: { ca: [require('fs').readFileSync(ca, 'utf-8')] } } : {}
  if (!mechanism) return tls
  if (mechanism === 'OAUTHBEARER') {
    const token = process.env.KAFKA_SASL_PASSWORD // a signed JWT
    return { ...tls, sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) } }
  }
  return {
    ...tls,
    sasl: {
      mechanism: mechanism.toLowerCase(),
      username: process.env.KAFKA_SASL_USERNAME,
      password: process.env.KAFKA_SASL_PASSWORD
    }
  }
}

async function expectAuthFailure (bootstrap, topic) {
  const kafka = new Kafka({ clientId: 'kafka-proxy-e2e', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 }, ...saslOptions() })
  const producer = kafka.producer()
  try {
    await producer.connect()
  } catch (e) {
    if (e.name === 'KafkaJSSASLAuthenticationError' || (e.cause && e.cause.name === 'KafkaJSSASLAuthenticationError')) {
      console.log(`${NAME}: OK authentication refused: ${e.message}`)
      process.exit(0)
    }
    fail(`not an authentication error: ${e.name}: ${e.message}`)
  }
  if (process.env.KAFKA_SASL_MECHANISM !== 'OAUTHBEARER') fail('connected with wrong credentials')
  // kafkajs takes an OAUTHBEARER error challenge (RFC 7628: a response
  // without an error code, carrying the error as JSON) for success, as it
  // does against a broker, and never sends the %x01 that would end it.
  // The proxy, like a broker, serves nothing on that connection: the first
  // request closes it.
  try {
    await producer.send({ topic, messages: [{ value: 'must-not-arrive' }] })
  } catch (e) {
    console.log(`${NAME}: OK authentication refused: kafkajs took the error challenge for success, then its first request failed: ${e.name}: ${e.message}`)
    process.exit(0)
  }
  fail('produced with a refused token')
}

async function expectDenied (bootstrap, topic, want) {
  const kafka = new Kafka({ clientId: 'kafka-proxy-e2e', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 }, ...saslOptions() })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages: [{ value: 'must-not-arrive' }] })
  } catch (e) {
    // A protocol error names Kafka's error in .type; a retrying one wraps it.
    const types = [e.type, e.cause && e.cause.type].filter(Boolean)
    if (!types.includes(want)) fail(`send failed with ${e.name} ${types.join(',')}: ${e.message}; want ${want}`)
    console.log(`${NAME}: OK denied: ${want}: ${e.message}`)
    await producer.disconnect()
    process.exit(0)
  }
  fail(`a record was delivered to ${topic}, which the ACLs deny`)
}

async function main () {
  if (process.env.KAFKA_EXPECT_DENIED) return expectDenied(process.argv[2], process.argv[3], process.env.KAFKA_EXPECT_DENIED)
  if (process.env.KAFKA_EXPECT_AUTH_FAILURE === '1') return expectAuthFailure(process.argv[2], process.argv[3])
  const args = process.argv.slice(2)
  if (args.length !== 4 && args.length !== 5) {
    console.error('usage: kafkajs_client.js BOOTSTRAP TOPIC N GROUP [PACE_S]')
    process.exit(2)
  }
  const [bootstrap, topic, nStr, group] = args
  const n = parseInt(nStr, 10)
  const paceMs = args.length === 5 ? parseFloat(args[4]) * 1000 : 0
  const start = Date.now()
  const seen = new Set()
  const bad = []
  const timeoutMs = TIMEOUT_MS + 2 * paceMs
  const timer = setTimeout(() => fail(`timed out after ${timeoutMs / 1000}s (seen ${seen.size}/${n})`), timeoutMs)

  const kafka = new Kafka({
    clientId: 'kafka-proxy-e2e',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator,
    retry: { retries: 8 },
    ...saslOptions()
  })

  const producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  const batches = paceMs > 0 ? Math.max(1, Math.floor(paceMs / 1000 * BATCHES_PER_S)) : 10
  const batch = Math.ceil(n / batches)
  for (let b = 0; b * batch < n; b++) {
    const messages = []
    for (let j = b * batch; j < Math.min(n, (b + 1) * batch); j++) messages.push({ key: `k-${j}`, value: `v-${j}` })
    await producer.send({ topic, acks: -1, messages })
    if (paceMs > 0) await sleep(start + (b + 1) * paceMs / batches - Date.now())
  }
  await producer.disconnect()
  const producedAt = Date.now()

  const consumer = kafka.consumer({ groupId: group, allowAutoTopicCreation: false })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  await consumer.run({
    eachMessage: async ({ message }) => {
      const key = message.key ? message.key.toString() : ''
      const value = message.value ? message.value.toString() : ''
      if (!value.startsWith('v-') || key !== 'k-' + value.slice(2)) bad.push([key, value])
      seen.add(value)
      if (seen.size >= n) resolveDone()
    }
  })
  await done
  // Keep fetching (idle long polls) across session renewals.
  if (paceMs > 0) await sleep(paceMs)
  await consumer.disconnect()
  clearTimeout(timer)

  if (bad.length) fail(`${bad.length} records with mismatched key/value, first: ${JSON.stringify(bad[0])}`)
  const missing = []
  for (let i = 0; i < n; i++) if (!seen.has(`v-${i}`)) missing.push(`v-${i}`)
  if (missing.length) fail(`consumed ${n - missing.length}/${n} distinct values; missing e.g. ${missing.slice(0, 5)}`)
  if (clientErrors.length) fail(`${clientErrors.length} client warnings/errors logged, first: ${clientErrors[0]}`)
  console.log(`${NAME}: OK produced=${n} consumed=${seen.size} distinct topic=${topic} group=${group} client_errors=0 ` +
    `produce=${((producedAt - start) / 1000).toFixed(1)}s consume=${((Date.now() - producedAt) / 1000).toFixed(1)}s`)
  process.exit(0)
}

main().catch(e => fail(`error: ${e && e.stack ? e.stack : e}`))
