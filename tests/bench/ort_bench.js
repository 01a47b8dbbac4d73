#!/usr/bin/env node
// ONNX Runtime side of compare.py: times one exported model (NHWC float32 in, NHWC float32 out)
// with npm onnxruntime-node's CPU execution provider at its best settings: every graph
// optimisation ('all'), intra-op threads = the given count (the cores), sequential execution,
// the CPU memory arena on. The last stdout line is a JSON object, as `fusenet bench` prints.
//
//   node ort_bench.js --ort-dir DIR --model M.onnx --batch B --size HxW --threads T
//                     [--iters K] [--warmup W] [--check-input IN.f32 --check-output OUT.f32]
//
// DIR is where `npm install --ignore-scripts onnxruntime-node` was run (its node_modules).
// --check-input: raw float32 NHWC (B,H,W,3) in, raw float32 output written, nothing timed.
'use strict';
const fs = require('fs');
const path = require('path');

function args(argv) {
  const a = {iters: 20, warmup: 3};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-/g, '_');
    if (i + 1 >= argv.length) throw new Error('option ' + argv[i] + ' needs a value');
    a[k] = argv[i + 1];
  }
  for (const k of ['ort_dir', 'model', 'batch', 'size', 'threads']) {
    if (a[k] === undefined) throw new Error('--' + k.replace(/_/g, '-') + ' is required');
  }
  const m = /^(\d+)x(\d+)$/.exec(a.size);
  if (!m) throw new Error('--size: ' + a.size + ' is not HxW');
  a.h = +m[1];
  a.w = +m[2];
  for (const k of ['batch', 'threads', 'iters', 'warmup']) a[k] = +a[k];
  return a;
}

async function main() {
  const a = args(process.argv.slice(2));
  const ort = require(path.join(path.resolve(a.ort_dir), 'node_modules', 'onnxruntime-node'));
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
  });
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const n = a.batch * a.h * a.w * 3;
  const input = session.inputNames[0];
  const output = session.outputNames[0];

  if (a.check_input) {
    const buf = fs.readFileSync(a.check_input);
    const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    if (x.length !== n) throw new Error(a.check_input + ': ' + x.length + ' floats, expected ' + n);
    const r = await session.run({[input]: new ort.Tensor('float32', Float32Array.from(x), [a.batch, a.h, a.w, 3])});
    const y = r[output];
    fs.writeFileSync(a.check_output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    console.log(JSON.stringify({shape: y.dims, ort: ort.env.versions ? ort.env.versions.common : 'unknown'}));
    return;
  }

  // The same input range as the other sides: uniform in [-120, 136), from a fixed LCG.
  const x = new Float32Array(n);
  let s = 12345 >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 4294967296) * 256.0 - 120.0;
  }
  const feeds = {[input]: new ort.Tensor('float32', x, [a.batch, a.h, a.w, 3])};
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < a.warmup; i++) await session.run(feeds);
  const warmupS = Number(process.hrtime.bigint() - w0) / 1e9;
  const times = [];
  for (let i = 0; i < a.iters; i++) {
    const t = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((p, q) => p - q);
  const median = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({
    images_per_s: a.batch * 1e3 / median,
    ms_per_batch_median: median,
    ms_per_batch_min: times[0],
    load_s: loadS,
    warmup_s: warmupS,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024.0,
    ort: ort.env.versions ? ort.env.versions.common : 'unknown',
    threads: a.threads,
  }));
}

main().catch((e) => {
  console.error('ort_bench.js: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
