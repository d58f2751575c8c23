/**
 * Fleet: 1,000 and 10,000 simulated devices (`mos device --count N`, one process) connected to mosquitto
 * with mutual TLS: time to connect all (counted by the broker's `$SYS/broker/clients/connected`), memory
 * per device (RSS of the fleet process / N), and one `Sys.GetInfo` to every device over one caller
 * connection with a window of requests in flight (bench/lib/fleet-caller.ts): completion time and answers.
 * Baseline: N bare MQTT.js clients with the same TLS answering the same frames (bench/lib/raw-fleet.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { MqttClient } from "mqtt";
import { errorMessage } from "../../src/errors.js";
import { issueCert, makeCa } from "../../test/helpers/certs.js";
import { ROOT, type Results } from "../lib/report.js";
import { type Announced, spawnAnnounced, startAgent } from "../lib/children.js";
import { callEveryDevice } from "../lib/fleet-caller.js";
import { startBroker, type BenchBroker } from "../lib/mosquitto.js";

function rssMiB(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * The broker's last reported count of connected clients, per caller: mosquitto publishes
 * `$SYS/broker/clients/connected` only when it changes, so a count reached before a wait starts must be
 * remembered, not waited for (that wait would never end).
 */
const lastConnected = new WeakMap<MqttClient, number>();

function trackConnected(client: MqttClient): void {
  client.on("message", (topic: string, payload: Buffer) => {
    if (topic === "$SYS/broker/clients/connected") lastConnected.set(client, Number(payload.toString()));
  });
}

/** Resolves when the broker reports at least `want` connected clients. */
function connectedAtLeast(client: MqttClient, want: number, timeoutMs: number): Promise<number> {
  return connectedWhere(client, (c) => c >= want, `${want}`, timeoutMs);
}

