/**
 * A mosquitto broker for the benchmarks: started through `sh -c 'ulimit -n ...; exec mosquitto'` so a
 * fleet of 10,000 devices fits, always with `set_tcp_nodelay true` (without it mosquitto adds ~40 ms per
 * message through Nagle), `$SYS` published every second (the fleet counts connected clients with it),
 * optionally TLS with client certificates required (mutual TLS). The default `max_queued_messages`
 * (1000) is kept on purpose: a caller that floods thousands of devices loses answers, so the bench must
 * window its requests as a real caller would.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, stopProcess, track } from "./procs.js";

export const MOSQUITTO = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

export interface BenchBrokerOptions {
  /** PEM texts; the client certificate must be signed by `ca` when `requireCertificate`. */
  tls?: { ca: string; cert: string; key: string; requireCertificate?: boolean };
  extra?: string[];
}

export interface BenchBroker {
  port: number;
  url: string;
  pid: number | undefined;
  proc: ChildProcess;
  stop(): Promise<void>;
  restart(): Promise<void>;
  logs(): string;
}

function mosquittoOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("mosquitto:"));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

export function waitPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect({ port, host: "127.0.0.1" });
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 30);
      });
    };
    attempt();
  });
}

export async function startBroker(o: BenchBrokerOptions = {}): Promise<BenchBroker> {
  if (!existsSync(MOSQUITTO)) throw new Error(`mosquitto not found at ${MOSQUITTO}`);
  const dir = mkdtempSync(join(tmpdir(), "remos-bench-mosq-"));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const lines = [
    "per_listener_settings true",
    "persistence false",
    "set_tcp_nodelay true",
    "sys_interval 1",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    "max_connections -1",
  ];
  if (o.tls) {
    const put = (name: string, text: string): string => {
      const p = join(dir, name);
      writeFileSync(p, text, { mode: 0o644 });
      return p;
    };
    lines.push(`cafile ${put("ca.pem", o.tls.ca)}`, `certfile ${put("server.pem", o.tls.cert)}`);
    const key = put("server.key", o.tls.key);
    const owner = mosquittoOwner();
    if (owner) {
      chmodSync(key, 0o600);
      chownSync(key, owner.uid, owner.gid);
    }
    lines.push(`keyfile ${key}`);
    if (o.tls.requireCertificate) lines.push("require_certificate true");
  }
  lines.push(...(o.extra ?? []));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o644 });
  let out = "";
  let proc!: ChildProcess;
  const launch = async (): Promise<void> => {
    // The hard limit may be below 65536 (containers): take what we can get.
    proc = track(spawn("sh", ["-c", `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${MOSQUITTO} -c ${conf}`], { stdio: ["ignore", "ignore", "pipe"] }));
    proc.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-8192)));
    await waitPort(port, 10_000);
  };
  await launch();
  const broker: BenchBroker = {
    port,
    url: `${o.tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    get pid() {
      return proc.pid;
    },
    get proc() {
      return proc;
    },
    async stop() {
      await stopProcess(proc);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess(proc);
      await launch();
    },
    logs: () => out,
  };
  return broker;
}
