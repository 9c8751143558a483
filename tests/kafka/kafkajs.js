// kafkajs, driven by the end-to-end tests (tests/tests/kafka_clients.rs) as
// tests/kafka/clients.py drives the Python clients: one call per run, the only argument a
// JSON object (client "kafkajs", the op, bootstrap, topics, security), the one line printed
// a JSON object with the result or with `error`. Each operation is a function in `ops`;
// records are as clients.py has them, except that kafkajs keeps headers in an object:
// duplicate keys keep their order, but the order among different keys is the object's.
'use strict';
const fs = require('fs');
const { Kafka, CompressionCodecs, CompressionTypes, logLevel } = require('kafkajs');

// Snappy through its pure-JavaScript codec; lz4 and zstd have no maintained codec package
// without a native build, so kafkajs sends gzip, snappy and none only.
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');
const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
};

const TIMEOUT_MS = 10000;
// How long a consume waits for its records: it ends as soon as it has them all.
const CONSUME_MS = 30000;

function client(spec) {
  const sec = spec.security || { protocol: 'PLAINTEXT' };
  const config = {
    clientId: 'tributary-e2e',
    brokers: [spec.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: TIMEOUT_MS,
    requestTimeout: TIMEOUT_MS,
    retry: { retries: 1 },
  };
  if (sec.protocol === 'SSL' || sec.protocol === 'SASL_SSL') {
    config.ssl = {};
    if (sec.ca) config.ssl.ca = [fs.readFileSync(sec.ca, 'utf8')];
    if (sec.cert) {
      config.ssl.cert = fs.readFileSync(sec.cert, 'utf8');
      config.ssl.key = fs.readFileSync(sec.key, 'utf8');
    }
  }
  if (sec.mechanism === 'OAUTHBEARER') {
    config.sasl = {
      mechanism: 'oauthbearer',
      oauthBearerProvider: async () => ({ value: sec.password }),
    };
  } else if (sec.mechanism) {
    config.sasl = {
      mechanism: sec.mechanism.toLowerCase(),
      username: sec.user,
      password: sec.password,
    };
  }
  return new Kafka(config);
}

const ops = {
  async metadata(spec) {
    const admin = client(spec).admin();
    await admin.connect();
    try {
      const names = spec.topics || (await admin.listTopics()).sort();
      const topics = {};
      for (const name of names) {
        try {
          const md = await admin.fetchTopicMetadata({ topics: [name] });
          topics[name] = md.topics[0].partitions.length;
        } catch (e) {
          topics[name] = e.type || e.name;
        }
      }
      return { topics };
    } finally {
      await admin.disconnect();
    }
  },

  async produce(spec) {
    const producer = client(spec).producer();
    await producer.connect();
    try {
      const messages = spec.records.map((r) => {
        const headers = {};
        for (const [k, v] of r.headers) {
          headers[k] = k in headers ? [].concat(headers[k], v) : v;
        }
        return {
          partition: r.partition,
          key: r.key,
          value: r.value,
          headers,
          timestamp: String(r.timestamp),
        };
      });
      const compression = COMPRESSION[spec.compression || 'none'];
      if (compression === undefined) return { error: `no ${spec.compression} codec` };
      await producer.send({ topic: spec.topic, compression, messages });
      return { produced: messages.length };
    } finally {
      await producer.disconnect();
    }
  },

  // kafkajs reads only as a group member: a group of its own, from the earliest offsets.
  async consume(spec) {
    const consumer = client(spec).consumer({ groupId: `tributary-e2e-${process.pid}` });
    await consumer.connect();
    const records = [];
    try {
      await consumer.subscribe({ topic: spec.topic, fromBeginning: true });
      let done;
      const finished = new Promise((resolve) => (done = resolve));
      const timer = setTimeout(done, CONSUME_MS);
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message: m }) => {
          const headers = [];
          for (const [k, v] of Object.entries(m.headers || {})) {
            for (const one of [].concat(v)) {
              headers.push([k, one === null || one === undefined ? null : one.toString()]);
            }
          }
          records.push({
            partition,
            offset: Number(m.offset),
            key: m.key === null ? null : m.key.toString(),
            value: m.value === null ? null : m.value.toString(),
            headers,
            timestamp: Number(m.timestamp),
          });
          if (records.length >= spec.count) done();
        },
      });
      await finished;
      clearTimeout(timer);
    } finally {
      await consumer.disconnect();
    }
    records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    return { records };
  },
};

(async () => {
  const spec = JSON.parse(process.argv[2]);
  let result;
  try {
    result = await ops[spec.op](spec);
  } catch (e) {
    result = { error: `${e.name}: ${e.message}` };
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
})();
