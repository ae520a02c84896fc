#!/usr/bin/env node
// A bulk sender built the usual way on BullMQ (peer baseline for Balas broadcasts).
//
//   node bullmq_broadcast.js --redis redis://127.0.0.1:6501 --numbers 20 --per-number 500 --rate 5 --prefix peerbc
//
// One queue per number (BullMQ's limiter is per queue), each with one Worker at concurrency 1
// and the limiter { max: rate, duration: 1000 }. All jobs are added at once with addBulk; the
// processor "sends" by noting the time. Figures:
//   total_seconds: from the first add to the last send.
//   worst_sliding_second: the most sends of one number within any 1,000 ms.
// The queues are obliterated before and after. Last stdout line is one JSON object.
'use strict';
const { parseArgs } = require('node:util');
const { Queue, Worker } = require('bullmq');

const { values: args } = parseArgs({
  options: {
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    numbers: { type: 'string', default: '20' },
    'per-number': { type: 'string', default: '500' },
    rate: { type: 'string', default: '5' },
    prefix: { type: 'string', default: 'peerbc' },
  },
});
const NUMBERS = +args.numbers, PER = +args['per-number'], RATE = +args.rate;
const connection = { url: args.redis };
const prefix = args.prefix;

async function main() {
  const names = Array.from({ length: NUMBERS }, (_, n) => `peer-bulk-${n}`);
  const queues = names.map((name) => new Queue(name, { connection, prefix }));
  await Promise.all(queues.map((q) => q.obliterate({ force: true })));
  const sends = names.map(() => []);
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const workers = names.map((name, n) => new Worker(name, async () => {
    sends[n].push(Date.now());
    done += 1;
    if (done === NUMBERS * PER) finish();
  }, { connection, prefix, concurrency: 1, limiter: { max: RATE, duration: 1000 } }));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const started = Date.now();
  await Promise.all(queues.map((q, n) => q.addBulk(Array.from({ length: PER }, (_, i) => ({
    name: 'send',
    data: { to: `+62813${String(n).padStart(2, '0')}${String(i).padStart(5, '0')}`, text: 'Flash sale today only: 20% off everything.' },
    opts: { removeOnComplete: true },
  })))));
  await finished;
  const total = (Math.max(...sends.map((s) => Math.max(...s))) - started) / 1000;
  let worst = 0;
  for (const times of sends) {
    times.sort((a, b) => a - b);
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[j] <= times[i] - 1000) j++;
      worst = Math.max(worst, i - j + 1);
    }
  }
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.obliterate({ force: true })));
  await Promise.all(queues.map((q) => q.close()));
  console.log(JSON.stringify({ total_seconds: total, worst_sliding_second: worst, sent: done, rss_mb: process.memoryUsage().rss / 1048576 }));
}

main().catch((error) => { console.error(error); process.exit(1); });
