// kafkajs, driven by the end-to-end tests (tests/tests/kafka_clients.rs) as
// tests/kafka/clients.py drives the Python clients: one call per run, the only argument a
// JSON object (client "kafkajs", the op, bootstrap, topics, security), the one line printed
// a JSON object with the result or with `error`. Each operation is a function in `ops`.
'use strict';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const TIMEOUT_MS = 10000;

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
