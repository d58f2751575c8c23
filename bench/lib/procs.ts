/**
 * Processes the benchmarks start (mosquitto, socat, device agents), each stopped when the bench ends.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

const started = new Set<ChildProcess>();

/** Remember a child so stopAll() (on exit, SIGINT, failure) kills it. */
export function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.on("exit", () => started.delete(child));
  return child;
}

export function startProcess(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; quiet?: boolean; stdout?: "pipe" } = {}): ChildProcess {
  const out = o.stdout ?? (o.quiet === false ? "inherit" : "ignore");
  return track(spawn(cmd, args, { stdio: ["ignore", out, "pipe"], env: o.env ?? process.env }));
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      child.kill("SIGKILL");
    }, 3000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export function stopAll(): void {
  for (const c of started) c.kill("SIGKILL");
}

process.on("exit", stopAll);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function hasCommand(cmd: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    c.on("close", (code) => resolve(code === 0));
    c.on("error", () => resolve(false));
  });
}
