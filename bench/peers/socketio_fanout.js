#!/usr/bin/env node
// Socket.io broadcast fan-out latency (peer baseline for Balas realtime fan-out).
//
//   node socketio_fanout.js --clients 1000 --rate 200 --seconds 10 [--server child|inproc]
//
// One Socket.io server (websocket transport only) and N socket.io-client clients
// (websocket transport only). By default the server runs in a child process
// (child_process.fork) so server and clients don't share an event loop;
// `--server inproc` runs it in the same process for comparison.
// After every client has connected (awaited on events, with a deadline) the server
// broadcasts `rate` msgs/s for `seconds` seconds; each ~130-byte JSON message carries
// its wall-clock send time (performance.timeOrigin + performance.now(), ms, comparable
// across processes on one machine). Per message, latency = time until EVERY client has
// it (max over clients of receive - send). Reported: p50/p99/max of that figure over
// all messages that reached every client, and complete vs expected message counts.
// Also reported: CPU % (of one core) of client and server processes during the
// broadcast, and the worst lateness of an emit vs its schedule (send_lag_max_ms):
// latency is measured from the actual emit, so a saturated server shows up there.
//
// Needs ~1 fd per client in the client process (2 per client with --server inproc):
// if `ulimit -n` is below ~clients+100, raise it first, e.g. `ulimit -n 65536`.
// Last stdout line is one JSON object.
'use strict';
const { fork } = require('node:child_process');
const http = require('node:http');
const { parseArgs } = require('node:util');

const now = () => performance.timeOrigin + performance.now(); // wall ms, fractional

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    server: { type: 'string', default: 'child' }, // child | inproc
    'server-child': { type: 'boolean', default: false }, // internal
  },
});
const CLIENTS = +args.clients, RATE = +args.rate, SECONDS = +args.seconds;
const TOTAL = Math.round(RATE * SECONDS);

// ---------------------------------------------------------------- server side
// Starts the server; `send(msg)` reports to the driver (IPC or direct callback).
// Handles {cmd:'start'} by broadcasting TOTAL messages paced at RATE, then sends
// {type:'sent', count, maxLag}; {cmd:'stats'} -> {type:'stats', cpu}; {cmd:'exit'}.
function startServer(send) {
  const { Server } = require('socket.io');
  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });
  const pad = 'x'.repeat(20);
  let cpu0;
  const handle = (msg) => {
    if (msg.cmd === 'start') {
      if (io.engine.clientsCount !== CLIENTS) {
        console.error(`server sees ${io.engine.clientsCount} clients, expected ${CLIENTS}`);
      }
      cpu0 = process.cpuUsage();
      const period = 1000 / RATE, t0 = now();
      let seq = 0, maxLag = 0;
      // Catch-up pacing: each tick sends every message whose scheduled time has passed.
      const tick = () => {
        const due = Math.min(TOTAL, Math.floor((now() - t0) / period) + 1);
        while (seq < due) {
          // ~130 bytes on the wire incl. socket.io framing `42["m",{...}]`
          const ts = now();
          maxLag = Math.max(maxLag, ts - (t0 + seq * period)); // how late vs schedule
          io.emit('m', { seq, ts, channel: 'ch_0123456789abcdef', kind: 'message.status', body: pad });
          seq++;
        }
        if (seq < TOTAL) setTimeout(tick, Math.max(0, t0 + seq * period - now()));
        else send({ type: 'sent', count: seq, maxLag });
      };
      tick();
    } else if (msg.cmd === 'stats') {
      send({ type: 'stats', cpu: process.cpuUsage(cpu0) });
    } else if (msg.cmd === 'exit') {
      io.close();
      if (args['server-child']) process.exit(0);
    }
  };
  httpServer.listen(0, '127.0.0.1', () => send({ type: 'listening', port: httpServer.address().port }));
  return handle;
}

