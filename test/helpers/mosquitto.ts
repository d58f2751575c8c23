/**
 * Test helper: a real mosquitto broker on a loopback port, started and stopped by a test.
 *
 *   const broker = await startMosquitto();                        // plain MQTT, anonymous allowed
 *   const tlsBroker = await startMosquitto({ tls: { caFile, certFile, keyFile, requireCertificate: true } });
 *   ... broker.url (mqtt://127.0.0.1:PORT or mqtts://127.0.0.1:PORT), broker.port, broker.wsPort ...
 *   await broker.restart();   // same port, same config (reconnect tests)
 *   await broker.stop();      // in after(); idempotent
 *
 * The config it writes (stable; other areas rely on it):
 * - `per_listener_settings true`, `persistence false`, `set_tcp_nodelay true` (without it mosquitto adds
 *   ~40 ms per message through Nagle), `max_queued_messages 100000` (tests put thousands of QoS 1 messages
 *   in flight; the default of 1000 would drop some), log to stderr (kept for error messages: `logs()`).
 * - `listener PORT 127.0.0.1` with `allow_anonymous true` (unless `extraConfig` sets `allow_anonymous`
 *   itself), and with `tls` the cafile/certfile/keyfile, `require_certificate`, `use_identity_as_username`,
 *   `crlfile`. The TLS files are copied into the broker's own world-readable temp dir (`dir`): mosquitto
 *   run as root drops to user `mosquitto`, so it must be able to read them (the key is chowned to that
 *   user with mode 0600 when we are root, else left 0644 — test keys only).
 * - `extraConfig` is appended right after the main listener's settings, so per-listener options (acl_file,
 *   password_file, allow_anonymous...) apply to the main listener; paths in it must be world-readable too.
 * - `websockets: true` adds `listener WSPORT 127.0.0.1` + `protocol websockets` with the same security
 *   settings (TLS included, i.e. wss when `tls` is given).
 *
 * Ports are picked by listening on port 0 and released just before mosquitto binds them; a lost race is
 * retried with new ports. `startMosquitto` resolves once the port accepts TCP connections (10 s bound).
 *
 * A missing mosquitto: `mosquittoSkipReason()` gives a skip reason outside CI and undefined in CI
 * (`CI=true`), where `startMosquitto` then throws, so the test fails instead of skipping.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mosquittoOwner } from "../../src/cloud/broker-dir.js";

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

export interface MosquittoTlsOptions {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Clients must present a certificate signed by `caFile` (mutual TLS). */
  requireCertificate?: boolean;
  /** The client certificate's CN becomes the MQTT username (for ACLs). */
  useIdentityAsUsername?: boolean;
  /** A CRL (PEM, label `X509 CRL`) of revoked client certificates. */
  crlFile?: string;
}

export interface MosquittoOptions {
  tls?: MosquittoTlsOptions;
  /** Lines appended after the main listener's settings (see the file header). */
  extraConfig?: string;
  /** Also listen for MQTT over WebSocket (path-independent; clients usually use `/mqtt`). */
  websockets?: boolean;
}

export interface MosquittoBroker {
  /** The MQTT (or MQTT over TLS) port on 127.0.0.1. */
  port: number;
  /** The WebSocket port when `websockets` was asked for. */
  wsPort?: number;
  /** `mqtt://127.0.0.1:PORT`, or `mqtts://127.0.0.1:PORT` with TLS. */
  url: string;
  /** The broker's temp dir (config, copied TLS files); removed by stop(). */
  dir: string;
  /** Stop the broker and remove its dir. Idempotent. */
  stop(): Promise<void>;
  /** Kill the broker and start it again on the same ports with the same config. */
  restart(): Promise<void>;
  /** Kill the broker (SIGKILL, no clean shutdown) without removing its dir; `restart()` brings it back. */
  kill(): Promise<void>;
  /** The broker's recent log output. */
  logs(): string;
}

/** Why mosquitto tests must be skipped here, or undefined when they must run (in CI they always run). */
export function mosquittoSkipReason(): string | undefined {
  if (existsSync(MOSQUITTO_BIN)) return undefined;
  if (process.env.CI === "true") return undefined;
  return `mosquitto not found at ${MOSQUITTO_BIN} (install it, or set MOSQUITTO_BIN)`;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** A free loopback port (released before it is returned; the caller must cope with losing a race). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}


