/**
 * Crash safety of the config: a real `mos device` process is killed with SIGKILL at random moments while a
 * client saves the config in a loop; after each kill conf9.json must be valid JSON holding either the
 * last acknowledged state or the one being written, and the device must start again from it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { RpcClient } from "../../src/rpc/client.js";
import { connect as httpConnect } from "../../src/transport/http.js";
import { REPO_ROOT } from "../helpers/mos.js";
import { tempDir } from "./helpers.js";

function startAgent(dir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/mos.ts"), "device", "--dir", dir, "--http-listen", "127.0.0.1:0", "--quiet"], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("agent did not start in 30 s"));
    }, 30_000);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited early (${code})`));
    });
  });
}

describe("device config crash safety", () => {
  const children = new Set<ChildProcess>();
  let dir: string | undefined;
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("kill -9 during Config.Set save leaves conf9.json valid and either old or new", { timeout: 120_000 }, async () => {
    dir = await tempDir("remos-crash-");
    let acknowledged = -1;
    for (let round = 0; round < 4; round++) {
      const { child, url } = await startAgent(dir);
      children.add(child);
      const exited = new Promise<void>((r) => child.on("exit", () => r()));
      const client = new RpcClient(await httpConnect(new URL(url), { timeoutMs: 5000 }), { timeoutMs: 5000 });
      // the state survived the previous kill
      const sn = await client.call<string>("Config.Get", { key: "device.sn" });
      if (acknowledged >= 0) assert.ok(sn === String(acknowledged) || sn === String(acknowledged + 1), `round ${round}: sn ${sn}, acked ${acknowledged}`);
      let n = sn === "" ? 0 : Number(sn) + 1;
      const killAt = Date.now() + 150 + Math.floor(Math.random() * 400);
      let killed = false;
      const loop = (async () => {
        while (!killed) {
          try {
            await client.call("Config.Set", { config: { device: { sn: String(n) }, debug: { file_level: "x".repeat(n % 500) } }, save: true });
            acknowledged = n;
            n++;
          } catch {
            return;
          }
        }
      })();
      while (Date.now() < killAt) await new Promise((r) => setTimeout(r, 10));
      killed = true;
      child.kill("SIGKILL");
      await exited;
      children.delete(child);
      await loop;
      await client.close();
      const text = await readFile(join(dir, "slots", "0", "fs", "conf9.json"), "utf8");
      const c9 = JSON.parse(text) as { device: { sn: string } };
      assert.ok(c9.device.sn === String(acknowledged) || c9.device.sn === String(acknowledged + 1), `conf9 sn ${c9.device.sn}, acked ${acknowledged}`);
    }
  });
});
