/**
 * `npm run bench`: every benchmark on loopback, each figure as a ratio against a baseline measured in the
 * same run; writes bench/results/latest.json and docs/BENCHMARKS.md. `BENCH_ONLY=rpc,cli,transfer,fleet`
 * selects suites, `BENCH_QUICK=1` shortens them, `BENCH_FLEET=1000,10000` sets the fleet sizes,
 * `BENCH_TRANSPORTS=ws,mqtt` the transports, `BENCH_WARMUP=N` the untimed transfer rounds on loopback
 * (default 1), `BENCH_CHILD_NODE_ARGS` node flags for the agents and echo servers. A suite
 * that cannot run (missing tool, failed setup) is recorded as missing with the reason; everything the
 * bench starts is stopped on success, failure and SIGINT/SIGTERM (bench/lib/procs.ts).
 */
import { errorMessage } from "../src/errors.js";
import { stopAll } from "./lib/procs.js";
import { Results } from "./lib/report.js";
import { runCli } from "./suites/cli.js";
import { runFleet } from "./suites/fleet.js";
import { runRpc } from "./suites/rpc.js";
import { runTransfer } from "./suites/transfer.js";

const SUITES: Record<string, (r: Results, quick: boolean) => Promise<void>> = { rpc: runRpc, cli: runCli, transfer: runTransfer, fleet: runFleet };

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping everything it started\n`);
    stopAll();
    process.exit(130);
  });
}

async function main(): Promise<void> {
  const only = (process.env.BENCH_ONLY ?? "rpc,cli,transfer,fleet").split(",").map((s) => s.trim()).filter(Boolean);
  const quick = process.env.BENCH_QUICK === "1";
  const results = new Results();
  const t0 = Date.now();
  for (const name of only) {
    const suite = SUITES[name];
    if (!suite) {
      process.stderr.write(`bench: unknown suite "${name}" (known: ${Object.keys(SUITES).join(", ")})\n`);
      continue;
    }
    process.stdout.write(`\n== ${name}${quick ? " (quick)" : ""} ==\n`);
    const s0 = Date.now();
    try {
      await suite(results, quick);
    } catch (e) {
      results.missing(name, "suite", errorMessage(e));
    }
    results.note(`${name}: ${((Date.now() - s0) / 1000).toFixed(0)} s${quick ? " (BENCH_QUICK)" : ""}`);
  }
  results.note(`whole bench: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (only.length === Object.keys(SUITES).length) results.write();
  else results.write(); // a partial run still records what it measured
}

main().then(
  () => {
    stopAll();
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`bench failed: ${errorMessage(e)}\n`);
    stopAll();
    process.exit(1);
  },
);