/** Resolves when the broker's count of connected clients (the last one reported, or the next) satisfies `ok`. */
function connectedWhere(client: MqttClient, ok: (connected: number) => boolean, what: string, timeoutMs: number): Promise<number> {
  const now = lastConnected.get(client);
  if (now !== undefined && ok(now)) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("message", on);
      reject(new Error(`only ${lastConnected.get(client) ?? 0} of ${what} clients connected after ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (topic: string): void => {
      if (topic !== "$SYS/broker/clients/connected") return;
      const last = lastConnected.get(client) ?? 0;
      if (ok(last)) {
        clearTimeout(timer);
        client.off("message", on);
        resolve(last);
      }
    };
    client.on("message", on);
  });
}

export async function runFleet(results: Results, quick: boolean): Promise<void> {
  const sizes = (process.env.BENCH_FLEET ?? (quick ? "1000" : "1000,10000")).split(",").map(Number);
  const ca = await makeCa("remos bench CA");
  const server = await issueCert(ca, { cn: "localhost", usage: "server" });
  const devCert = await issueCert(ca, { cn: "fleet-device", usage: "client" });
  const callerCert = await issueCert(ca, { cn: "bench-caller", usage: "client" });
  const pemDir = mkdtempSync(join(tmpdir(), "remos-bench-pem-"));
  const files = { ca: join(pemDir, "ca.pem"), cert: join(pemDir, "dev.crt"), key: join(pemDir, "dev.key") };
  writeFileSync(files.ca, ca.certPem);
  writeFileSync(files.cert, devCert.certPem);
  writeFileSync(files.key, devCert.keyPem, { mode: 0o600 });
  let broker: BenchBroker | undefined;
  try {
    broker = await startBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem, requireCertificate: true } });
    const { connectAsync } = await import("mqtt");
    const caller = await connectAsync(broker.url, { clientId: "bench-caller", reconnectPeriod: 0, ca: ca.certPem, cert: callerCert.certPem, key: callerCert.keyPem, servername: "localhost" }, false);
    (caller.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    trackConnected(caller); // before the subscription: the retained count arrives with it
    await caller.subscribeAsync("$SYS/broker/clients/connected", { qos: 0 });
    try {
      for (const n of sizes) await oneSize(results, broker, caller, n, files);
    } finally {
      await caller.endAsync();
    }
  } finally {
    await broker?.stop();
    rmSync(pemDir, { recursive: true, force: true });
  }
}

async function oneSize(results: Results, broker: BenchBroker, caller: MqttClient, n: number, files: { ca: string; cert: string; key: string }): Promise<void> {
  const label = `${n} devices`;
  const connectTimeout = 60_000 + n * 30;
  const callOpts = { method: "Sys.GetInfo", window: 256, timeoutMs: 10_000 };
  // Baseline: bare MQTT.js clients.
  let raw: { connectS: number; rssPer: number; call: Awaited<ReturnType<typeof callEveryDevice>> } | undefined;
  let rawProc: Announced | undefined;
  try {
    const t0 = performance.now();
    rawProc = await spawnAnnounced(
      "sh",
      ["-c", `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`, process.execPath, "--import", "tsx", join(ROOT, "bench", "lib", "raw-fleet.ts"), String(broker.port), String(n), "raw", files.ca, files.cert, files.key],
      { timeoutMs: connectTimeout },
    );
    await connectedAtLeast(caller, n + 1, connectTimeout);
    const connectS = (performance.now() - t0) / 1000;
    const rssPer = (rssMiB(rawProc.proc.pid) * 1024) / n;
    const ids = Array.from({ length: n }, (_, i) => `raw_${String(i + 1).padStart(6, "0")}`);
    const call = await callEveryDevice(caller, "bench-caller-raw", ids, callOpts);
    raw = { connectS, rssPer, call };
  } catch (e) {
    results.missing("fleet", `${label} raw baseline`, errorMessage(e));
  } finally {
    await rawProc?.stop();
  }
  // Wait for the broker to see the baseline clients gone.
  await connectedWhere(caller, (c) => c <= 1, "only the caller", 30_000).catch(() => undefined);

  const dir = mkdtempSync(join(tmpdir(), "remos-bench-fleet-"));
  try {
    for (let i = 1; i <= n; i++) {
      const fs = join(dir, `fl_${String(i).padStart(6, "0")}`, "slots", "0", "fs");
      mkdirSync(fs, { recursive: true });
      writeFileSync(join(fs, "ca.pem"), readFileSync(files.ca));
      writeFileSync(join(fs, "dev.crt"), readFileSync(files.cert));
      writeFileSync(join(fs, "dev.key"), readFileSync(files.key), { mode: 0o600 });
    }
    const t0 = performance.now();
    const fleet = await startAgent(
      [
        "--count", String(n), "--id", "fl", "--http-listen", "off",
        "--set", "mqtt.enable=true", "--set", `mqtt.server=localhost:${broker.port}`,
        "--set", "mqtt.ssl_ca_cert=ca.pem", "--set", "mqtt.ssl_cert=dev.crt", "--set", "mqtt.ssl_key=dev.key",
      ],
      { ulimit: true, count: n, timeoutMs: connectTimeout, dir },
    );
    try {
      const startedS = (performance.now() - t0) / 1000;
      await connectedAtLeast(caller, n + 1, connectTimeout);
      const connectS = (performance.now() - t0) / 1000;
      const rssPer = (rssMiB(fleet.proc.pid) * 1024) / n;
      const ids = Array.from({ length: n }, (_, i) => `fl_${String(i + 1).padStart(6, "0")}`);
      const call = await callEveryDevice(caller, "bench-caller", ids, callOpts);
      results.note(`fleet ${label}: agents started in ${startedS.toFixed(1)} s, all connected at ${connectS.toFixed(1)} s; call to all: ${call.answered} answers, ${call.errors} errors, ${call.lost} lost in ${(call.ms / 1000).toFixed(2)} s (window ${callOpts.window})`);
      if (raw) {
        results.add({ suite: "fleet", name: `${label}: time to connect all`, value: connectS, unit: "s", baselineName: "bare MQTT.js clients", baseline: raw.connectS });
        results.add({ suite: "fleet", name: `${label}: memory per device`, value: rssPer, unit: "KiB", baselineName: "bare MQTT.js client", baseline: raw.rssPer });
        results.add({ suite: "fleet", name: `${label}: call to all, completion`, value: call.ms / 1000, unit: "s", baselineName: "bare clients", baseline: raw.call.ms / 1000, note: `${call.answered}/${n} answered` });
        results.add({ suite: "fleet", name: `${label}: call to all, answers`, value: call.answered, unit: "answers", baselineName: "devices", baseline: n, target: ">= 1" });
      }
      results.add({ suite: "fleet", name: `${label}: call to all within 10 s`, value: call.ms / 1000, unit: "s", baselineName: "target", baseline: 10, target: "< 1" });
    } finally {
      await fleet.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await connectedWhere(caller, (c) => c <= 1, "only the caller", 30_000).catch(() => undefined);
  }
}
