/**
 * End to end OTA over HTTP: a bundle built with `mos create-fw-bundle`, pushed with `mos ota` to the real
 * agent (`mos device`). With `--commit` the device reboots into the new slot uncommitted and mos commits it:
 * OTA.GetBootState shows it committed and Sys.GetInfo the new fw_version. Without `--commit` and with a
 * short `--commit-timeout`, the device boots the new firmware uncommitted and reverts by itself.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AgentProcess, startAgent } from "../cli/agent.js";
import { mosUntil } from "../cli/mos-kill.js";
import { runMos } from "../helpers/mos.js";

interface BootState {
  active_slot: number;
  is_committed: boolean;
  revert_slot: number;
}
interface Info {
  app: string;
  fw_version: string;
}

let tmp: string;
const agents: AgentProcess[] = [];

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "remos-e2e-ota-"));
});
after(async () => {
  for (const a of agents) await a.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Build a bundle of an app dir (with a 300 KB asset, so it takes many OTA.Write chunks) with the CLI. */
async function bundle(version: string): Promise<string> {
  const app = join(tmp, `app-${version}`);
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, "init.js"), `print("app ${version}");\n`);
  writeFileSync(join(app, "asset.bin"), randomBytes(300_000));
  const out = join(tmp, `fw-${version}.zip`);
  const r = await runMos(["create-fw-bundle", "--dir", app, "--name", "e2e-app", "--version", version, "-o", out]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function callJson<T>(http: string, method: string): Promise<T> {
  const r = await runMos(["--port", http, "--timeout", "5s", "call", method]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

describe("mos ota over HTTP against the agent", () => {
  it("--commit: the device reboots into the new slot and is committed; Sys.GetInfo shows the new version", async () => {
    const agent = await startAgent();
    agents.push(agent);
    const before0 = await callJson<Info>(agent.http, "Sys.GetInfo");
    const bootBefore = await callJson<BootState>(agent.http, "OTA.GetBootState");
    assert.equal(bootBefore.is_committed, true);
    const fw = await bundle("2.0.0");
    const r = await runMos(["--port", agent.http, "--timeout", "10s", "--json", "ota", fw, "--commit", "--chunk-size", "16384"], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { size: number; committed: boolean };
    assert.equal(res.committed, true);
    assert.ok(res.size > 300_000);
    const boot = await callJson<BootState>(agent.http, "OTA.GetBootState");
    assert.equal(boot.is_committed, true);
    assert.notEqual(boot.active_slot, bootBefore.active_slot);
    const info = await callJson<Info>(agent.http, "Sys.GetInfo");
    assert.equal(info.fw_version, "2.0.0");
    assert.equal(info.app, "e2e-app");
    assert.notEqual(before0.fw_version, "2.0.0");
    const ls = await runMos(["--port", agent.http, "ls"]);
    assert.ok(ls.stdout.split(/\r?\n/).includes("asset.bin"), ls.stdout);
  });

  it("without --commit and a short --commit-timeout the new firmware boots uncommitted, then reverts", async () => {
    const agent = await startAgent();
    agents.push(agent);
    const before0 = await callJson<Info>(agent.http, "Sys.GetInfo");
    const bootBefore = await callJson<BootState>(agent.http, "OTA.GetBootState");
    const fw = await bundle("3.0.0");
    const r = await runMos(["--port", agent.http, "--timeout", "10s", "ota", fw, "--commit-timeout", "5s"], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    // The device reboots ~0.5 s after OTA.End into the new firmware, uncommitted...
    const http = ["--port", agent.http, "--timeout", "2s"];
    const info = await mosUntil([...http, "call", "Sys.GetInfo"], (x) => x.code === 0 && (JSON.parse(x.stdout) as Info).fw_version === "3.0.0", 10_000, 150);
    assert.equal(info.code, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as Info).fw_version, "3.0.0");
    let b = await mosUntil([...http, "call", "OTA.GetBootState"], (x) => x.code === 0, 5000);
    const mid = JSON.parse(b.stdout) as BootState;
    assert.notEqual(mid.active_slot, bootBefore.active_slot);
    assert.equal(mid.is_committed, false);
    assert.equal(mid.revert_slot, bootBefore.active_slot);
    // ...and without OTA.Commit the watchdog reverts it after the commit timeout.
    b = await mosUntil([...http, "call", "OTA.GetBootState"], (x) => x.code === 0 && (JSON.parse(x.stdout) as BootState).active_slot === bootBefore.active_slot, 20_000, 250);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((JSON.parse(b.stdout) as BootState).is_committed, true);
    const after0 = await callJson<Info>(agent.http, "Sys.GetInfo");
    assert.equal(after0.fw_version, before0.fw_version);
  });
});
