/**
 * A pseudo-terminal pair joined by socat, as a null-modem serial cable for tests:
 * `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`. Bytes written to A come out of B and back.
 *
 * `socatMissing()` says why the tests cannot run; in CI (`CI=true`) a missing socat is a failure.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PtyPair {
  /** The "host" side (where a client opens the port). */
  a: string;
  /** The "device" side. */
  b: string;
  /** True while socat runs. */
  readonly alive: boolean;
  /** Kill socat and remove the links. */
  stop(): Promise<void>;
}

let socatChecked: string | null | undefined;

/** Why socat-based tests cannot run here, or undefined when they can. Throws in CI. */
export function socatMissing(): string | undefined {
  if (socatChecked === undefined) {
    const r = spawnSync("socat", ["-V"], { stdio: "ignore" });
    socatChecked = r.error || r.status !== 0 ? "socat is not installed" : null;
  }
  if (socatChecked && process.env.CI === "true") throw new Error(`${socatChecked}: required in CI`);
  return socatChecked ?? undefined;
}

/** Start socat with two pty links in a fresh temp folder; resolves when both links exist. */
export async function startPtyPair(timeoutMs = 5000): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), "remos-pty-"));
  const a = join(dir, "host");
  const b = join(dir, "device");
  const proc: ChildProcess = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    proc.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const t0 = Date.now();
  while (!(existsSync(a) && existsSync(b) && /starting data transfer loop/.test(stderr))) {
    if (exited || Date.now() - t0 > timeoutMs) {
      proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`socat pty pair did not come up within ${timeoutMs} ms: ${stderr.trim().slice(-400)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    a,
    b,
    get alive() {
      return !exited;
    },
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 2000);
        await exit;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
