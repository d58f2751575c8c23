/**
 * `mos demo`: the secure-cloud walkthrough end to end, in one process tree, on embedded defaults:
 *   1. a temp dir with a fresh local CA and the embedded mutual-TLS broker on a loopback port;
 *   2. a fresh simulated device reachable only over a serial link (a socat pty pair when socat is
 *      installed, else an in-process serial pair with the same framing);
 *   3. `iot-setup` over serial: key made on the device, certificate from the CA, mqtt.* config, reboot;
 *   4. wait for the device to come back and connect to the broker over mqtts with its certificate;
 *   5. `mos ls` and `mos call Sys.GetInfo` over mqtts as the operator (run through `runMos`, the real CLI);
 *   6. everything started is stopped and the temp dir removed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Device, connect } from "../api/device.js";
import { TimeoutError, TransportError } from "../errors.js";
import { prepareBrokerDir } from "./broker-dir.js";
import { type RunningBroker, startBroker } from "./broker.js";
import { iotSetup } from "./provision/iot-setup.js";

export interface MosRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface DemoOptions {
  /** Print one line for the user. */
  out: (line: string) => void;
  /** Run the mos CLI with these arguments (the demo shows its output). */
  runMos: (args: string[]) => Promise<MosRun>;
  /** "socat" | "in-process" | "auto" (default: socat when installed). */
  serial?: "socat" | "in-process" | "auto";
  /** Step timeout in ms (default 20000). */
  timeoutMs?: number;
}

function findSocat(): string | undefined {
  for (const p of ["/usr/bin/socat", "/usr/local/bin/socat", "/opt/homebrew/bin/socat", "/bin/socat"]) if (existsSync(p)) return p;
  return undefined;
}

async function waitFor(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new TimeoutError(`${what}: not within ${ms} ms`, ms);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A socat pty pair: the device opens `a`, the CLI `b`. */
async function socatPair(socat: string, dir: string, ms: number): Promise<{ a: string; b: string; proc: ChildProcess }> {
  const a = join(dir, "ttyDEVICE");
  const b = join(dir, "ttyHOST");
  const proc = spawn(socat, [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: "ignore" });
  try {
    await waitFor("socat pty pair", ms, () => existsSync(a) && existsSync(b));
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }
  return { a, b, proc };
}

function indent(text: string): string {
  return text.trimEnd().split("\n").map((l) => "    " + l).join("\n");
}

export async function runDemo(o: DemoOptions): Promise<void> {
  const out = o.out;
  const timeoutMs = o.timeoutMs ?? 20_000;
  const cleanups: (() => Promise<void> | void)[] = [];
  const root = await mkdtemp(join(tmpdir(), "remos-demo-"));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  try {
    out("remos demo: a device provisioned over a serial cable, then managed over mutual-TLS MQTT.");
    out(`(working in ${root}; everything is removed at the end)\n`);

    out("1. A local CA and the embedded MQTT broker (client certificates required, per-identity policy)");
    const prepared = await prepareBrokerDir(join(root, "remos"), { hostnames: ["localhost", "127.0.0.1", "::1"] });
    const connected = new Set<string>();
    const broker: RunningBroker = await startBroker({
      ...prepared.tls,
      host: "127.0.0.1",
      port: 0,
      onClient: (ev, id) => (ev === "connect" ? connected.add(id) : connected.delete(id)),
      onRefusal: (r) => out(`   broker refused ${r.stage}: ${r.reason}${r.cn ? ` (cn=${r.cn})` : ""}`),
    });
    cleanups.push(() => broker.close());
    const brokerUrl = `mqtts://localhost:${broker.port}`;
    out(`   CA ${prepared.files.caCertFile}`);
    out(`   broker on ${brokerUrl}\n`);

    out("2. A fresh device, reachable only over a serial link");
    const mode = o.serial ?? "auto";
    const socat = mode === "in-process" ? undefined : findSocat();
    if (mode === "socat" && !socat) throw new TransportError("socat is not installed (use the in-process serial link)");
    const { startDevice } = await import("../device/agent.js");
    let serialPort: string | undefined;
    let pair: import("../transport/serial.js").SerialDeviceEnd | undefined;
    let openSerial: () => Promise<Device>;
    if (socat) {
      const p = await socatPair(socat, root, timeoutMs);
      cleanups.push(() => void p.proc.kill("SIGTERM"));
      serialPort = p.b;
      out(`   serial: socat pty pair (device on ${p.a}, this CLI on ${p.b})`);
      openSerial = () => connect(p.b, { timeoutMs, noPacing: true });
    } else {
      out("   serial: in-process serial pair (socat not installed), same framing as a cable");
      const { createSerialPair } = await import("../transport/serial.js");
      const sp = createSerialPair({ name: "demo-serial" });
      pair = sp.device;
      openSerial = async () => {
        const { Device: DeviceClass } = await import("../api/device.js");
        return new DeviceClass("serial://demo", await sp.openClient({ timeoutMs }), { timeoutMs });
      };
    }
    const agent = await startDevice({
      dir: join(root, "device"),
      serial: socat ? join(root, "ttyDEVICE") : undefined,
      httpListen: "off",
      log: false,
      loopbackName: false,
    });
    cleanups.push(() => agent.stop());
    if (pair) {
      const end = pair;
      agent.server.serve(end.channel);
      cleanups.push(() => end.close());
    }
    out(`   device ${agent.id} is up; MQTT is off, it has no certificate yet\n`);

    out(`3. mos --port ${serialPort ?? "serial://demo"} iot-setup --broker ${brokerUrl}`);
    const device = await openSerial();
    let result;
    try {
      result = await iotSetup(device, { broker: brokerUrl, ca: prepared.ca, timeoutMs, log: (m) => out("   " + m) });
    } finally {
      await device.close();
    }
    out(`   → ${result.alias}\n`);

    out("4. The device reboots and connects to the broker with its new certificate");
    await waitFor(`device ${result.deviceId} connecting to the broker`, timeoutMs, () => connected.has(result.deviceId));
    out(`   ${result.deviceId} connected over mqtts (client id = certificate CN)\n`);

    const op = result.operator;
    const base = ["--port", result.port, "--cert-file", op.certFile, "--key-file", op.keyFile, "--ca-cert-file", op.caFile, "--timeout", `${Math.round(timeoutMs / 1000)}s`];
    for (const [title, args] of [
      ["5. mos ls over mqtts (as the operator, via the broker)", ["ls"]],
      ["6. mos call Sys.GetInfo over mqtts", ["call", "Sys.GetInfo"]],
    ] as const) {
      out(`${title}\n   $ mos1 ${args.join(" ")}`);
      const r = await o.runMos([...base, ...args]);
      if (r.stdout.trim()) out(indent(r.stdout));
      if (r.code !== 0) throw new TransportError(`mos ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
      out("");
    }
    out("Done: the device was provisioned over serial and is managed over mutual-TLS MQTT. Cleaning up.");
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep cleaning
      }
    }
  }
}
