/**
 * Child processes of the bench that announce themselves on stdout: the device agent (`mos device`, one
 * line per started device) and the raw echo servers (`READY <json>`). Every child is tracked by procs.ts,
 * so it is killed when the bench ends, fails or is interrupted.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./report.js";
import { startProcess, stopProcess } from "./procs.js";

export const MOS_JS = join(ROOT, "dist", "cli", "mos.js");

export interface Announced {
  proc: ChildProcess;
  lines: string[];
  stop(): Promise<void>;
}

/** Spawn and wait until `count` stdout lines arrived (or fail on exit / after timeoutMs). */
export function spawnAnnounced(cmd: string, args: string[], o: { count?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {}): Promise<Announced> {
  const proc = startProcess(cmd, args, { stdout: "pipe", env: o.env });
  const lines: string[] = [];
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const want = o.count ?? 1;
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      void stopProcess(proc);
      reject(new Error(`${cmd} ${args.slice(0, 4).join(" ")}: ${lines.length}/${want} lines after ${o.timeoutMs ?? 30000} ms; stderr: ${err.slice(-600)}`));
    }, o.timeoutMs ?? 30_000);
    proc.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        o.onLine?.(line);
        if (lines.length === want) {
          clearTimeout(timer);
          resolve({ proc, lines, stop: () => stopProcess(proc) });
        }
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      if (lines.length < want) reject(new Error(`${cmd} exited (${code}) early: ${err.slice(-600)}`));
    });
  });
}

export interface AgentProcess extends Announced {
  id: string;
  url: string;
  dir: string;
}

/** `mos device --dir <tmp> --quiet ...args`; resolves with the device's id and HTTP URL. */
export async function startAgent(
  args: string[],
  o: { ulimit?: boolean; count?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; dir?: string } = {},
): Promise<AgentProcess> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "remos-bench-dev-"));
  const full = [...childNodeArgs(), MOS_JS, "device", "--dir", dir, "--quiet", ...args];
  const env = { ...process.env, NODE_OPTIONS: "", ...o.env };
  const a = o.ulimit
    ? await spawnAnnounced("sh", ["-c", `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`, process.execPath, ...full], { ...o, env })
    : await spawnAnnounced(process.execPath, full, { ...o, env });
  const [id, url] = a.lines[0].split(" ");
  return {
    ...a,
    id,
    url,
    dir,
    stop: async () => {
      await a.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** BENCH_CHILD_NODE_ARGS: node flags for the agents and echo servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
function childNodeArgs(): string[] {
  return (process.env.BENCH_CHILD_NODE_ARGS ?? "").split(" ").filter(Boolean);
}

/** A raw echo server process (bench/lib/echo-server.ts) and what it announced. */
export async function startEcho(kind: string, arg?: string): Promise<{ info: { port?: number }; pid: number; stop: () => Promise<void> }> {
  const a = await spawnAnnounced(process.execPath, [...childNodeArgs(), "--import", "tsx", join(ROOT, "bench", "lib", "echo-server.ts"), kind, ...(arg ? [arg] : [])], { timeoutMs: 20_000 });
  const info = JSON.parse(a.lines[0].replace(/^READY /, "")) as { port?: number };
  return { info, pid: a.proc.pid ?? 0, stop: a.stop };
}
