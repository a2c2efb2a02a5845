#!/usr/bin/env node
// Writes BENCHMARKS.md and bench/charts/*.svg from a results file of bench/driver.mjs.
//   node bench/report.mjs [RESULTS (bench/.out/results.json)] [MARKDOWN (BENCHMARKS.md)]
// bench/run.sh runs it at the end of every bench (REPORT=0 skips it). Nothing here measures.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { barChart } from "./svg.mjs";
import { mebibytes, micros, percent, thousands, times } from "./format.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const resultsFile = process.argv[2] ?? join(root, "bench/.out/results.json");
const markdownFile = process.argv[3] ?? join(root, "BENCHMARKS.md");
const chartsDirectory = join(root, "bench/charts");
const COLORS = { perCpuS: "#2b6cb0", rps: "#9ac1e8", n: ["#9ac1e8", "#2b6cb0", "#1a365d", "#63b3ed", "#2c5282", "#bee3f8"] };
/** Ratio charts end here; a longer bar (pipelining's) is cut and keeps its printed value. */
const RATIO_AXIS_MAX = 3;
const NAMES = { "ours-bun": "ours (bun)", "ours-deno": "ours (deno)", "bun-serve": "Bun.serve", "deno-serve": "Deno.serve", "node-http": "node:http", floor: "floor" };

const results = JSON.parse(readFileSync(resultsFile, "utf8"));
const name = (id) => NAMES[id] ?? id;
const range = (median, low, high, format) => `${format(median)} (${format(low)}–${format(high)})`;
const goalText = (goal) => Object.entries(goal).map(([key, min]) => `${key === "rps" ? "req/s" : "req/CPU-s"} ≥ ${min}`).join(", ");
/** Goal ratios get three decimals, so a ratio just under its goal does not print as the goal. */
const ratio = (n) => (Number.isFinite(n) ? `${n.toFixed(3)}×` : "-");
const verdict = (met) => (met === null ? "" : met ? "met" : "**missed**");

