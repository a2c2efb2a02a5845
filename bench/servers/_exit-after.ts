// BENCH_EXIT_AFTER_S=N: stop the contender and exit normally after N seconds, so that
// --cpu-prof (which writes on exit) gets its profile.
import process from "node:process";

export function exitAfterIfAsked(stop: () => unknown): void {
  const seconds = Number(process.env.BENCH_EXIT_AFTER_S ?? 0);
  if (seconds <= 0) return;
  setTimeout(async () => {
    await stop();
    process.exit(0);
  }, seconds * 1000);
}
