/**
 * File handles kept between the chunks of a transfer (device/fs-handles.ts, used by the FS service): a kept
 * handle never outlives the file its name leads to (removed, replaced, renamed, swapped for a symlink out of
 * the root: the next call behaves as if nothing were kept), and handles are bounded and closed when idle.
 */
import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { open, readFile, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FsHandles } from "../../src/device/fs-handles.js";
import { FsRoot } from "../../src/device/fsroot.js";
import { type TestDevice, b64, deviceError, deviceWithOutsideDir, tempDir } from "./helpers.js";

const openFds = (): number => readdirSync("/proc/self/fd").length;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("FS service with kept file handles", () => {
  let t: TestDevice;
  let outside: string;
  deviceWithOutsideDir((d, o) => {
    t = d;
    outside = o;
  });
  const path = (name: string): string => join(t.agent.fsRoot, name);

  it("writes chunk after chunk through one handle, and reads back what is on disk", async () => {
    const c = t.client;
    await c.call("FS.Put", { filename: "k.bin", offset: 0, data: b64("aaaa") });
    await c.call("FS.Put", { filename: "k.bin", offset: 4, data: b64("bbbb"), append: true });
    await c.call("FS.Put", { filename: "k.bin", offset: 2, data: b64("CC"), append: true });
    assert.equal(await readFile(path("k.bin"), "utf8"), "aaCCbbbb");
    assert.deepEqual(await c.call("FS.Get", { filename: "k.bin", offset: 1, len: 3 }), { data: b64("aCC"), left: 4 });
    await writeFile(path("k.bin"), "grown by someone else");
    assert.deepEqual(await c.call("FS.Get", { filename: "k.bin" }), { data: b64("grown by someone else"), left: 0 });
  });

  it("a file removed between chunks: the next chunk fails as on the firmware (r+ of a missing file)", async () => {
    const c = t.client;
    await c.call("FS.Put", { filename: "gone.bin", offset: 0, data: b64("1234") });
    await c.call("FS.Put", { filename: "gone.bin", offset: 4, data: b64("5678") });
    await unlink(path("gone.bin")); // behind the agent's back
    assert.deepEqual(await deviceError(c.call("FS.Put", { filename: "gone.bin", offset: 8, data: b64("9") })), {
      code: 400,
      message: 'failed to open file "gone.bin"',
    });
    assert.deepEqual(await deviceError(c.call("FS.Get", { filename: "gone.bin" })), { code: 400, message: 'failed to open file "gone.bin"' });
  });

  it("a file replaced, or removed and renamed through RPC, is opened afresh", async () => {
    const c = t.client;
    await c.call("FS.Put", { filename: "r.bin", offset: 0, data: b64("old old") });
    assert.deepEqual(await c.call("FS.Get", { filename: "r.bin" }), { data: b64("old old"), left: 0 });
    await writeFile(path("r.tmp"), "new");
    await rename(path("r.tmp"), path("r.bin")); // a different file (inode) under the same name
    assert.deepEqual(await c.call("FS.Get", { filename: "r.bin" }), { data: b64("new"), left: 0 });
    await c.call("FS.Put", { filename: "r.bin", offset: 3, data: b64("er") });
    assert.equal(await readFile(path("r.bin"), "utf8"), "newer");

    await c.call("FS.Rename", { src: "r.bin", dst: "moved.bin" });
    assert.deepEqual(await deviceError(c.call("FS.Put", { filename: "r.bin", offset: 1, data: b64("x") })), {
      code: 400,
      message: 'failed to open file "r.bin"',
    });
    await c.call("FS.Remove", { filename: "moved.bin" });
    assert.deepEqual(await deviceError(c.call("FS.Get", { filename: "moved.bin" })), { code: 400, message: 'failed to open file "moved.bin"' });
  });

  it("a reboot closes the kept handles at once (not after the idle sweep)", async () => {
    const c = t.client;
    await c.call("FS.Put", { filename: "boot.bin", offset: 0, data: b64("1234") });
    await c.call("FS.Put", { filename: "boot.bin", offset: 4, data: b64("5678"), append: true });
    const openOn = (name: string): number =>
      readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).endsWith(`/${name}`);
        } catch {
          return false; // closed while listing
        }
      }).length;
    assert.equal(openOn("boot.bin"), 1, "the upload's handle is kept");
    await t.agent.reboot(0);
    t.reconnect(); // the reboot closed the test's channel
    await sleep(50); // closes are not awaited by the reboot
    assert.equal(openOn("boot.bin"), 0);
  });

  it("a kept file swapped for a symlink out of the root is refused, never followed", async () => {
    const c = t.client;
    await c.call("FS.Put", { filename: "s.txt", offset: 0, data: b64("inside") });
    await c.call("FS.Put", { filename: "s.txt", offset: 6, data: b64("!") });
    assert.deepEqual(await c.call("FS.Get", { filename: "s.txt" }), { data: b64("inside!"), left: 0 });
    await unlink(path("s.txt"));
    await symlink(join(outside, "secret.txt"), path("s.txt"));
    const e1 = await deviceError(c.call("FS.Get", { filename: "s.txt" }));
    assert.equal(e1.code, 400);
    assert.match(e1.message, /outside/);
    const e2 = await deviceError(c.call("FS.Put", { filename: "s.txt", offset: 1, data: b64("X") }));
    assert.equal(e2.code, 400);
    assert.equal(await readFile(join(outside, "secret.txt"), "utf8"), "secret");
  });
});