function buildConfig(o: MosquittoOptions, dir: string, port: number, wsPort: number | undefined): string {
  const security: string[] = [];
  if (!/^\s*allow_anonymous\s/m.test(o.extraConfig ?? "")) security.push("allow_anonymous true");
  if (o.tls) {
    const t = o.tls;
    const put = (name: string, from: string, mode: number): string => {
      const to = join(dir, name);
      copyFileSync(from, to);
      chmodSync(to, mode);
      return to;
    };
    security.push(`cafile ${put("ca.pem", t.caFile, 0o644)}`);
    security.push(`certfile ${put("server.pem", t.certFile, 0o644)}`);
    const owner = mosquittoOwner();
    const key = put("server.key", t.keyFile, owner ? 0o600 : 0o644);
    if (owner) chownSync(key, owner.uid, owner.gid);
    security.push(`keyfile ${key}`);
    if (t.requireCertificate) security.push("require_certificate true");
    if (t.useIdentityAsUsername) security.push("use_identity_as_username true");
    if (t.crlFile) security.push(`crlfile ${put("crl.pem", t.crlFile, 0o644)}`);
  }
  const lines = [
    "# written by test/helpers/mosquitto.ts",
    "per_listener_settings true",
    "persistence false",
    "set_tcp_nodelay true",
    "max_queued_messages 100000",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "connection_messages true",
    "",
    `listener ${port} 127.0.0.1`,
    ...security,
    ...(o.extraConfig ? [o.extraConfig] : []),
  ];
  if (wsPort !== undefined) lines.push("", `listener ${wsPort} 127.0.0.1`, "protocol websockets", ...security);
  return lines.join("\n") + "\n";
}

function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    let exited = false;
    const onExit = (code: number | null): void => {
      exited = true;
      reject(new Error(`mosquitto exited (code ${code}) before listening on ${port}`));
    };
    child.once("exit", onExit);
    const attempt = (): void => {
      if (exited) return;
      const sock = connect({ port, host: "127.0.0.1" });
      sock.once("connect", () => {
        sock.destroy();
        child.off("exit", onExit);
        resolve();
      });
      sock.once("error", () => {
        sock.destroy();
        if (Date.now() > deadline) {
          child.off("exit", onExit);
          reject(new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`));
        } else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Start a mosquitto broker on loopback (see the file header for the config it writes). */
export async function startMosquitto(o: MosquittoOptions = {}): Promise<MosquittoBroker> {
  if (!existsSync(MOSQUITTO_BIN)) throw new Error(`mosquitto not found at ${MOSQUITTO_BIN}`);
  const dir = mkdtempSync(join(tmpdir(), "remos-mosquitto-"));
  chmodSync(dir, 0o755);
  const confFile = join(dir, "mosquitto.conf");
  let output = "";
  let child: ChildProcess | undefined;
  let port = 0;
  let wsPort: number | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(MOSQUITTO_BIN, ["-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    const keep = (d: Buffer): void => {
      output = (output + d.toString("utf8")).slice(-16_384);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    child = proc;
    try {
      await waitForPort(port, proc, 10_000);
      if (wsPort !== undefined) await waitForPort(wsPort, proc, 10_000);
    } catch (e) {
      proc.kill("SIGKILL");
      throw new Error(`${(e as Error).message}\n${output}`);
    }
  };

  const killChild = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      proc.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      proc.kill(signal);
    });
  };

  let lastError: unknown;
  for (let tries = 0; tries < 5; tries++) {
    port = await freePort();
    wsPort = o.websockets ? await freePort() : undefined;
    writeFileSync(confFile, buildConfig(o, dir, port, wsPort), { mode: 0o644 });
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (e) {
      lastError = e;
      // Another process may have taken the port between our probe and mosquitto's bind: try new ports.
    }
  }
  if (lastError !== undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  let stopped = false;
  return {
    port,
    ...(wsPort !== undefined ? { wsPort } : {}),
    url: `${o.tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await killChild("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      if (stopped) throw new Error("mosquitto was stopped");
      await killChild("SIGTERM");
      await launch();
    },
    async kill() {
      await killChild("SIGKILL");
    },
    logs() {
      return output;
    },
  };
}
