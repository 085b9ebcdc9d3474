// Scenarios run with kafkajs (pure JavaScript, classic groups, roundRobin assignor) against a
// kgroups broker. Usage: node kafkajs_scenarios.js BOOTSTRAP SCENARIO; exit 0 when every check
// holds. tests/kafka_kafkajs.rs runs each scenario. kafkajs is found through NODE_PATH.
'use strict';
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');
const crypto = require('crypto');

const [BOOT, SCENARIO] = process.argv.slice(2);
const FAILS = [];
const check = (cond, what) => { if (!cond) { FAILS.push(what); console.log('FAIL:', what); } };
const name = (p) => `${p}-${crypto.randomBytes(4).toString('hex')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const kafka = new Kafka({ clientId: 'kgroups-test', brokers: [BOOT], logLevel: logLevel.NOTHING });
const key = (p, o) => `${p}:${o}`;

async function create(topic, numPartitions) {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  await admin.disconnect();
}

async function produce(topic, records, opts = {}) {
  const producer = kafka.producer({ idempotent: !!opts.idempotent, maxInFlightRequests: opts.idempotent ? 1 : undefined });
  await producer.connect();
  const acked = [];
  for (let i = 0; i < records.length; i += 50) {
    const chunk = records.slice(i, i + 50);
    const meta = await producer.send({
      topic, acks: -1, compression: opts.compression,
      messages: chunk.map(([k, v]) => ({ key: k, value: v })),
    });
    // One RecordMetadata per partition (the base offset of its messages); the scenarios learn
    // the stored offsets from the log ends (endOffsets).
    acked.push(...meta.map((m) => ({ partition: m.partition, base: Number(m.baseOffset) })));
  }
  await producer.disconnect();
  return acked;
}

async function readAll(group, topic, want, timeoutMs = 30000, opts = {}) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500, ...opts });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got = [];
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push({ partition, offset: Number(message.offset), key: message.key && message.key.toString(), value: message.value.toString() });
    },
  });
  const end = Date.now() + timeoutMs;
  while (got.length < want && Date.now() < end) await sleep(100);
  return { consumer, got };
}

async function endOffsets(topic) {
  const admin = kafka.admin();
  await admin.connect();
  const offs = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const all = new Set();
  for (const o of offs) for (let i = Number(o.low); i < Number(o.high); i++) all.add(key(o.partition, i));
  return all;
}

async function keyed() {
  const topic = name('keyed');
  await create(topic, 4);
  await produce(topic, Array.from({ length: 300 }, (_, i) => [`k${i % 10}`, `k${i % 10}:${i}`]));
  const { consumer, got } = await readAll(name('g'), topic, 300);
  await consumer.disconnect();
  check(got.length === 300, `consumed ${got.length} of 300`);
  const parts = {}; const seq = {};
  for (const m of got) {
    (parts[m.key] ||= new Set()).add(m.partition);
    (seq[m.key] ||= []).push(Number(m.value.split(':')[1]));
  }
  for (const k of Object.keys(parts)) {
    check(parts[k].size === 1, `key ${k} in ${[...parts[k]]}`);
    check(seq[k].every((v, i) => i === 0 || seq[k][i - 1] < v), `key ${k} out of order`);
  }
  const stored = await endOffsets(topic);
  check(stored.size === 300 && got.every((m) => stored.has(key(m.partition, m.offset))), 'consumed offsets differ from the log');
}

// A group member that commits after every message; logs deliveries and commits. kafkajs
// heartbeats only between batches, so on a loaded machine a 6 s session lapsed mid-churn (a CI
// run saw 8 expiries); 15 s keeps membership changes to the ones the scenario makes.
function member(log, group, topic, every = 1) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 15000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
  const id = crypto.randomBytes(3).toString('hex');
  let n = 0;
  const start = async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const o = Number(message.offset);
        log.deliveries.push({ t: performance.now(), id, partition, offset: o });
        n += 1;
        if (n % every === 0) {
          try {
            await consumer.commitOffsets([{ topic, partition, offset: String(o + 1) }]);
            log.commits.push({ t: performance.now(), partition, offset: o + 1 });
          } catch (e) { log.notes.push(String(e)); }
        }
      },
    });
  };
  return { consumer, id, start };
}

function checkLog(log, stored, exactlyOnce) {
  const seen = new Set(log.deliveries.map((d) => key(d.partition, d.offset)));
  const missing = [...stored].filter((k) => !seen.has(k));
  check(missing.length === 0, `${missing.length} records never delivered, e.g. ${missing.slice(0, 5)}`);
  const counts = {};
  for (const d of log.deliveries) counts[key(d.partition, d.offset)] = (counts[key(d.partition, d.offset)] || 0) + 1;
  const dups = Object.values(counts).filter((c) => c > 1).length;
  if (exactlyOnce) check(dups === 0, `${dups} records delivered twice with synchronous commits`);
  const bad = log.deliveries.filter((d) => log.commits.some((c) => c.t < d.t && c.partition === d.partition && c.offset > d.offset));
  check(bad.length === 0, `${bad.length} deliveries below a landed commit, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
  return dups;
}

