// The seed guide's table, measured: one accept point feeding N workers (node:cluster) against
// reuseport groups of N (ours on Bun and on Deno, Bun.serve with reusePort in N processes), plaintext,
// req/s and the gain over N=1. Servers run on the scaling CPU set, wrk on the client set (disjoint
// from 4 CPUs up; on a smaller machine both share every CPU).
import { checkWorkload } from "./check.mjs";
import { measure, summarize } from "./measure.mjs";
import { startServer, stopServer } from "./processes.mjs";
import { scriptEnv, wrk } from "./wrk.mjs";
import { scalingContenders } from "./config.mjs";
import { thousands, times } from "./format.mjs";

async function runAtN(n, plaintext, ctx) {
  const { config } = ctx;
  const cpus = config.scalingCpus;
  const wrkOptions = {
    root: ctx.root, path: plaintext.request.path, connections: config.scalingConnections,
    threads: cpus.clientCount, cpus: cpus.client, env: scriptEnv(plaintext.request),
  };
  const specs = scalingContenders(ctx.root, n).filter((c) => !config.only || config.only.includes(c.id === "node-cluster" ? "node-http" : c.id));
  const servers = [];
  const runs = Object.fromEntries(specs.map((c) => [c.id, []]));
  try {
    for (const c of specs) servers.push(await startServer(c.id, c.argv, { cpus: cpus.server, env: c.env, cwd: ctx.root }));
    for (const s of servers) await checkWorkload({ ...s, id: `${s.id} (N=${n})` }, plaintext);
    if (config.warmupS > 0) for (const s of servers) await wrk({ ...wrkOptions, port: s.port, seconds: config.warmupS });
    for (let round = 1; round <= config.rounds; round++) {
      for (const s of round % 2 ? servers : [...servers].reverse()) runs[s.id].push(await measure(s, { ...wrkOptions, seconds: config.durationS }));
    }
  } finally {
    await Promise.all(servers.map(stopServer));
  }
  return Object.fromEntries(specs.map((c) => [c.id, summarize(runs[c.id])]));
}

export async function runScaling(plaintext, ctx) {
  const { config } = ctx;
  const cpus = config.scalingCpus;
  console.log(`\n## scaling: plaintext, c=${config.scalingConnections}, servers on CPUs ${cpus.server}, wrk -t${cpus.clientCount} on CPUs ${cpus.client}${cpus.shared ? " (shared)" : ""}`);
  const byN = {};
  for (const n of config.scalingCpus.n) {
    byN[n] = await runAtN(n, plaintext, ctx);
    console.log(`N=${n}: ${Object.entries(byN[n]).map(([id, s]) => `${id} ${thousands(s.rps)} req/s`).join(", ")}`);
  }
  const first = config.scalingCpus.n[0];
  const rows = scalingContenders(ctx.root, first).filter((c) => byN[first][c.id]).map((c) => ({
    id: c.id, label: c.label, short: c.short, model: c.model,
    byN: Object.fromEntries(Object.entries(byN).map(([n, results]) => [n, { ...results[c.id], gain: results[c.id].rps / byN[first][c.id].rps }])),
  }));
  for (const row of rows) console.log(`${row.label.padEnd(40)} ${Object.entries(row.byN).map(([n, r]) => `N=${n} ${times(r.gain)}`).join("  ")}`);
  return { connections: config.scalingConnections, cpus, n: config.scalingCpus.n, rows };
}