function machine() {
  const { system: s, config: c } = results;
  const rows = [
    ["date", s.date.replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC")], ["CPU", `${s.cpu}, ${s.cpus} vCPUs`], ["kernel", s.kernel],
    ["versions", `bun ${s.bun}, deno ${s.deno}, node ${s.node}, wrk ${s.wrk}`],
    ["load average at start", s.loadAverage.join(", ")],
    ["run", `${c.quick ? "BENCH_QUICK=1: " : ""}${c.rounds} interleaved rounds × ${c.durationS} s per contender per workload, ` +
      `${c.warmupS} s warm-up, wrk -t${c.wrkThreads} on CPU ${c.clientCpu}, servers on CPU ${c.serverCpu}; whole run ${Math.round(results.wallS)} s`],
  ];
  return ["| | |", "|---|---|", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}

function goalsTable() {
  const lines = ["| workload | ours (bun) / Bun.serve | goal | | ours (deno) / Deno.serve | goal | |", "|---|---|---|---|---|---|---|"];
  for (const w of results.workloads) {
    const cell = (ours) => {
      const g = w.goals.find((x) => x.ours === ours);
      return g ? [`${ratio(g.perCpuS)} req/CPU-s, ${ratio(g.rps)} req/s`, goalText(g.goal), verdict(g.met)] : ["-", "", ""];
    };
    lines.push(`| [${w.id}](#${w.id}) | ${[...cell("ours-bun"), ...cell("ours-deno")].join(" | ")} |`);
  }
  return lines.join("\n");
}

function workloadSection(w) {
  const { method, path, bodyBytes } = w.request;
  const shape = `\`${method} ${path}\`${bodyBytes ? `, ${bodyBytes} B body` : ""}${w.pipeline > 1 ? `, ${w.pipeline} requests per write` : ""}, ${w.connections} connections`;
  const lines = [`### ${w.id}`, "", `${w.title}: ${shape}.`, "",
    "| contender | req/s (low–high) | req/CPU-s (low–high) | server CPU | p50 | p99 | peak RSS |", "|---|---|---|---|---|---|---|"];
  for (const id of w.contenders) {
    const s = w.summary[id];
    const errors = [s.socketErrors, s.non2xx ? `${s.non2xx} non-2xx` : ""].filter(Boolean).join("; ");
    lines.push(`| ${name(id)}${errors ? ` (${errors})` : ""} | ${range(s.rps, s.rpsMin, s.rpsMax, thousands)} | ` +
      `${range(s.perCpuS, s.perCpuSMin, s.perCpuSMax, thousands)} | ${percent(s.cpuShare)} | ${micros(s.p50Us)} | ${micros(s.p99Us)} | ${mebibytes(s.peakRssBytes)} |`);
  }
  lines.push("");
  for (const g of [...w.goals, ...w.floorRatios]) {
    const goal = Object.keys(g.goal).length ? ` (goal ${goalText(g.goal)}): ${verdict(g.met)}` : "";
    lines.push(`- ${name(g.ours)} / ${name(g.than)}: req/CPU-s ${ratio(g.perCpuS)}, req/s ${ratio(g.rps)}${goal}`);
  }
  return lines.join("\n");
}

function ratioChart(ours, than, title) {
  const groups = results.workloads.map((w) => {
    const g = w.goals.find((x) => x.ours === ours && x.than === than);
    return { label: w.id, bars: [{ value: g?.perCpuS ?? NaN, color: COLORS.perCpuS }, { value: g?.rps ?? NaN, color: COLORS.rps }] };
  });
  const goal = results.workloads.flatMap((w) => w.goals).find((g) => g.ours === ours && g.goal.perCpuS)?.goal.perCpuS;
  const markers = [{ value: 1, label: "1×" }, ...(goal ? [{ value: goal, label: `${goal}×` }] : [])];
  return barChart({
    title, groups, markers, format: (v) => `${v.toFixed(2)}×`, axisMax: RATIO_AXIS_MAX,
    series: [{ label: "req/CPU-s ratio", color: COLORS.perCpuS }, { label: "req/s ratio", color: COLORS.rps }],
  });
}

function scalingSection(scaling) {
  const ns = scaling.n.map(String);
  const where = scaling.cpus.shared
    ? `This machine has fewer than 4 CPUs, so servers and wrk (-t${scaling.cpus.clientCount}) share all of them (CPUs ${scaling.cpus.server}): ` +
      "a worker added beyond the first competes with wrk for a core, and the gains understate what separate cores would give."
    : `Servers run on CPUs ${scaling.cpus.server}, wrk (-t${scaling.cpus.clientCount}) on CPUs ${scaling.cpus.client}.`;
  const lines = [
    "Plaintext with " + `${scaling.connections} connections; N workers behind one accept point (node:cluster: the primary accepts ` +
      "and hands each connection to a worker, round-robin, node's default on Linux) against reuseport groups of N listeners " +
      `(each worker its own socket, the kernel picks). ${where} The seed guide's figures (16 vCPUs, wrk -t16 -c1000) for ` +
      "the same comparison: traditional / reuseport 42k / 45k req/s at 1 worker, 85k / 165k at 4, 92k / 320k at 8, 95k / 620k at 16.", "",
    `| contender | model | ${ns.map((n) => `N=${n} req/s (gain)`).join(" | ")} |`, `|---|---|${ns.map(() => "---|").join("")}`,
  ];
  for (const row of scaling.rows) {
    lines.push(`| ${row.label} | ${row.model} | ${ns.map((n) => `${thousands(row.byN[n].rps)} (${times(row.byN[n].gain)})`).join(" | ")} |`);
  }
  return lines.join("\n");
}

function scalingChart(scaling) {
  const ns = scaling.n.map(String);
  return barChart({
    title: "Scaling: req/s at N workers over req/s at N=1, plaintext", format: (v) => `${v.toFixed(2)}×`,
    markers: [{ value: 1, label: "1×" }],
    groups: scaling.rows.map((row) => ({ label: row.short, bars: ns.map((n, i) => ({ value: row.byN[n].gain, color: COLORS.n[i % COLORS.n.length] })) })),
    series: ns.map((n, i) => ({ label: `N=${n}`, color: COLORS.n[i % COLORS.n.length] })),
  });
}

function idleSection() {
  const { fresh, afterLoad } = results.idle;
  const ids = Object.keys(fresh);
  if (ids.length === 0) return null;
  const cell = (v) => (Number.isFinite(v) ? `${v.toFixed(2)} %` : "-");
  return [`CPU with no traffic over ${results.config.idleS} s, % of one core (fresh, and after the plaintext workload's load).`, "",
    "| contender | fresh | after load |", "|---|---|---|", ...ids.map((id) => `| ${name(id)} | ${cell(fresh[id])} | ${cell(afterLoad[id])} |`)].join("\n");
}

function main() {
  mkdirSync(chartsDirectory, { recursive: true });
  const link = (file) => relative(dirname(markdownFile), join(chartsDirectory, file));
  const charts = { "ratios-bun.svg": ratioChart("ours-bun", "bun-serve", "ours (bun) / Bun.serve, per workload"), "ratios-deno.svg": ratioChart("ours-deno", "deno-serve", "ours (deno) / Deno.serve, per workload") };
  if (results.scaling) charts["scaling.svg"] = scalingChart(results.scaling);
  for (const [file, svg] of Object.entries(charts)) writeFileSync(join(chartsDirectory, file), svg);
  const idle = idleSection();
  const sections = [
    "# Benchmarks", "",
    `Generated by \`bench/report.mjs\` from \`bench/.out/results.json\`, the output of one \`npm run bench\`; do not edit it by ` +
      "hand. How it measures: [docs/performance.md](docs/performance.md); every setting: [bench/README.md](bench/README.md). " +
      "req/CPU-s is requests per second of server CPU (all its threads and processes) over the wrk run; ratios are of medians.",
    "", machine(), "",
    ...(results.config.note ? [results.config.note, ""] : []),
    "## Goals", "",
    "Per workload: ours on Bun at least 1.2× `Bun.serve` and ours on Deno at least 1.1× `Deno.serve` in req/CPU-s, " +
      "and not slower in req/s; with pipelining, at least 5× the runtime's server in req/s. Each cell: ratio of req/CPU-s, ratio of req/s.",
    "", goalsTable(), "",
    `![ours (bun) / Bun.serve per workload](${link("ratios-bun.svg")})`, "", `![ours (deno) / Deno.serve per workload](${link("ratios-deno.svg")})`, "",
    "## Workloads", "", ...results.workloads.flatMap((w) => [workloadSection(w), ""]),
    ...(idle ? ["## Idle CPU", "", idle, ""] : []),
    ...(results.scaling ? ["## Scaling: one accept point against a reuseport group", "", scalingSection(results.scaling), "", `![scaling](${link("scaling.svg")})`, ""] : []),
  ];
  writeFileSync(markdownFile, sections.join("\n"));
  console.log(`report: ${relative(root, markdownFile)}, ${Object.keys(charts).map((f) => `bench/charts/${f}`).join(", ")}`);
}

main();
