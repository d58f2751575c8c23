/**
 * CLI cold start: `mos call Sys.GetInfo` as a fresh process over HTTP and over MQTT (mosquitto with
 * `set_tcp_nodelay true`), against `node -e 0` (the floor of any Node CLI) and, for reference, `curl`
 * posting the same frame and `mosquitto_rr` on the same broker.
 */
import { errorMessage } from "../../src/errors.js";
import { MOS_JS, startAgent } from "../lib/children.js";
import { measureCommand } from "../lib/measure.js";
import { startBroker } from "../lib/mosquitto.js";
import { hasCommand } from "../lib/procs.js";
import type { Results } from "../lib/report.js";

export async function runCli(results: Results, quick: boolean): Promise<void> {
  const runs = quick ? 8 : 25;
  const env = { ...process.env, NODE_OPTIONS: "" };
  const node = process.execPath;
  const floor = await measureCommand(node, ["-e", "0"], { runs, env });
  const frame = JSON.stringify({ src: "mos", id: 1_100_000_000_001, method: "Sys.GetInfo" });

  const agent = await startAgent(["--http-listen", "127.0.0.1:0"]);
  try {
    const mos = await measureCommand(node, [MOS_JS, "--port", agent.url, "call", "Sys.GetInfo"], { runs, env });
    if (mos.failures) results.note(`cli: ${mos.failures} of the HTTP mos call runs failed`);
    results.add({ suite: "cli", name: "mos call Sys.GetInfo over HTTP (cold)", value: mos.p50, unit: "ms", baselineName: "node -e 0", baseline: floor.p50, target: "<= 1.6" });
    if (await hasCommand("curl")) {
      const curl = await measureCommand("curl", ["-s", "-X", "POST", "-H", "Content-Type: application/json", "-d", frame, agent.url], { runs, env });
      results.add({ suite: "cli", name: "mos call over HTTP vs curl (reference)", value: mos.p50, unit: "ms", baselineName: "curl POST", baseline: curl.p50 });
    } else results.missing("cli", "curl reference", "curl is not installed");
  } finally {
    await agent.stop();
  }

  let broker;
  try {
    broker = await startBroker();
  } catch (e) {
    results.missing("cli", "MQTT figures", errorMessage(e));
    return;
  }
  const mqttAgent = await startAgent(["--http-listen", "off", "--set", "mqtt.enable=true", "--set", `mqtt.server=127.0.0.1:${broker.port}`]);
  try {
    const port = `mqtt://127.0.0.1:${broker.port}/${mqttAgent.id}`;
    // The device subscribes a moment after it starts: wait for one answer.
    const deadline = Date.now() + 15_000;
    while ((await measureCommand(node, [MOS_JS, "--timeout", "2s", "--port", port, "call", "RPC.Ping"], { runs: 1, warmup: 0, env })).failures && Date.now() < deadline);
    const mos = await measureCommand(node, [MOS_JS, "--port", port, "call", "Sys.GetInfo"], { runs, env });
    if (mos.failures) results.note(`cli: ${mos.failures} of the MQTT mos call runs failed`);
    results.add({ suite: "cli", name: "mos call Sys.GetInfo over MQTT (cold)", value: mos.p50, unit: "ms", baselineName: "node -e 0", baseline: floor.p50, target: "<= 2" });
    if (await hasCommand("mosquitto_rr")) {
      // a new id for each request, as every client makes (the device drops a src and id it saw within 2 s
      // as a duplicate delivery: transport/mqtt-device.ts)
      const reqFrame = (run: number): string => JSON.stringify({ src: `${mqttAgent.id}/rpc-resp/rr`, dst: mqttAgent.id, id: 1_100_000_000_001 + run, method: "Sys.GetInfo" });
      const rr = await measureCommand(
        "mosquitto_rr",
        (run) => ["-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-t", `${mqttAgent.id}/rpc`, "-e", `${mqttAgent.id}/rpc-resp/rr/rpc`, "-m", reqFrame(run), "-W", "5"],
        { runs, env },
      );
      if (rr.failures) results.note(`cli: ${rr.failures} mosquitto_rr runs failed`);
      results.add({ suite: "cli", name: "mos call over MQTT vs mosquitto_rr (reference)", value: mos.p50, unit: "ms", baselineName: "mosquitto_rr", baseline: rr.p50 });
    } else results.missing("cli", "mosquitto_rr reference", "mosquitto_rr (mosquitto-clients) is not installed");
  } finally {
    await mqttAgent.stop();
    await broker.stop();
  }
}
