/**
 * Test helper: run the real device agent as a user would (`mos device --dir D --http-listen 127.0.0.1:PORT`,
 * PORT probed free, plus any extra flags such as `--serial PTY` or `--set mqtt.enable=true`) in a child
 * process, and learn its id and HTTP URL from its first stdout line (`<id> <url>`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MOS_BIN, REPO_ROOT } from "../helpers/mos.js";

export interface AgentProcess {
  id: string;
  http: string;
  ws: string;
  dir: string;
  proc: ChildProcess;
  /** Every line the agent printed on stdout so far (one per boot: `<id> <url>`). */
  lines(): string[];
  stop(): Promise<void>;
}

/** A free loopback port (probed by listening on port 0): a fixed port survives the agent's reboots. */
export async function freeLoopbackPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startAgent(extra: string[] = [], timeoutMs = 15_000): Promise<AgentProcess> {
  const dir = mkdtempSync(join(tmpdir(), "remos-e2e-dev-"));
  const listen = `127.0.0.1:${await freeLoopbackPort()}`;
  const proc = spawn(process.execPath, [MOS_BIN, "device", "--dir", dir, "--http-listen", listen, "--quiet", ...extra], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  let all = "";
  proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  proc.stdout?.on("data", (d: Buffer) => (all += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`mos device did not start in ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`mos device exited (${code}): ${err}`));
    });
  });
  const [id, http] = line.split(/\s+/);
  if (!http?.startsWith("http://")) {
    proc.kill("SIGKILL");
    throw new Error(`mos device printed no HTTP URL: "${line}"`);
  }
  return {
    id,
    http,
    ws: http.replace(/^http:/, "ws:"),
    dir,
    proc,
    lines: () => all.split("\n").filter(Boolean),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((r) => proc.once("exit", () => r()));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
