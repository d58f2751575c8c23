/**
 * Test helpers for end-to-end runs of the built `mos`: run it and SIGKILL it once its progress output
 * passes a percentage (an interrupted transfer), and poll a `mos` command until it succeeds (a device
 * coming back from a reboot).
 */
import { spawn } from "node:child_process";
import { MOS_BIN, type MosResult, REPO_ROOT, runMos } from "../helpers/mos.js";

/** Run mos and kill it (SIGKILL) once its progress passes `killAt` percent; resolves when it is gone. */
export function runAndKill(args: string[], killAt: number, guardMs = 60_000): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MOS_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: "" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let killed = false;
    const guard = setTimeout(() => child.kill("SIGKILL"), guardMs);
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      const pcts = [...stderr.matchAll(/ (\d+)% \(/g)].map((m) => Number(m[1]));
      if (!killed && pcts.some((p) => p >= killAt && p < 100)) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(guard);
      resolve({ killed, stderr });
    });
  });
}

/** Run `mos args` until `ok(result)` holds (every `everyMs`), for at most `withinMs`; returns the last result. */
export async function mosUntil(args: string[], ok: (r: MosResult) => boolean, withinMs = 20_000, everyMs = 250): Promise<MosResult> {
  const deadline = Date.now() + withinMs;
  let r: MosResult;
  for (;;) {
    r = await runMos(args, { timeoutMs: Math.max(5000, withinMs) });
    if (ok(r) || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, everyMs));
  }
}
