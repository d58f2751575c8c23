/**
 * kill -9 of the whole agent process (`mos device`, built dist/) in the middle of a file put and of an OTA,
 * then a restart on the same state directory:
 * - put: the API resumes the upload (FS.Sha256 proves the prefix the device holds) and the file ends up
 *   byte-exact;
 * - OTA killed mid-write: the running firmware stays committed and an update can start again;
 * - OTA killed during the uncommitted trial boot: after the restart the device runs committed firmware
 *   (the new one committed, or the old one reverted), never a half state.
 * (test/device covers the in-process resolveBoot/install steps; this is the whole agent dying.)
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { connect, type Device } from "../../src/api/device.js";
import { makeBundle } from "../helpers/bundle.js";
import { MOS_BIN } from "../helpers/mos.js";

const children = new Set<ChildProcess>();
const dirs: string[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Start `mos device` on `dir`; resolves with the process and its HTTP URL. */
function startAgent(dir: string): Promise<{ proc: ChildProcess; url: string; booted: (n: number) => Promise<void> }> {
  const proc = spawn(process.execPath, [MOS_BIN, "device", "--dir", dir, "--http-listen", "127.0.0.1:0", "--quiet"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  children.add(proc);
  proc.once("exit", () => children.delete(proc));
  // mos device prints `<id> <url>` at start and again after every (in-process) reboot.
  const boots = (): number => out.split("\n").filter((l) => / http:\/\//.test(l)).length;
  const booted = async (n: number): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (boots() < n) {
      if (Date.now() > deadline) throw new Error(`the agent did not boot ${n} times`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  let out = "";
  return new Promise((resolve, reject) => {
    let err = "";
    const t = setTimeout(() => reject(new Error(`mos device did not start: ${err}`)), 15_000);
    proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => / http:\/\//.test(l));
      if (line) {
        clearTimeout(t);
        resolve({ proc, url: line.split(" ")[1], booted });
      }
    });
    proc.once("exit", (code) => reject(new Error(`mos device exited (${code}): ${err}`)));
  });
}

function kill9(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once("exit", () => resolve());
    proc.kill("SIGKILL");
  });
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "remos-kill9-"));
  dirs.push(d);
  return d;
}

describe("kill -9 of the agent", { skip: existsSync(MOS_BIN) ? undefined : "dist/cli/mos.js is missing (npm test builds it)" }, () => {
  it("during a put: after the restart the upload resumes and the file is byte-exact", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const data = randomBytes(3 * 1024 * 1024);
    let a = await startAgent(dir);
    let dev: Device = await connect(a.url, { timeoutMs: 5000 });
    let killed: Promise<void> | undefined;
    await assert.rejects(
      dev.fs.put("big.bin", data, {
        chunkSize: 16 * 1024,
        window: 2,
        attempts: 1,
        onProgress: (p) => {
          if (!killed && p.done >= data.length / 3) killed = kill9(a.proc);
        },
      }),
      (e: Error & { code?: string }) => typeof e.code === "string" && e.code.startsWith("ERR_"),
    );
    await killed;
    await dev.close();

    a = await startAgent(dir);
    dev = await connect(a.url, { timeoutMs: 5000 });
    try {
      const r = await dev.fs.put("big.bin", data);
      assert.ok(r.resumedFrom > 0, "the upload resumed instead of starting over");
      assert.ok(r.resumedFrom < data.length);
      assert.equal(r.verified, "sha256");
      assert.ok((await dev.fs.get("big.bin")).equals(data));
    } finally {
      await dev.close();
      await kill9(a.proc);
    }
  });

  it("during an OTA write and during the uncommitted trial boot: the device always runs committed firmware", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const blob = randomBytes(400 * 1024).toString("base64");
    const { zip } = makeBundle({ "app.js": "new app v2", "blob.txt": blob }, { version: "2.0" });
    let a = await startAgent(dir);
    let dev = await connect(a.url, { timeoutMs: 5000 });
    const before = await dev.ota.getBootState();
    assert.equal(before.is_committed, true);

    // 1) Killed in the middle of OTA.Write.
    let killed: Promise<void> | undefined;
    await assert.rejects(
      dev.ota.upload(zip, {
        chunkSize: 4096,
        attempts: 1,
        onProgress: (p) => {
          if (!killed && p.done >= zip.length / 2) killed = kill9(a.proc);
        },
      }),
    );
    await killed;
    await dev.close();
    a = await startAgent(dir);
    dev = await connect(a.url, { timeoutMs: 5000 });
    assert.deepEqual(await dev.ota.getBootState(), before, "a half-written update changed nothing");
    const st = await dev.ota.status();
    assert.ok(st.state === 0 || st.state === 2, `OTA state ${st.state} after the restart`);

    // 2) A complete update; killed while the new firmware runs uncommitted.
    await dev.ota.upload(zip, { commitTimeoutS: 300 });
    await dev.close();
    await a.booted(2); // the in-process reboot into the new, uncommitted firmware (its one trial boot)
    await kill9(a.proc);

    a = await startAgent(dir);
    dev = await connect(a.url, { timeoutMs: 5000 });
    try {
      const after = await dev.ota.getBootState();
      assert.equal(after.is_committed, true, `after the restart the firmware is committed (reverted or not): ${JSON.stringify({ before, after })}`);
      const info = await dev.sys.getInfo();
      if (after.active_slot === before.active_slot) assert.notEqual(info.fw_version, "2.0", "reverted to the old firmware");
      else assert.equal(info.fw_version, "2.0");
      // And the device is healthy: config and FS answer.
      assert.ok(await dev.call("Config.Get", { key: "device.id" }));
      assert.ok(Array.isArray(await dev.fs.list()));
    } finally {
      await dev.close();
      await kill9(a.proc);
    }
  });
});