async function group3() {
  const topic = name('g3');
  await create(topic, 6);
  await produce(topic, Array.from({ length: 600 }, (_, i) => [`k${i % 30}`, String(i)]));
  const stored = await endOffsets(topic);
  const log = { deliveries: [], commits: [], notes: [] };
  const group = name('g');
  const members = [member(log, group, topic), member(log, group, topic), member(log, group, topic)];
  await Promise.all(members.map((m) => m.start()));
  const end = Date.now() + 60000;
  while (new Set(log.deliveries.map((d) => key(d.partition, d.offset))).size < 600 && Date.now() < end) await sleep(100);
  await sleep(1000);
  await Promise.all(members.map((m) => m.consumer.disconnect()));
  checkLog(log, stored, true);
}

async function churn() {
  const topic = name('churn');
  await create(topic, 6);
  const log = { deliveries: [], commits: [], notes: [] };
  const group = name('g');
  let stop = false;
  const producing = (async () => {
    let i = 0;
    while (!stop) {
      await produce(topic, Array.from({ length: 50 }, (_, j) => [`k${(i + j) % 40}`, String(i + j)]));
      i += 50;
      await sleep(50);
    }
  })();
  const live = [member(log, group, topic, 7), member(log, group, topic, 7)];
  await Promise.all(live.map((m) => m.start()));
  for (let step = 0; step < 4; step++) {
    await sleep(1500);
    if (step % 2 === 0) { const m = member(log, group, topic, 7); await m.start(); live.push(m); }
    else { await live.shift().consumer.disconnect(); }
  }
  stop = true;
  await producing;
  const stored = await endOffsets(topic);
  const end = Date.now() + 60000;
  const seen = () => new Set(log.deliveries.map((d) => key(d.partition, d.offset)));
  while ([...stored].some((k) => !seen().has(k)) && Date.now() < end) await sleep(200);
  await Promise.all(live.map((m) => m.consumer.disconnect()));
  const dups = checkLog(log, stored, false);
  console.log(`${stored.size} records, ${dups} re-delivered`);
}

async function resume() {
  const topic = name('resume');
  await create(topic, 3);
  await produce(topic, Array.from({ length: 120 }, (_, i) => [`k${i % 9}`, String(i)]));
  const stored = await endOffsets(topic);
  const group = name('g');
  // The first member reads some records, commits exactly what it read, and leaves.
  const a = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500 });
  await a.connect();
  await a.subscribe({ topics: [topic], fromBeginning: true });
  const first = [];
  await a.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (first.length >= 50) { await sleep(50); return; }
      first.push(key(partition, Number(message.offset)));
      await a.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
    },
  });
  const end = Date.now() + 20000;
  while (first.length < 50 && Date.now() < end) await sleep(50);
  await a.disconnect();
  const { consumer: b, got } = await readAll(group, topic, 120 - first.length, 20000);
  await sleep(1000);
  await b.disconnect();
  const second = got.map((m) => key(m.partition, m.offset));
  check(!second.some((k) => first.includes(k)), 'the new member re-read committed records');
  check(stored.size === new Set([...first, ...second]).size && [...stored].every((k) => first.includes(k) || second.includes(k)), 'records lost between the two members');
}

