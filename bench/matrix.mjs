// The workload matrix: per workload, fresh servers for its contenders (pinned to SERVER_CPU), one
// checked answer each, a warm-up, then ROUNDS interleaved rounds of wrk (pinned to CLIENT_CPU),
// the contenders' order reversed every other round.
import { checkWorkload } from "./check.mjs";
import { evaluate, measure, summarize } from "./measure.mjs";
import { startServer, stopServer, treePeakRssBytes } from "./processes.mjs";
import { scriptEnv, wrk } from "./wrk.mjs";
import { micros, percent, thousands } from "./format.mjs";

function table(rows) {
  const header = `${"contender".padEnd(26)}${"req/s".padStart(10)}${"srv CPU".padStart(9)}${"req/CPU-s".padStart(11)}${"p50".padStart(10)}${"p99".padStart(10)}  errors`;
  const lines = [header, "-".repeat(header.length + 6)];
  for (const r of rows) {
    const errors = [r.socketErrors, r.non2xx ? `non2xx ${r.non2xx}` : ""].filter(Boolean).join("; ");
    lines.push(`${r.label.padEnd(26)}${thousands(r.rps).padStart(10)}${percent(r.cpuShare).padStart(9)}${thousands(r.perCpuS).padStart(11)}${micros(r.p50Us).padStart(10)}${micros(r.p99Us).padStart(10)}  ${errors}`);
  }
  return lines.join("\n");
}

/** The ids a workload runs: its own contenders that ONLY keeps, plus EXTRA ones where ours runs. */
export function workloadContenders(workload, all, config) {
  const ids = workload.contenders.filter((id) => all[id]);
  const extras = ids.includes("ours-bun") ? Object.keys(all).filter((id) => all[id].extra) : [];
  return [...ids, ...extras].filter((id) => !config.only || config.only.includes(id));
}

/** Starts the workload's servers side by side and checks each one's answer; on a failure stops them all. */
async function startChecked(workload, ids, all, ctx) {
  const starts = await Promise.allSettled(ids.map((id) => startServer(id, all[id].argv, { cpus: ctx.config.serverCpu, cwd: ctx.root })));
  const servers = starts.filter((s) => s.status === "fulfilled").map((s) => s.value);
  try {
    const failed = starts.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const heads = {};
    for (const server of servers) heads[server.id] = await checkWorkload(server, workload);
    console.log(`\n${workload.id}: ${workload.request.method} ${workload.request.path} answered correctly by ${ids.join(", ")}`);
    return { servers, heads };
  } catch (error) {
    await Promise.all(servers.map(stopServer));
    throw error;
  }
}

/** Runs one workload; `afterRounds(servers)` runs before they stop (the idle-after-load reading). */
export async function runWorkload(workload, all, ctx, afterRounds) {
  const { config } = ctx;
  const ids = workloadContenders(workload, all, config);
  if (ids.length === 0) return null;
  const connections = workload.connections ?? config.connections;
  const wrkOptions = {
    root: ctx.root, path: workload.request.path, connections, threads: config.wrkThreads, cpus: config.clientCpu,
    env: scriptEnv(workload.request, ctx.bodyFiles[workload.id]),
  };
  const { servers, heads } = await startChecked(workload, ids, all, ctx);
  const rounds = [];
  let peakRss = {};
  try {
    if (config.warmupS > 0) for (const s of servers) await wrk({ ...wrkOptions, port: s.port, seconds: config.warmupS });
    for (let round = 1; round <= config.rounds; round++) {
      const order = round % 2 ? servers : [...servers].reverse();
      const rows = [];
      for (const s of order) rows.push({ id: s.id, label: all[s.id].label, ...(await measure(s, { ...wrkOptions, seconds: config.durationS })) });
      rounds.push(rows);
      console.log(`\n## ${workload.id} round ${round}/${config.rounds}  (c=${connections}, ${config.durationS}s each)\n${table(rows)}`);
    }
    if (afterRounds) await afterRounds(servers);
  } finally {
    peakRss = Object.fromEntries(servers.map((s) => [s.id, treePeakRssBytes(s.pid)]));
    await Promise.all(servers.map(stopServer));
  }
  const summary = Object.fromEntries(ids.map((id) => [id, {
    label: all[id].label, ...summarize(rounds.map((rows) => rows.find((r) => r.id === id))), peakRssBytes: peakRss[id],
  }]));
  console.log(`\n## ${workload.id}: medians of ${config.rounds} rounds\n${table(ids.map((id) => summary[id]))}`);
  return {
    id: workload.id, title: workload.title, connections, pipeline: workload.request.pipeline ?? 1,
    request: { method: workload.request.method, path: workload.request.path, bodyBytes: workload.request.body?.length ?? 0 },
    heads, contenders: ids, summary,
    goals: evaluate(workload.goals, summary), floorRatios: evaluate(workload.floorRatios, summary),
    rounds: rounds.map((rows, i) => ({ round: i + 1, runs: rows })),
  };
}