describe("FsHandles", () => {
  let dir: string;
  before(async () => {
    dir = await tempDir("remos-handles-");
    for (let i = 0; i < 6; i++) await writeFile(join(dir, `f${i}`), `file ${i}`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps at most `max` handles and closes idle ones", async () => {
    const root = new FsRoot(dir);
    const handles = new FsHandles({ max: 2, idleMs: 60 });
    const base = openFds();
    for (let i = 0; i < 6; i++) {
      const h = await handles.acquire(root, `f${i}`, "read", (p) => open(p, "r"));
      assert.ok(!("notAFile" in h));
      const buf = Buffer.alloc(6);
      await h.fh.read(buf, 0, 6, 0);
      assert.equal(buf.toString(), `file ${i}`);
      await h.release();
    }
    await sleep(20); // closes of evicted handles are not awaited by acquire
    assert.ok(openFds() - base <= 2, `${openFds() - base} handles kept`);
    const deadline = Date.now() + 5000;
    while (openFds() > base && Date.now() < deadline) await sleep(30);
    assert.equal(openFds(), base, "idle handles are closed");
  });

  it("reuses a kept handle for the same file and closes a dropped one only when its user is done", async () => {
    const root = new FsRoot(dir);
    const handles = new FsHandles({ max: 4, idleMs: 10_000 });
    const a = await handles.acquire(root, "f0", "read", (p) => open(p, "r"));
    const b = await handles.acquire(root, "f0", "read", (p) => open(p, "r"));
    assert.ok(!("notAFile" in a) && !("notAFile" in b));
    assert.equal(a.fh, b.fh);
    handles.forgetPath(a.path);
    const buf = Buffer.alloc(6);
    await b.fh.read(buf, 0, 6, 0); // still open: b has not released it
    assert.equal(buf.toString(), "file 0");
    await a.release();
    await b.release();
    await assert.rejects(b.fh.read(buf, 0, 6, 0)); // closed now
    const d = await handles.acquire(root, ".", "read", (p) => open(p, "r"));
    assert.deepEqual(d, { notAFile: true });
    handles.closeAll();
  });

  it("concurrent requests for a file that is not kept share one open", async () => {
    const root = new FsRoot(dir);
    const handles = new FsHandles({ max: 4, idleMs: 10_000 });
    let opens = 0;
    const opener = (p: string) => {
      opens++;
      return open(p, "r");
    };
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => handles.acquire(root, i % 2 ? "f1" : "./f1", "read", opener)));
    assert.equal(opens, 1);
    const lent = got.map((g) => {
      assert.ok(!("notAFile" in g));
      return g;
    });
    assert.ok(lent.every((g) => g.fh === lent[0].fh));
    for (const g of lent) await g.release();
    const buf = Buffer.alloc(6);
    await lent[0].fh.read(buf, 0, 6, 0); // kept: still open after every user released it
    assert.equal(buf.toString(), "file 1");
    handles.closeAll();
  });

  it("when the shared open fails, each waiting request opens the file itself and gets its own error", async () => {
    const root = new FsRoot(dir);
    const handles = new FsHandles({ max: 4, idleMs: 10_000 });
    const failing = (tag: string) => async (): Promise<never> => {
      await sleep(5);
      throw new Error(`open failed for ${tag}`);
    };
    const results = await Promise.allSettled(["a", "b", "c"].map((tag) => handles.acquire(root, "f2", "read", failing(tag))));
    assert.deepEqual(
      results.map((r) => (r.status === "rejected" ? (r.reason as Error).message : "fulfilled")),
      ["open failed for a", "open failed for b", "open failed for c"],
    );
    // a directory is refused for every request sharing the open
    const dirs = await Promise.all([0, 1, 2].map(() => handles.acquire(root, ".", "read", (p) => open(p, "r"))));
    assert.deepEqual(dirs, [{ notAFile: true }, { notAFile: true }, { notAFile: true }]);
    // and a file that works afterwards is opened normally
    const ok = await handles.acquire(root, "f2", "read", (p) => open(p, "r"));
    assert.ok(!("notAFile" in ok));
    await ok.release();
    handles.closeAll();
  });

  it("a request waiting on a shared open of a file replaced meanwhile opens the new file", async () => {
    const root = new FsRoot(dir);
    const handles = new FsHandles({ max: 4, idleMs: 10_000 });
    await writeFile(join(dir, "swap"), "old!!!");
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const first = handles.acquire(root, "swap", "read", async (p) => {
      const fh = await open(p, "r");
      await gate; // the file is replaced while this open is under way
      return fh;
    });
    const second = handles.acquire(root, "swap", "read", (p) => open(p, "r"));
    await sleep(10);
    await writeFile(join(dir, "swap.new"), "new!!!");
    await rename(join(dir, "swap.new"), join(dir, "swap"));
    release();
    const [a, b] = await Promise.all([first, second]);
    assert.ok(!("notAFile" in a) && !("notAFile" in b));
    assert.notEqual(a.fh, b.fh);
    const buf = Buffer.alloc(6);
    await b.fh.read(buf, 0, 6, 0);
    assert.equal(buf.toString(), "new!!!");
    await a.release();
    await b.release();
    handles.closeAll();
  });
});
