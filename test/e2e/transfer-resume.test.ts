/**
 * End to end: a 5 MB random file put and got back byte-identical with the built `mos` against the real
 * agent over HTTP and WebSocket; each transfer is interrupted once (the mos process is killed mid-way)
 * and the next run resumes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MOS_BIN, REPO_ROOT, runMos } from "../helpers/mos.js";
import { type AgentProcess, startAgent } from "../cli/agent.js";

let agent: AgentProcess;
let tmp: string;
const SIZE = 5 * 1024 * 1024;

before(async () => {
  agent = await startAgent();
  tmp = mkdtempSync(join(tmpdir(), "remos-e2e-xfer-"));
});
after(async () => {
  await agent?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Run mos and kill it (SIGKILL) once its progress passes `killAt` percent; resolves when it is gone. */
function runAndKill(args: string[], killAt: number): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MOS_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: "" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let killed = false;
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
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

for (const kind of ["http", "ws"] as const) {
  describe(`5 MB transfer over ${kind}, interrupted and resumed`, () => {
    const port = (): string => (kind === "http" ? agent.http : agent.ws);
    // Small chunks and a window of 2 make the transfer long enough to interrupt on a fast machine.
    const flags = (): string[] => ["--port", port(), "--timeout", "10s", "--chunk-size", "16384"];

    it("put: killed mid-way, then resumed; get: killed mid-way, then resumed; bytes identical", async () => {
      const data = randomBytes(SIZE);
      const local = join(tmp, `big-${kind}.bin`);
      writeFileSync(local, data);
      const dev = `big-${kind}.bin`;

      const first = await runAndKill([...flags(), "put", local, dev, "--window", "2"], 20);
      assert.ok(first.killed, `put finished before it could be interrupted: ${first.stderr}`);
      const put = await runMos([...flags(), "--json", "put", local, dev], { timeoutMs: 60_000 });
      assert.equal(put.code, 0, put.stderr);
      const pr = JSON.parse(put.stdout) as { size: number; resumedFrom: number; sha256: string; verified: string };
      assert.equal(pr.size, SIZE);
      assert.ok(pr.resumedFrom > 0, `put did not resume: ${put.stdout}`);
      assert.ok(pr.verified !== "none");

      const out = join(tmp, `back-${kind}.bin`);
      const g1 = await runAndKill([...flags(), "get", dev, "-o", out, "--window", "2"], 20);
      assert.ok(g1.killed, `get finished before it could be interrupted: ${g1.stderr}`);
      assert.ok(existsSync(out + ".part"));
      assert.ok(!existsSync(out));
      const get = await runMos([...flags(), "--json", "get", dev, "-o", out], { timeoutMs: 60_000 });
      assert.equal(get.code, 0, get.stderr);
      const gr = JSON.parse(get.stdout) as { resumedFrom: number; sha256: string };
      assert.ok(gr.resumedFrom > 0, `get did not resume: ${get.stdout}`);
      assert.equal(gr.sha256, pr.sha256);
      assert.ok(readFileSync(out).equals(data), "downloaded bytes differ");
      assert.ok(!existsSync(out + ".part"));
    });
  });
}
