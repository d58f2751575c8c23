import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readBootState, resolveBoot } from "../../src/device/ota/boot.js";
import { makeBundle } from "../helpers/bundle.js";

const CHILD = fileURLToPath(new URL("./ota-crash-child.ts", import.meta.url));
const ITERATIONS = 6;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Run the child until it says "ready", let it work for `ms`, then SIGKILL it. */
function runAndKill(dir: string, bundles: string[], ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, ...bundles], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let killTimer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      if (!killTimer && d.toString().includes("ready")) killTimer = setTimeout(() => child.kill("SIGKILL"), ms);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (killTimer) clearTimeout(killTimer);
      if (signal === "SIGKILL") resolve();
      else reject(new Error(`child exited by itself (code ${code}): ${stderr}`));
    });
  });
}

describe("OTA crash safety", () => {
  it(`leaves a whole state after SIGKILL at random points of OTA.Write/End (${ITERATIONS} kills)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "remos-crash-"));
    dirs.push(dir);
    const boot = await resolveBoot(dir);
    await writeFile(join(boot.fsRoot, "conf9.json"), '{"user":"keep me"}');
    await writeFile(join(boot.fsRoot, "app.js"), "initial");
    const big = randomBytes(200_000).toString("base64");
    const expected = new Map<string, Record<string, string>>();
    const paths: string[] = [];
    for (const v of ["A", "B"]) {
      const files = { "app.js": `app ${v}`, "blob.bin": `${v}${big}`, "lib/x.js": `lib ${v}` };
      const b = makeBundle(files, { version: v });
      const p = join(dir, `..`, `${v}-${process.pid}-${dir.slice(-6)}.zip`);
      dirs.push(p);
      await writeFile(p, b.zip);
      paths.push(p);
      expected.set(v, Object.fromEntries(Object.entries(files).map(([k, c]) => [k, sha(Buffer.from(c))])));
    }
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      await runAndKill(dir, paths, 50 + Math.floor(Math.random() * 700));
      const before = await readBootState(dir);
      const r = await resolveBoot(dir);
      seen.add(`${r.manifest.version}${r.state.is_committed ? "" : "*"}`);
      assert.equal(await readFile(join(r.fsRoot, "conf9.json"), "utf8"), '{"user":"keep me"}', "user file survives");
      const names = (await readdir(join(dir, "slots"))).filter((n) => n.startsWith("."));
      assert.deepEqual(names, [], "no staging leftovers after boot");
      if (r.manifest.version === "remos-device" || r.manifest.name === "remos-device") {
        assert.equal(await readFile(join(r.fsRoot, "app.js"), "utf8"), "initial");
      } else {
        const want = expected.get(r.manifest.version);
        assert.ok(want, `unexpected version ${r.manifest.version}`);
        for (const [name, hash] of Object.entries(want)) assert.equal(sha(await readFile(join(r.fsRoot, name))), hash, `${name} of ${r.manifest.version} is whole`);
      }
      if (before && !before.is_committed && (before.uncommitted_boots ?? 0) === 0) {
        assert.equal(r.slot, before.active_slot, "a fully installed, not yet booted update boots");
      }
      // commit whatever booted so the next child can update again
      const s = await readBootState(dir);
      assert.ok(s);
      if (!s.is_committed) {
        const { writeBootState } = await import("../../src/device/ota/boot.js");
        await writeBootState(dir, { active_slot: s.active_slot, revert_slot: s.revert_slot, is_committed: true, commit_timeout: s.commit_timeout });
      }
    }
    assert.ok(seen.size >= 1);
    if (process.env.REMOS_CRASH_DEBUG) console.log([...seen]);
  });
});
