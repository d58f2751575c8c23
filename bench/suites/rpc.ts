/**
 * RPC round trip (p50, p99; one call at a time) and calls per second (1 and 64 in flight) over HTTP, WS,
 * MQTT (mosquitto) and serial (socat pty), each against the raw transport doing the same round trip with
 * the same library (bench/lib/fixtures.ts). The remos side calls `RPC.Ping` on a `mos device` process.
 * Raw and remos are measured in alternating blocks (measure.ts `...Pair`), never one long run after the other.
 */
import { errorMessage } from "../../src/errors.js";
import { TRANSPORTS, setupTransport } from "../lib/fixtures.js";
import { measureLatencyPair, measureThroughputPair } from "../lib/measure.js";
import type { Results } from "../lib/report.js";

export async function runRpc(results: Results, quick: boolean): Promise<void> {
  const iterations = quick ? 300 : 2000;
  const durationMs = quick ? 1000 : 2500;
  const frame = JSON.stringify({ src: "mos", id: 1_100_000_000_001, method: "RPC.Ping" });
  for (const kind of TRANSPORTS) {
    let fx;
    try {
      fx = await setupTransport(kind);
    } catch (e) {
      results.missing("rpc", `${kind} (all figures)`, errorMessage(e));
      continue;
    }
    try {
      const rpcOp = (): Promise<unknown> => fx.device.call("RPC.Ping");
      const rawOp = (): Promise<unknown> => fx.raw.request(frame);
      // raw and remos alternate in blocks, so drift on the machine falls on both alike
      const [rawLat, rpcLat] = await measureLatencyPair(rawOp, rpcOp, { iterations, warmup: 100 });
      results.add({ suite: "rpc", name: `${kind} round trip p50`, value: rpcLat.p50, unit: "ms", baselineName: `raw ${kind}`, baseline: rawLat.p50, target: "<= 1.25" });
      results.add({ suite: "rpc", name: `${kind} round trip p99`, value: rpcLat.p99, unit: "ms", baselineName: `raw ${kind}`, baseline: rawLat.p99 });
      for (const inFlight of [1, 64]) {
        const [rawTp, rpcTp] = await measureThroughputPair(rawOp, rpcOp, { inFlight, durationMs });
        results.add({ suite: "rpc", name: `${kind} calls/s, ${inFlight} in flight`, value: rpcTp, unit: "calls/s", baselineName: `raw ${kind}`, baseline: rawTp, target: ">= 0.8" });
      }
    } catch (e) {
      results.missing("rpc", `${kind} (rest)`, errorMessage(e));
    } finally {
      await fx.stop();
    }
  }
}
