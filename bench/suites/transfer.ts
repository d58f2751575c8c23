/**
 * Transfers: put and get of 1 MB and 16 MB over each transport with the API's chunk pump (default tuning:
 * big chunks, a window, FS.Sha256 verification), against (a) the raw link moving the same bytes in the
 * same chunk size and window with the same library, and (b) mos's 512-byte stop-and-wait (chunkSize 512,
 * window 1), on plain loopback and with 50 ms of added round trip (bench/lib/delay-proxy.ts; not serial,
 * a pty is not TCP). Stop-and-wait is linear in the size, so it is timed over a prefix (1 MB on loopback,
 * 64 KB at 50 ms) and reported as a rate. Each size is moved once untimed (warm-up), then ROUNDS times,
 * remos and raw alternating, and the medians are compared (a single transfer of 1 MB takes a few ms: mostly
 * noise on a shared machine). Downloads read a file other than the one just uploaded (see moveAside).
 *
 * On loopback the CPU time of every process a transfer keeps busy (this one, the agent or echo server, and
 * the broker over MQTT) is measured too and reported against the raw link's: with C cores a transfer that
 * needs T ms of CPU cannot take less than T/C ms, which bounds the ratio this code can reach here.
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { errorMessage } from "../../src/errors.js";
import { cpuTimeMsOf } from "../lib/cpu.js";
import { TRANSPORTS, setupTransport, type TransportFixture } from "../lib/fixtures.js";
import type { Results } from "../lib/report.js";

const MB = 1024 * 1024;

/** Transfers of each size per figure: remos and the raw link alternate, and the medians are compared. */
const ROUNDS = 5;

/** Untimed rounds of each transfer before the timed ones, on loopback (one at 50 ms RTT). */
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP ?? 1);

/** The CPUs this process may run on (its affinity), for the bound a transfer's CPU time sets. */
const CORES = availableParallelism();