async function twoGroups() {
  const topic = name('two');
  await create(topic, 4);
  await produce(topic, Array.from({ length: 200 }, (_, i) => [null, String(i)]));
  const stored = await endOffsets(topic);
  for (const g of [name('ga'), name('gb')]) {
    const { consumer, got } = await readAll(g, topic, 200);
    await consumer.disconnect();
    check(got.length === 200 && got.every((m) => stored.has(key(m.partition, m.offset))), `group ${g} did not read everything`);
  }
}

async function adminOps() {
  const admin = kafka.admin();
  await admin.connect();
  const topic = name('adm');
  check(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }) === true, 'createTopics');
  check(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }) === false, 'creating an existing topic reported creation');
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  check(md.topics[0].partitions.length === 3, 'metadata of the created topic');
  await produce(topic, Array.from({ length: 10 }, () => ['k', 'v']));
  const group = name('ga');
  const { consumer } = await readAll(group, topic, 10);
  await consumer.commitOffsets([0, 1, 2].map((p) => ({ topic, partition: p, offset: '1' })));
  const live = await admin.describeGroups([group]);
  check(live.groups[0].members.length === 1, `live group: ${JSON.stringify(live.groups[0].state)}`);
  await consumer.disconnect();
  const { groups } = await admin.listGroups();
  check(groups.some((g) => g.groupId === group), 'group not listed');
  const desc = await admin.describeGroups([group]);
  check(desc.groups[0].state === 'Empty', `closed group state ${desc.groups[0].state}`);
  await admin.setOffsets({ groupId: group, topic, partitions: [0, 1, 2].map((p) => ({ partition: p, offset: '5' })) });
  const offs = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  check(offs[0].partitions.every((p) => p.offset === '5'), `fetched offsets ${JSON.stringify(offs)}`);
  await admin.deleteGroups([group]);
  check(!(await admin.listGroups()).groups.some((g) => g.groupId === group), 'deleted group still listed');
  await admin.deleteTopics({ topics: [topic] });
  check(!(await admin.listTopics()).includes(topic), 'deleted topic still listed');
  await admin.disconnect();
}

async function idempotent() {
  const topic = name('idem');
  await create(topic, 2);
  await produce(topic, Array.from({ length: 200 }, (_, i) => [`k${i}`, String(i)]), { idempotent: true });
  const stored = await endOffsets(topic);
  check(stored.size === 200, `idempotent producer stored ${stored.size} records for 200 sends`);
}

async function codecs() {
  const topic = name('gzip');
  await create(topic, 1);
  await produce(topic, Array.from({ length: 20 }, () => ['k', 'gzip'.repeat(50)]), { compression: CompressionTypes.GZIP });
  const { consumer, got } = await readAll(name('g'), topic, 20);
  await consumer.disconnect();
  check(got.length === 20 && got.every((m) => m.value === 'gzip'.repeat(50)), 'gzip did not round-trip');
}

const SCENARIOS = { keyed, group3, churn, resume, 'two-groups': twoGroups, admin: adminOps, idempotent, codecs };

SCENARIOS[SCENARIO]()
  .catch((e) => { FAILS.push(String(e && e.stack || e)); console.log('FAIL:', e); })
  .then(() => { console.log(FAILS.length ? 'FAILED' : 'ok', SCENARIO); process.exit(FAILS.length ? 1 : 0); });
