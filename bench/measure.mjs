// One measured wrk run against a started server, with the server's CPU time (its whole process
// tree) over exactly that run, and the medians and spread of a contender's runs.
import { treeCpuSeconds } from "./processes.mjs";
import { wrk } from "./wrk.mjs";

/** wrkOptions: what wrk() takes, less the port. */
export async function measure(server, wrkOptions) {
  const cpuBefore = treeCpuSeconds(server.pid);
  const t0 = process.hrtime.bigint();
  const report = await wrk({ ...wrkOptions, port: server.port });
  const cpuS = treeCpuSeconds(server.pid) - cpuBefore;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  // Requests per CPU-second: the inverse of the server's CPU cost per request, all threads and processes.
  return { ...report, cpuS, wallS, cpuShare: cpuS / wallS, perCpuS: cpuS > 0 ? report.requests / cpuS : NaN };
}

export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const finite = (values) => values.filter(Number.isFinite);
const lowest = (values) => (finite(values).length ? Math.min(...finite(values)) : NaN);
const highest = (values) => (finite(values).length ? Math.max(...finite(values)) : NaN);

/** Medians over a contender's rounds, with the lowest and highest req/s and req/CPU-s. */
export function summarize(runs) {
  const of = (key) => runs.map((run) => run[key]);
  return {
    rounds: runs.length,
    rps: median(of("rps")), rpsMin: lowest(of("rps")), rpsMax: highest(of("rps")),
    perCpuS: median(of("perCpuS")), perCpuSMin: lowest(of("perCpuS")), perCpuSMax: highest(of("perCpuS")),
    cpuShare: median(of("cpuShare")),
    p50Us: median(of("p50Us")), p99Us: median(of("p99Us")),
    socketErrors: runs.map((run) => run.socketErrors).filter(Boolean).join(" | ") || null,
    non2xx: runs.reduce((sum, run) => sum + run.non2xx, 0),
  };
}

/**
 * Goals of a workload against its summary (id → summary): each { ours, than, perCpuS?, rps? } becomes
 * { ours, than, perCpuS, rps (the ratios of medians), goal, met }; one whose contenders did not run is left out.
 */
export function evaluate(goals, summary) {
  return (goals ?? []).flatMap((goal) => {
    const a = summary[goal.ours], b = summary[goal.than];
    if (!a || !b) return [];
    const ratios = { perCpuS: a.perCpuS / b.perCpuS, rps: a.rps / b.rps };
    const thresholds = Object.fromEntries(["perCpuS", "rps"].filter((key) => goal[key] !== undefined).map((key) => [key, goal[key]]));
    const met = Object.keys(thresholds).length === 0 ? null : Object.entries(thresholds).every(([key, min]) => ratios[key] >= min);
    return [{ ours: goal.ours, than: goal.than, ...ratios, goal: thresholds, met }];
  });
}
