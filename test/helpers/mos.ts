/**
 * Run the built `mos` binary (dist/cli/mos.js) as a user would, in a child process. `npm test` builds
 * first; during development run `npm run build` after changing src/.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MOS_BIN = join(REPO_ROOT, "dist", "cli", "mos.js");

export interface MosResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface MosRunOptions {
  env?: Record<string, string>;
  input?: string | Buffer;
  /** Kill the process after this many ms (default 60000). */
  timeoutMs?: number;
  cwd?: string;
}

export function runMos(args: string[], options: MosRunOptions = {}): Promise<MosResult> {
  if (!existsSync(MOS_BIN)) throw new Error(`${MOS_BIN} is missing: run npm run build (npm test builds it)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MOS_BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: "", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