// ---------------------------------------------------------------- driver / clients
function withDeadline(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const { io } = require('socket.io-client');

  // Wire up the server (child process or in-process) with a tiny event bus.
  const events = new (require('node:events').EventEmitter)();
  let toServer, child;
  if (args.server === 'inproc') {
    toServer = startServer((m) => setImmediate(() => events.emit(m.type, m)));
  } else {
    child = fork(__filename, ['--server-child', '--clients', `${CLIENTS}`, '--rate', `${RATE}`, '--seconds', `${SECONDS}`]);
    child.on('message', (m) => events.emit(m.type, m));
    child.on('exit', (code) => code && events.emit('error', new Error(`server exited ${code}`)));
    toServer = (m) => child.send(m);
  }
  const once = (type, ms) => withDeadline(require('node:events').once(events, type).then(([m]) => m), ms, type);
  const { port } = await once('listening', 10_000);
  const url = `http://127.0.0.1:${port}`;

  // Per-message bookkeeping: how many clients got it, and the slowest latency.
  const got = new Uint32Array(TOTAL), worst = new Float64Array(TOTAL);
  let complete = 0, received = 0;
  let allDone; const allDoneP = new Promise((r) => { allDone = r; });
  const onMsg = (m) => {
    const lat = now() - m.ts;
    received++;
    if (lat > worst[m.seq]) worst[m.seq] = lat;
    if (++got[m.seq] === CLIENTS && ++complete === TOTAL) allDone();
  };

  // Connect all clients, at most 100 handshakes in flight, each awaited on 'connect'.
  const sockets = [];
  const connectOne = () => new Promise((resolve, reject) => {
    const idx = sockets.length;
    const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20_000 });
    s.on('m', onMsg);
    s.once('connect', resolve);
    s.once('connect_error', (e) => reject(new Error(`client #${idx} failed to connect: ` +
      `${e.description?.error?.message ?? e.message} (too many open files? see ulimit -n)`)));
    sockets.push(s);
  });
  const tConn = now();
  let next = 0;
  const lane = async () => { while (next < CLIENTS) { next++; await connectOne(); } };
  await withDeadline(Promise.all(Array.from({ length: Math.min(100, CLIENTS) }, lane)), 60_000, 'clients connecting');
  const connectMs = now() - tConn;

  // Broadcast, then wait until every message reached every client (or a deadline).
  const sentP = once('sent', SECONDS * 1000 + 60_000);
  const cpu0 = process.cpuUsage(), tStart = now();
  toServer({ cmd: 'start' });
  // maxLag: worst lateness of an emit vs its schedule. Latency is measured from the
  // actual emit, so a saturated server shows up here rather than in p50/p99.
  const { count: sent, maxLag } = await sentP;
  await withDeadline(allDoneP, 30_000, 'all messages delivered').catch((e) => console.error(e.message));
  // CPU used during the broadcast phase, as % of one core (client side includes the
  // server too when --server inproc).
  const wall = now() - tStart, pctOf = ({ user, system }) => Math.round(((user + system) / 1000 / wall) * 100);
  const clientCpu = pctOf(process.cpuUsage(cpu0));
  let serverCpu = null;
  if (child) {
    const statsP = once('stats', 10_000);
    toServer({ cmd: 'stats' });
    serverCpu = pctOf((await statsP).cpu);
  }

  for (const s of sockets) s.close();
  toServer({ cmd: 'exit' });
  if (child) child.disconnect();

  const lats = [];
  for (let i = 0; i < TOTAL; i++) if (got[i] === CLIENTS) lats.push(worst[i]);
  lats.sort((a, b) => a - b);
  const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);
  const version = require('socket.io/package.json').version;
  const result = {
    peer: `socket.io ${version}`, server: args.server, clients: CLIENTS, rate: RATE, messages: TOTAL,
    sent, complete: lats.length, deliveries: received, expected_deliveries: TOTAL * CLIENTS,
    p50_ms: r3(pct(lats, 50)), p99_ms: r3(pct(lats, 99)), max_ms: r3(lats[lats.length - 1]),
    connect_ms: r3(connectMs), client_cpu_pct: clientCpu, server_cpu_pct: serverCpu,
    send_lag_max_ms: r3(maxLag),
  };
  console.log(`socket.io ${version} (${args.server} server): ${CLIENTS} clients, ${RATE} msg/s x ${SECONDS}s: ` +
    `${result.complete}/${TOTAL} messages reached all clients; all-clients latency ` +
    `p50=${result.p50_ms}ms p99=${result.p99_ms}ms max=${result.max_ms}ms (connect ${Math.round(connectMs)}ms; ` +
    `cpu% of one core: clients ${clientCpu}, server ${serverCpu ?? 'inproc'}; worst send lag ${Math.round(maxLag)}ms)`);
  console.log(JSON.stringify(result));
  process.exit(0);
}

if (args['server-child']) {
  const handle = startServer((m) => process.send(m));
  process.on('message', handle);
  process.on('disconnect', () => process.exit(0));
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
