#!/usr/bin/env node
// Summarises a V8/JSC .cpuprofile (Chrome DevTools format, as written by `deno run --cpu-prof` and
// `bun --cpu-prof`): self time and inclusive time per function, top N.
// Usage: node bench/profile-summary.mjs FILE.cpuprofile [N=30]
import { readFileSync } from "node:fs";

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: node bench/profile-summary.mjs FILE.cpuprofile [N]");
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map();
const deltas = profile.timeDeltas ?? [];
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  const dt = deltas[i + 1] ?? deltas[i] ?? 0; // a sample's weight: the gap to the next sample
  selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(dt, 0));
}
const name = (n) => {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(src|bench|ext|node_modules)\//, "$1/")}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"} ${where}`.trim();
};
const self = new Map(), total = new Map();
let sum = 0, idle = 0;
for (const [id, us] of selfUs) {
  const n = nodes.get(id);
  const key = name(n);
  sum += us;
  if (/^\((idle|program|garbage collector)\)/.test(key) && key.startsWith("(idle")) idle += us;
  self.set(key, (self.get(key) ?? 0) + us);
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const k = name(nodes.get(at));
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + us);
  }
}
const busy = sum - idle;
console.log(`${file}: ${(sum / 1e6).toFixed(2)} s sampled, ${(idle / 1e6).toFixed(2)} s idle; % below are of the ${(busy / 1e6).toFixed(2)} s busy`);
const print = (title, map) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].filter(([k]) => !k.startsWith("(idle")).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((us / busy) * 100).toFixed(1).padStart(6)}%  ${k}`);
  }
};
print("self time", self);
print("inclusive time", total);
