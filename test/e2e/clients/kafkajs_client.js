#!/usr/bin/env node
// End-to-end client: kafkajs through the proxy.
//
// Usage: node kafkajs_client.js BOOTSTRAP TOPIC N GROUP
//
// Produces N keyed records (key "k-i", value "v-i", acks=all), then consumes
// the topic in consumer group GROUP from the earliest offset until every one
// of the N values has been seen. Exits 0 only if all N arrived with matching
// keys. kafkajs is installed into test/e2e/node_modules by
// scripts/install-test-deps.sh.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const NAME = 'kafkajs'
const TIMEOUT_MS = 60000

function fail (msg) {
  console.log(`${NAME}: FAIL: ${msg}`)
  process.exit(1)
}

async function main () {
  const args = process.argv.slice(2)
  if (args.length !== 4) {
    console.error('usage: kafkajs_client.js BOOTSTRAP TOPIC N GROUP')
    process.exit(2)
  }
  const [bootstrap, topic, nStr, group] = args
  const n = parseInt(nStr, 10)
  const start = Date.now()
  const seen = new Set()
  const bad = []
  const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000}s (seen ${seen.size}/${n})`), TIMEOUT_MS)

  const kafka = new Kafka({
    clientId: 'kafka-proxy-e2e',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 8 }
  })

  const producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  const batch = 100
  for (let i = 0; i < n; i += batch) {
    const messages = []
    for (let j = i; j < Math.min(n, i + batch); j++) messages.push({ key: `k-${j}`, value: `v-${j}` })
    await producer.send({ topic, acks: -1, messages })
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
  await consumer.disconnect()
  clearTimeout(timer)

  if (bad.length) fail(`${bad.length} records with mismatched key/value, first: ${JSON.stringify(bad[0])}`)
  const missing = []
  for (let i = 0; i < n; i++) if (!seen.has(`v-${i}`)) missing.push(`v-${i}`)
  if (missing.length) fail(`consumed ${n - missing.length}/${n} distinct values; missing e.g. ${missing.slice(0, 5)}`)
  console.log(`${NAME}: OK produced=${n} consumed=${seen.size} distinct topic=${topic} group=${group} ` +
    `produce=${((producedAt - start) / 1000).toFixed(1)}s consume=${((Date.now() - producedAt) / 1000).toFixed(1)}s`)
  process.exit(0)
}

main().catch(e => fail(`error: ${e && e.stack ? e.stack : e}`))
