/**
 * Measurement primitives for the benchmarks: latency percentiles of a round trip, throughput with N
 * operations in flight, wall time of a command run many times. Figures are always reported as ratios
 * against a baseline measured in the same run (bench/lib/report.ts).
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function stats(samples: number[]): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    min: s[0] ?? NaN,
  };
}

/** Round-trip latency (ms) of `op`, one at a time, after a warm-up. */
export async function measureLatency(op: () => Promise<unknown>, o: { warmup?: number; iterations?: number } = {}): Promise<LatencyStats> {
  for (let i = 0; i < (o.warmup ?? 200); i++) await op();
  const samples: number[] = [];
  for (let i = 0; i < (o.iterations ?? 2000); i++) {
    const t0 = performance.now();
    await op();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

/** `inFlight` loops running `op` for `ms`: how many completed, and the time until the last one ended. */
async function runFor(op: () => Promise<unknown>, inFlight: number, ms: number): Promise<{ done: number; ms: number }> {
  const until = performance.now() + ms;
  let done = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      await op();
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  return { done, ms: performance.now() - t0 };
}

/**
 * Latency of two operations measured in alternating blocks (a, b, a, b...), so drift on a shared machine
 * (CPU frequency, other processes) falls on both alike; percentiles over all samples of each.
 */
export async function measureLatencyPair(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  o: { warmup?: number; iterations?: number; rounds?: number } = {},
): Promise<[LatencyStats, LatencyStats]> {
  const rounds = o.rounds ?? 8;
  const per = Math.ceil((o.iterations ?? 2000) / rounds);
  for (const op of [a, b]) for (let i = 0; i < (o.warmup ?? 200); i++) await op();
  const sa: number[] = [];
  const sb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [op, out] of [[a, sa], [b, sb]] as const) {
      for (let i = 0; i < per; i++) {
        const t0 = performance.now();
        await op();
        out.push(performance.now() - t0);
      }
    }
  }
  return [stats(sa), stats(sb)];
}

/** Throughput (ops/s) of two operations in alternating time slices, as measureLatencyPair. */
export async function measureThroughputPair(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  o: { inFlight: number; durationMs?: number; rounds?: number },
): Promise<[number, number]> {
  const rounds = o.rounds ?? 5;
  const slice = (o.durationMs ?? 2000) / rounds;
  const tally = [
    { done: 0, ms: 0 },
    { done: 0, ms: 0 },
  ];
  const run = (op: () => Promise<unknown>, ms: number): Promise<{ done: number; ms: number }> => runFor(op, o.inFlight, ms);
  await run(a, 200);
  await run(b, 200);
  for (let r = 0; r < rounds; r++) {
    for (const [i, op] of [a, b].entries()) {
      const x = await run(op, slice);
      tally[i].done += x.done;
      tally[i].ms += x.ms;
    }
  }
  return [tally[0].done / (tally[0].ms / 1000), tally[1].done / (tally[1].ms / 1000)];
}

/** Operations per second with `inFlight` concurrent loops for `durationMs`. */
export async function measureThroughput(op: () => Promise<unknown>, o: { inFlight: number; durationMs?: number; warmupMs?: number }): Promise<number> {
  await runFor(op, o.inFlight, o.warmupMs ?? 300);
  const r = await runFor(op, o.inFlight, o.durationMs ?? 2000);
  return r.done / (r.ms / 1000);
}

/**
 * Wall time (ms) of a command run `runs` times (after `warmup` runs): the median and p90 of the runs that
 * exited 0 (a failed run is counted in `failures`, its time left out). `args` may differ per run (e.g. a
 * request id, as a real client makes a new one for each request).
 */
export async function measureCommand(
  cmd: string,
  args: string[] | ((run: number) => string[]),
  o: { runs?: number; warmup?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<LatencyStats & { failures: number }> {
  let failures = 0;
  let run = 0;
  const once = (): Promise<number> =>
    new Promise((resolve) => {
      const argv = typeof args === "function" ? args(run++) : args;
      const t0 = performance.now();
      const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"], env: o.env ?? process.env });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.on("close", (code) => {
        if (code !== 0) {
          failures++;
          if (failures === 1) process.stderr.write(`bench: ${cmd} ${argv.join(" ")} exited ${code}: ${err.slice(0, 300)}\n`);
          return resolve(NaN);
        }
        resolve(performance.now() - t0);
      });
      child.on("error", () => {
        failures++;
        resolve(NaN);
      });
    });
  for (let i = 0; i < (o.warmup ?? 3); i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < (o.runs ?? 20); i++) samples.push(await once());
  return { ...stats(samples.filter((x) => !Number.isNaN(x))), failures };
}
