#!/usr/bin/env node
// BullMQ job-queue throughput (peer baseline for Balas send-job queueing).
//
//   node bullmq_queue.js --redis redis://127.0.0.1:6501 --jobs 20000 --concurrency 50 --prefix peerbench
//
// Two figures, each over `jobs` jobs of ~200 bytes JSON (a WhatsApp-style send job),
// added with Queue.addBulk in batches of 1000 with removeOnComplete, processed by one
// Worker (given concurrency) whose processor does nothing but return:
//   add_and_process_jobs_per_s: producer and worker run together; time from the first
//     add to the last 'completed' event.
//   process_only_jobs_per_s: the queue is prefilled first (the prefill rate is reported
//     as add_only_jobs_per_s), then the worker is started; time from start to last
//     'completed'.
// Producer and worker share this one Node process (one event loop). The queue is
// obliterated before and after, so only keys under `<prefix>:peerbench-sends:*` are
// touched. Last stdout line is one JSON object.
'use strict';
const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const { Queue, Worker } = require('bullmq');

const { values: args } = parseArgs({
  options: {
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    prefix: { type: 'string', default: 'peerbench' },
  },
});
const JOBS = +args.jobs, CONCURRENCY = +args.concurrency, BATCH = 1000;
const QUEUE = 'peerbench-sends';
const connection = { url: args.redis };
const prefix = args.prefix;

// ~200 bytes of JSON, shaped like a send job.
const job = (i) => ({
  name: 'send',
  data: {
    message_id: randomUUID(), channel_id: '3f0e6a52-8a43-4c55-9d0e-6b1f3f0b6a11',
    to: '+6281234567890', wa_id: '6281234567890',
    text: `Halo! Pesanan #${100000 + i} sudah dikirim dan akan tiba besok.`,
  },
  opts: { removeOnComplete: true, removeOnFail: true },
});

async function addAll(queue) {
  for (let i = 0; i < JOBS; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(JOBS, i + BATCH); j++) batch.push(job(j));
    await queue.addBulk(batch);
  }
}

// Resolves when the worker has completed `JOBS` jobs (or rejects after a deadline).
function allCompleted(worker, deadlineMs = 300_000) {
  return new Promise((resolve, reject) => {
    let done = 0;
    const t = setTimeout(() => reject(new Error(`timeout: ${done}/${JOBS} completed`)), deadlineMs);
    worker.on('failed', (_job, err) => { clearTimeout(t); reject(err); });
    worker.on('completed', () => { if (++done === JOBS) { clearTimeout(t); resolve(performance.now()); } });
  });
}

const newWorker = (autorun) =>
  new Worker(QUEUE, async () => undefined, { connection, prefix, concurrency: CONCURRENCY, autorun });

async function main() {
  const queue = new Queue(QUEUE, { connection, prefix });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });

  // 1) add and process concurrently.
  let worker = newWorker(true);
  await worker.waitUntilReady();
  let done = allCompleted(worker);
  let t0 = performance.now();
  await addAll(queue);
  const addAndProcessMs = (await done) - t0;
  await worker.close();

  // 2) prefill, then process only.
  t0 = performance.now();
  await addAll(queue);
  const addOnlyMs = performance.now() - t0;
  const waiting = await queue.getWaitingCount();
  if (waiting !== JOBS) throw new Error(`prefill: ${waiting} waiting, expected ${JOBS}`);
  worker = newWorker(false);
  await worker.waitUntilReady();
  done = allCompleted(worker);
  t0 = performance.now();
  worker.run();
  const processOnlyMs = (await done) - t0;
  await worker.close();

  await queue.obliterate({ force: true });
  await queue.close();

  const rate = (ms) => Math.round(JOBS / (ms / 1000));
  const version = require('bullmq/package.json').version;
  const result = {
    peer: `bullmq ${version}`, jobs: JOBS, concurrency: CONCURRENCY,
    add_and_process_jobs_per_s: rate(addAndProcessMs), process_only_jobs_per_s: rate(processOnlyMs),
    add_only_jobs_per_s: rate(addOnlyMs),
  };
  console.log(`bullmq ${version}: ${JOBS} jobs, concurrency ${CONCURRENCY}: add+process ` +
    `${result.add_and_process_jobs_per_s} jobs/s (${Math.round(addAndProcessMs)}ms), process-only ` +
    `${result.process_only_jobs_per_s} jobs/s (${Math.round(processOnlyMs)}ms), add-only ` +
    `${result.add_only_jobs_per_s} jobs/s (${Math.round(addOnlyMs)}ms)`);
  console.log(JSON.stringify(result));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