interface Run {
  s: number;
  cpuMs: number | undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timed(op: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await op();
  return (performance.now() - t0) / 1000;
}

/**
 * Seconds `op` took, and the CPU time (ms) processes `pids` spent meanwhile (undefined for no pids, or where
 * /proc cannot tell).
 */
async function timedWithCpu(op: () => Promise<unknown>, pids: number[]): Promise<Run> {
  if (pids.length === 0) return { s: await timed(op), cpuMs: undefined };
  const c0 = cpuTimeMsOf(pids);
  const s = await timed(op);
  const c1 = cpuTimeMsOf(pids);
  return { s, cpuMs: c0 === undefined || c1 === undefined ? undefined : c1 - c0 };
}

/** Move `size` bytes over the raw link in `chunk`-byte messages with `window` in flight. */
async function rawMove(fx: TransportFixture, dir: "put" | "get", size: number, chunk: number, window: number): Promise<void> {
  const body = "A" + "x".repeat(chunk);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < size) {
      const n = Math.min(chunk, size - next);
      next += n;
      const got = await fx.raw.request(dir === "put" ? (n === chunk ? body : "A" + "x".repeat(n)) : `G${n}`);
      if (dir === "get" && got.length !== n + 1) throw new Error(`raw get: ${got.length - 1} bytes, expected ${n}`);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
}

async function oneTransport(results: Results, fx: TransportFixture, label: string, sizes: number[], swBytes: number, is50: boolean): Promise<void> {
  const dev = fx.device;
  const sw = randomBytes(swBytes);
  // Stop-and-wait, as mos: 512-byte chunks, one at a time, no verification.
  const swPut = swBytes / (await timed(() => dev.fs.put("sw.bin", sw, { chunkSize: 512, window: 1, verify: "none", resume: false }))) / MB;
  const swGet = swBytes / (await timed(() => dev.fs.get("sw.bin", { chunkSize: 512, window: 1, verify: "none" }))) / MB;
  for (const size of sizes) {
    const data = randomBytes(size);
    const name = `${size / MB}MB`;
    let tuning = { chunkSize: 0, window: 0 };
    const put = async (): Promise<void> => {
      const r = await dev.fs.put("big.bin", data, { resume: false });
      tuning = { chunkSize: r.chunkSize, window: r.window };
    };
    // The download is of a file the agent did not just write (renamed away from the upload's kept handle),
    // so its checksum is computed from the disk as for any file, not taken from the upload's running digest.
    const moveAside = (): Promise<void> => dev.fs.rename("big.bin", "got.bin");
    // What came back is compared after the timed part (the raw link's check is of its length only).
    let got: Buffer | undefined;
    const get = async (): Promise<void> => {
      got = await dev.fs.get("got.bin", { chunkSize: tuning.chunkSize, window: tuning.window });
    };
    const checkGot = (): void => {
      if (!got?.equals(data)) throw new Error(`${label}: the ${name} file came back different`);
      got = undefined;
    };
    // Untimed rounds first (BENCH_WARMUP, default 1): the first transfer of a size in a process pays for
    // memory the allocator and V8 have not reserved yet (fresh pages), on both paths. Both keep getting
    // faster over several more rounds (V8 optimising; the raw link more than remos, docs/BENCHMARKS.md,
    // eighth round); the default keeps every run measured as the earlier ones were.
    for (let w = 0; w < (is50 ? 1 : WARMUP_ROUNDS); w++) {
      await put();
      await rawMove(fx, "put", size, tuning.chunkSize, tuning.window);
      await moveAside();
      await get();
      checkGot();
      await rawMove(fx, "get", size, tuning.chunkSize, tuning.window);
    }
    // remos and the raw link alternate, ROUNDS times each; the medians are compared
    // CPU is accounted on loopback only (at 50 ms RTT the transfers wait, they do not work)
    const withBroker = (pid: number): number[] => (is50 ? [] : [process.pid, pid, ...(fx.pids.broker ? [fx.pids.broker] : [])]);
    const remosPids = withBroker(fx.pids.agent);
    const rawPids = withBroker(fx.pids.echo);
    const runs = { put: [] as Run[], get: [] as Run[], rawPut: [] as Run[], rawGet: [] as Run[] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.put.push(await timedWithCpu(put, remosPids));
      runs.rawPut.push(await timedWithCpu(() => rawMove(fx, "put", size, tuning.chunkSize, tuning.window), rawPids));
      await moveAside();
      runs.get.push(await timedWithCpu(get, remosPids));
      checkGot();
      runs.rawGet.push(await timedWithCpu(() => rawMove(fx, "get", size, tuning.chunkSize, tuning.window), rawPids));
    }
    const seconds = (rs: Run[]): number => median(rs.map((r) => r.s));
    const cpuMs = (rs: Run[]): number | undefined => (rs.every((r) => r.cpuMs !== undefined) ? median(rs.map((r) => r.cpuMs as number)) : undefined);
    const mbps = (s: number): number => size / s / MB;
    const note = `chunk ${tuning.chunkSize} B, window ${tuning.window}`;
    const who = fx.pids.broker ? "client, far end and broker" : "client and far end";
    for (const [op, mine, raw, swRate] of [
      ["put", runs.put, runs.rawPut, swPut],
      ["get", runs.get, runs.rawGet, swGet],
    ] as const) {
      const [v, rawRate] = [mbps(seconds(mine)), mbps(seconds(raw))];
      results.add({ suite: "transfer", name: `${label} ${op} ${name} vs raw link`, value: v, unit: "MB/s", baselineName: "raw link", baseline: rawRate, target: is50 ? undefined : ">= 0.5", note });
      results.add({ suite: "transfer", name: `${label} ${op} ${name} vs 512-byte stop-and-wait`, value: v, unit: "MB/s", baselineName: "512 B stop-and-wait", baseline: swRate, target: is50 ? ">= 20" : undefined, note });
      const [cpu, rawCpu] = [cpuMs(mine), cpuMs(raw)];
      if (cpu === undefined || rawCpu === undefined) continue;
      results.add({ suite: "transfer", name: `${label} ${op} ${name}: CPU per transfer (${who})`, value: cpu, unit: "ms", baselineName: "raw link", baseline: rawCpu, note });
      // with C cores, T ms of CPU take at least T/C ms: the best rate this CPU cost allows, against the raw link's
      const best = (size / MB / (cpu / 1000 / CORES)) / rawRate;
      results.note(`transfer ${label} ${op} ${name}: ${cpu.toFixed(0)} ms of CPU per transfer on ${CORES} cores allows at most ${best.toFixed(2)}x the raw link's rate (measured ${(v / rawRate).toFixed(2)}x)`);
    }
  }
}

export async function runTransfer(results: Results, quick: boolean): Promise<void> {
  const sizes = quick ? [1 * MB] : [1 * MB, 16 * MB];
  for (const rtt of [0, 50]) {
    for (const kind of TRANSPORTS) {
      const label = `${kind}${rtt ? ` @${rtt} ms RTT` : ""}`;
      if (kind === "serial" && rtt) {
        results.note("transfer: no 50 ms figure over serial (a pty cannot be delayed by a TCP proxy)");
        continue;
      }
      let fx: TransportFixture | undefined;
      try {
        fx = await setupTransport(kind, { rttMs: rtt });
        // Serial at 16 MB would take minutes through a pty: 1 MB there.
        const s = kind === "serial" ? [1 * MB] : sizes;
        await oneTransport(results, fx, label, s, rtt ? (quick ? 32 * 1024 : 64 * 1024) : quick ? 256 * 1024 : 1 * MB, rtt > 0);
      } catch (e) {
        results.missing("transfer", label, errorMessage(e));
      } finally {
        await fx?.stop();
      }
    }
  }
}
