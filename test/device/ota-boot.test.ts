import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  readBootState,
  resolveBoot,
  slotFsRoot,
  slotManifestPath,
  startCommitWatchdog,
  writeBootState,
} from "../../src/device/ota/boot.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "remos-boot-"));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function makeSlot1(dir: string, version = "2.0"): Promise<void> {
  await mkdir(slotFsRoot(dir, 1), { recursive: true });
  await writeFile(slotManifestPath(dir, 1), JSON.stringify({ name: "app", platform: "remos", version, parts: {} }));
}

describe("resolveBoot", () => {
  it("initialises slot 0 on first start and keeps it on later boots", async () => {
    const dir = await tempDir();
    const r = await resolveBoot(dir);
    assert.equal(r.slot, 0);
    assert.equal(r.fsRoot, slotFsRoot(dir, 0));
    assert.equal(r.manifest.name, "remos-device");
    assert.equal(r.manifest.platform, "remos");
    assert.equal(r.manifest.version, JSON.parse(await readFile("package.json", "utf8")).version);
    assert.deepEqual(await readBootState(dir), { active_slot: 0, revert_slot: 0, is_committed: true, commit_timeout: 0 });
    await writeFile(join(r.fsRoot, "conf9.json"), "{}");
    const r2 = await resolveBoot(dir);
    assert.equal(r2.slot, 0);
    assert.equal(await readFile(join(r2.fsRoot, "conf9.json"), "utf8"), "{}");
  });

  it("gives an uncommitted slot one boot and reverts at the next", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await makeSlot1(dir);
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: false, commit_timeout: 60 });
    let t = 1_000_000;
    const r = await resolveBoot(dir, { now: () => t });
    assert.equal(r.slot, 1);
    assert.equal(r.state.is_committed, false);
    assert.equal(r.state.boot_deadline, 1_000_000 + 60_000);
    t += 1000;
    const r2 = await resolveBoot(dir, { now: () => t });
    assert.equal(r2.slot, 0);
    assert.equal(r2.reverted?.from, 1);
    assert.deepEqual(await readBootState(dir), { active_slot: 0, revert_slot: 0, is_committed: true, commit_timeout: 0 });
  });

  it("keeps a committed slot across boots", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await makeSlot1(dir);
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: false, commit_timeout: 60 });
    await resolveBoot(dir);
    const s = await readBootState(dir);
    assert.ok(s);
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: true, commit_timeout: s.commit_timeout });
    assert.equal((await resolveBoot(dir)).slot, 1);
    assert.equal((await resolveBoot(dir)).slot, 1);
  });

  it("auto-commits when commit_timeout is 0", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await makeSlot1(dir);
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: false, commit_timeout: 0 });
    const r = await resolveBoot(dir);
    assert.equal(r.slot, 1);
    assert.equal(r.state.is_committed, true);
  });

  it("falls back when the active slot is not bootable, and removes install leftovers", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await mkdir(join(dir, "slots", ".1.new-x"), { recursive: true });
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: true, commit_timeout: 0 });
    const r = await resolveBoot(dir);
    assert.equal(r.slot, 0);
    assert.equal(r.reverted?.reason, "active slot is not bootable");
    await assert.rejects(readFile(join(dir, "slots", ".1.new-x")));
  });

  it("recovers from an unreadable boot.json", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await writeFile(join(dir, "boot.json"), "{garbage");
    const r = await resolveBoot(dir);
    assert.equal(r.slot, 0);
  });
});

describe("startCommitWatchdog", () => {
  /** Resolve with the reboot delay, or with "none" after waitMs (a ref'd timer keeps the test alive). */
  function watch(dir: string, now: () => number, waitMs: number): Promise<number | "none"> {
    return new Promise((resolve) => {
      const keepAlive = setTimeout(() => {
        w.stop();
        resolve("none");
      }, waitMs);
      const w = startCommitWatchdog(dir, (ms) => {
        clearTimeout(keepAlive);
        w.stop();
        resolve(ms);
      }, { now });
    });
  }

  it("reverts and requests a reboot when the deadline passes without commit", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await makeSlot1(dir);
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: false, commit_timeout: 1 });
    const base = Date.now();
    await resolveBoot(dir, { now: () => base - 900 }); // deadline 100 ms from now
    assert.equal(await watch(dir, Date.now, 5000), 100);
    assert.deepEqual(await readBootState(dir), { active_slot: 0, revert_slot: 0, is_committed: true, commit_timeout: 0 });
  });

  it("does nothing once committed", async () => {
    const dir = await tempDir();
    await resolveBoot(dir);
    await makeSlot1(dir);
    await writeBootState(dir, { active_slot: 1, revert_slot: 0, is_committed: false, commit_timeout: 1 });
    const base = Date.now();
    const r = await resolveBoot(dir, { now: () => base - 800 }); // deadline 200 ms from now
    const watching = watch(dir, Date.now, 600);
    await writeBootState(dir, { ...r.state, is_committed: true });
    assert.equal(await watching, "none");
    assert.equal((await readBootState(dir))?.active_slot, 1);
  });
});
