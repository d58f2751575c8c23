/**
 * `npm run soak`: 1,000 devices (`mos device --count`, MQTT through mosquitto) answering a steady call rate
 * for 10 minutes (`--minutes N` or SOAK_MINUTES; `--devices N` / SOAK_DEVICES; `--rate R` calls/s /
 * SOAK_RATE). Every call is matched by id with a timeout; the run reports lost responses (must be 0) and
 * the fleet process's RSS per minute (must stay flat), and exits 1 when answers were lost or RSS grew by
 * more than 20 % between the second minute and the end.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { errorMessage } from "../src/errors.js";
import { startAgent } from "./lib/children.js";
import { startBroker } from "./lib/mosquitto.js";
import { stopAll } from "./lib/procs.js";

function arg(name: string, env: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : process.env[env];
  return v === undefined ? def : Number(v);
}

const minutes = arg("minutes", "SOAK_MINUTES", 10);
const devices = arg("devices", "SOAK_DEVICES", 1000);
const rate = arg("rate", "SOAK_RATE", 200);

function rssMiB(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    stopAll();
    process.exit(130);
  });
}

async function main(): Promise<number> {
  const broker = await startBroker();
  const fleet = await startAgent(
    ["--count", String(devices), "--id", "soak", "--http-listen", "off", "--set", "mqtt.enable=true", "--set", `mqtt.server=127.0.0.1:${broker.port}`],
    { ulimit: true, count: devices, timeoutMs: 60_000 + devices * 50 },
  );
  const ids = Array.from({ length: devices }, (_, i) => `soak_${String(i + 1).padStart(6, "0")}`);
  const { connectAsync } = await import("mqtt");
  const caller = await connectAsync(broker.url, { clientId: "soak-caller", reconnectPeriod: 0 }, false);
  (caller.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  const pending = new Map<number, NodeJS.Timeout>();
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let lost = 0;
  caller.on("message", (_t, payload) => {
    try {
      const f = JSON.parse(payload.toString()) as { id: number; error?: unknown };
      const t = pending.get(f.id);
      if (!t) return;
      clearTimeout(t);
      pending.delete(f.id);
      if (f.error === undefined) answered++;
      else errors++;
    } catch {
      // counted as lost by its timeout
    }
  });
  await caller.subscribeAsync("soak-caller/rpc", { qos: 1 });
  // Wait for every device to answer once (they subscribe as they connect).
  process.stdout.write(`soak: ${devices} devices, ${rate} calls/s for ${minutes} min\n`);
  let id = 1_100_000_000_000;
  const call = (dev: string): void => {
    const reqId = ++id;
    sent++;
    pending.set(
      reqId,
      setTimeout(() => {
        pending.delete(reqId);
        lost++;
      }, 10_000),
    );
    caller.publish(`${dev}/rpc`, JSON.stringify({ id: reqId, src: "soak-caller", dst: dev, method: "Sys.GetInfo" }), { qos: 1 });
  };
  const warm = performance.now();
  while (performance.now() - warm < 30_000) {
    ids.forEach(call);
    await new Promise((r) => setTimeout(r, 3000));
    if (answered >= devices) break;
  }
  await new Promise((r) => setTimeout(r, 1000));
  process.stdout.write(`soak: warm-up: ${answered} answers from ${devices} devices\n`);
  sent = answered = errors = lost = 0;
  for (const t of pending.values()) clearTimeout(t);
  pending.clear();

  const rss: number[] = [rssMiB(fleet.proc.pid)];
  const t0 = performance.now();
  let next = 0;
  const tick = 100;
  const perTick = (rate * tick) / 1000;
  let credit = 0;
  let lastMinute = 0;
  while (performance.now() - t0 < minutes * 60_000) {
    credit += perTick;
    while (credit >= 1) {
      call(ids[next++ % devices]);
      credit--;
    }
    await new Promise((r) => setTimeout(r, tick));
    const m = Math.floor((performance.now() - t0) / 60_000);
    if (m > lastMinute) {
      lastMinute = m;
      rss.push(rssMiB(fleet.proc.pid));
      process.stdout.write(`soak: minute ${m}: sent ${sent}, answered ${answered}, errors ${errors}, lost ${lost}, fleet RSS ${rss[rss.length - 1].toFixed(0)} MiB\n`);
    }
  }
  const drain = performance.now();
  while (pending.size && performance.now() - drain < 12_000) await new Promise((r) => setTimeout(r, 100));
  rss.push(rssMiB(fleet.proc.pid));
  const base = rss.length > 2 ? rss[1] : rss[0];
  const growth = (rss[rss.length - 1] - base) / base;
  process.stdout.write(
    `soak: done: ${sent} calls, ${answered} answered, ${errors} errors, ${lost} lost; fleet RSS ${rss.map((r) => r.toFixed(0)).join(" → ")} MiB (growth ${(growth * 100).toFixed(1)} % from ${rss.length > 2 ? "minute 1" : "start"})\n`,
  );
  await caller.endAsync();
  await fleet.stop();
  await broker.stop();
  return lost === 0 && errors === 0 && answered === sent && growth <= 0.2 ? 0 : 1;
}

main().then(
  (code) => {
    stopAll();
    process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`soak failed: ${errorMessage(e)}\n`);
    stopAll();
    process.exit(1);
  },
);
