/**
 * The upload's running SHA-256 (device/write-digest.ts): FS.Sha256 of a file just uploaded is answered from
 * it only when it provably describes the file on disk; any other write, a rewritten chunk, a failed write
 * or a change behind the agent's back makes FS.Sha256 read the file as before.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { appendFile, readFile, rename, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Device, connect } from "../../src/api/device.js";
import { WriteDigest } from "../../src/device/write-digest.js";
import { stopHashThreadForTests } from "../../src/sha256-stream.js";
import { addLogSink } from "../../src/log.js";
import { type TestDevice, b64, startTestDevice } from "./helpers.js";

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** A stat as WriteDigest reads it. */
function st(size: number, mtimeMs = 1000, ctimeMs = mtimeMs, ino = 7): Stats {
  return { dev: 1, ino, size, mtimeMs, ctimeMs } as Stats;
}

/** Write `data` at `offset` as FS.Put does: begin with the current stat, end with the stat after. */
function write(d: WriteDigest, before: Stats, offset: number, data: Buffer, after: Stats): void {
  d.begin(() => before);
  d.end(offset, data, after);
}

describe("WriteDigest", () => {
  const a = Buffer.from("hello ");
  const b = Buffer.from("wide ");
  const c = Buffer.from("world");
  const whole = Buffer.concat([a, b, c]);

  it("hashes chunks in offset order, whatever order they end in", async () => {
    const d = new WriteDigest(st(0));
    d.begin(() => st(0));
    d.begin(() => undefined); // ours under way: not looked at
    d.begin(() => undefined);
    d.end(11, c, st(16, 1001));
    d.end(0, a, st(16, 1002));
    assert.equal(d.sha256(st(16, 1002)), undefined, "a chunk still under way");
    d.end(6, b, st(16, 1003));
    assert.equal(await d.sha256(st(16, 1003)), sha(whole));
    write(d, st(16, 1003), 16, Buffer.from("!"), st(17, 1004));
    assert.equal(await d.sha256(st(17, 1004)), sha(Buffer.concat([whole, Buffer.from("!")])), "the file grew: hashing goes on");
  });

  it("a big upload (hashed on the hashing thread past its first MiB) gives the same digest, and goes on after one", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const d = new WriteDigest(st(0));
    let last = st(0);
    let size = 0;
    let t = 2000;
    const put = (o: number, bytes: Buffer): void => {
      size = Math.max(size, o + bytes.length);
      const after = st(size, t++);
      write(d, last, o, bytes, after);
      last = after;
    };
    const piece = 100_000;
    const offsets: number[] = [];
    for (let o = 0; o < data.length; o += piece) offsets.push(o);
    // chunks end in any order within a window of 8
    for (let w = 0; w < offsets.length; w += 8) for (const o of offsets.slice(w, w + 8).reverse()) put(o, data.subarray(o, o + piece));
    assert.equal(await d.sha256(last), sha(data));
    put(data.length, Buffer.from("more"));
    assert.equal(await d.sha256(last), sha(Buffer.concat([data, Buffer.from("more")])), "the file grew: hashing goes on");
  });

  it("answers nothing for a file that is not the one it hashed", async () => {
    const d = new WriteDigest(st(0));
    write(d, st(0), 0, whole, st(16, 1001));
    assert.equal(await d.sha256(st(16, 1001)), sha(whole));
    assert.equal(d.sha256(st(16, 1001, 1002)), undefined, "changed ctime");
    assert.equal(d.sha256(st(16, 1005)), undefined, "changed mtime");
    assert.equal(d.sha256(st(17, 1001)), undefined, "other size");
    assert.equal(d.sha256(st(16, 1001, 1001, 8)), undefined, "other inode");
    assert.equal(await d.sha256(st(16, 1001)), sha(whole), "still right for the file it hashed");
  });

  it("gives up for good: a change between our writes, a byte written twice, a failed write, a gap never filled", () => {
    const between = new WriteDigest(st(0));
    write(between, st(0), 0, a, st(6, 1001));
    write(between, st(6, 1009), 6, b, st(11, 1010)); // someone wrote in between
    assert.equal(between.sha256(st(11, 1010)), undefined);
    assert.equal(between.valid, false);

    const twice = new WriteDigest(st(0));
    write(twice, st(0), 0, a, st(6, 1001));
    write(twice, st(6, 1001), 0, a, st(6, 1002)); // a retried chunk
    assert.equal(twice.sha256(st(6, 1002)), undefined);

    const failed = new WriteDigest(st(0));
    failed.begin(() => st(0));
    failed.end(0, undefined, st(3, 1001));
    assert.equal(failed.valid, false);

    const gap = new WriteDigest(st(0));
    write(gap, st(0), 0, a, st(6, 1001));
    write(gap, st(6, 1001), 11, c, st(16, 1002));
    assert.equal(gap.sha256(st(16, 1002)), undefined, "bytes 6..11 never written through it");

    const notEmpty = new WriteDigest(st(5));
    assert.equal(notEmpty.valid, false, "a file that was not truncated to nothing");
  });
});

describe("FS.Sha256 right after an upload", () => {
  let t: TestDevice;
  let dev: Device;
  let answeredFromDigest = 0;
  let off: () => void;
  before(async () => {
    t = await startTestDevice({ loopbackName: true, id: `digest_${process.pid}` });
    dev = await connect(`loopback://${t.agent.id}`, { timeoutMs: 10_000 });
    off = addLogSink((e) => {
      if (e.message.startsWith("FS.Sha256: answered from the upload's running digest")) answeredFromDigest++;
    });
  });
  after(async () => {
    off();
    await dev?.close();
    await t?.close();
  });
  const path = (name: string): string => join(t.agent.fsRoot, name);
  const chunks = (data: Buffer, size: number): { offset: number; data: string }[] => {
    const out = [];
    for (let o = 0; o < data.length; o += size) out.push({ offset: o, data: b64(data.subarray(o, o + size)) });
    return out;
  };
  /** Upload as the API does: offset 0 first, then the rest in parallel (they may end in any order). */
  async function upload(name: string, data: Buffer): Promise<void> {
    const [first, ...rest] = chunks(data, 1000);
    await t.client.call("FS.Put", { filename: name, ...first });
    await Promise.all(rest.reverse().map((ch) => t.client.call("FS.Put", { filename: name, ...ch, append: true })));
  }
  async function sha256Of(name: string): Promise<{ sha256: string; fromDigest: boolean }> {
    const before = answeredFromDigest;
    const r = await t.client.call<{ sha256: string; size: number }>("FS.Sha256", { filename: name });
    return { sha256: r.sha256, fromDigest: answeredFromDigest > before };
  }

  it("answers from the digest, and it is the file's checksum", async () => {
    const data = randomBytes(20_500);
    await upload("u.bin", data);
    assert.deepEqual(await sha256Of("u.bin"), { sha256: sha(data), fromDigest: true });
    assert.equal(sha(await readFile(path("u.bin"))), sha(data));
    // a range is read from the file
    const r = await t.client.call<{ sha256: string }>("FS.Sha256", { filename: "u.bin", offset: 0, len: 100 });
    assert.equal(r.sha256, sha(data.subarray(0, 100)));
  });

  it("a big upload is answered from the hashing thread, and from the file when that thread died", async () => {
    const data = randomBytes(2 * 1024 * 1024 + 3);
    const bigUpload = async (name: string): Promise<void> => {
      const [first, ...rest] = chunks(data, 100_000);
      await t.client.call("FS.Put", { filename: name, ...first });
      await Promise.all(rest.map((ch) => t.client.call("FS.Put", { filename: name, ...ch, append: true })));
    };
    await bigUpload("big1.bin");
    assert.deepEqual(await sha256Of("big1.bin"), { sha256: sha(data), fromDigest: true });
    await bigUpload("big2.bin");
    await stopHashThreadForTests();
    assert.deepEqual(await sha256Of("big2.bin"), { sha256: sha(data), fromDigest: false });
  });

  it("reads the file when it changed behind the agent's back, even to the same size and times", async () => {
    const data = randomBytes(5000);
    await upload("x.bin", data);
    const other = randomBytes(5000);
    const before = await stat(path("x.bin"));
    await writeFile(path("x.bin"), other);
    await utimes(path("x.bin"), before.atime, before.mtime); // mtime set back (to the ms); ctime still moves
    assert.deepEqual(await sha256Of("x.bin"), { sha256: sha(other), fromDigest: false });

    await upload("z.bin", data);
    await writeFile(path("z.tmp"), other);
    await rename(path("z.tmp"), path("z.bin")); // another file (inode) under the name, same size
    assert.deepEqual(await sha256Of("z.bin"), { sha256: sha(other), fromDigest: false });

    await upload("y.bin", data);
    await appendFile(path("y.bin"), "more");
    assert.deepEqual(await sha256Of("y.bin"), { sha256: sha(Buffer.concat([data, Buffer.from("more")])), fromDigest: false });
  });

  it("reads the file after a chunk was written again, or an append or whole-file FS.Put", async () => {
    const data = randomBytes(3000);
    await upload("w.bin", data);
    await t.client.call("FS.Put", { filename: "w.bin", offset: 1000, data: b64(data.subarray(1000, 2000)), append: true });
    assert.deepEqual(await sha256Of("w.bin"), { sha256: sha(data), fromDigest: false });

    await upload("a.bin", data);
    await t.client.call("FS.Put", { filename: "a.bin", data: b64(Buffer.from("tail")), append: true });
    assert.deepEqual(await sha256Of("a.bin"), { sha256: sha(Buffer.concat([data, Buffer.from("tail")])), fromDigest: false });

    await upload("o.bin", data);
    const small = Buffer.from("replaced");
    await t.client.call("FS.Put", { filename: "o.bin", data: b64(small) });
    assert.deepEqual(await sha256Of("o.bin"), { sha256: sha(small), fromDigest: false });
  });

  it("reads the file after a write to it under another name: ./name, a symlink", async () => {
    const data = randomBytes(3000);
    const patch = randomBytes(500);
    const expected = Buffer.from(data);
    patch.copy(expected, 100);
    await upload("al.bin", data);
    await t.client.call("FS.Put", { filename: "./al.bin", offset: 100, data: b64(patch), append: true });
    assert.deepEqual(await sha256Of("al.bin"), { sha256: sha(expected), fromDigest: false });

    await upload("target.bin", data);
    await symlink("target.bin", path("link.bin"));
    await t.client.call("FS.Put", { filename: "link.bin", offset: 100, data: b64(patch), append: true });
    assert.deepEqual(await sha256Of("target.bin"), { sha256: sha(expected), fromDigest: false });
  });

  it("is never wrong when uploads and whole-file writes of one file race", async () => {
    for (let round = 0; round < 5; round++) {
      const a = randomBytes(20_000);
      const b = randomBytes(20_000);
      await Promise.all([
        upload("race.bin", a),
        round % 2 ? upload("./race.bin", b) : t.client.call("FS.Put", { filename: "race.bin", data: b64(b) }),
      ]);
      const onDisk = await readFile(path("race.bin"));
      assert.equal((await sha256Of("race.bin")).sha256, sha(onDisk), `round ${round}`);
    }
  });

  it("the API's upload is verified by it, and a download of the file still compares with the device", async () => {
    const data = randomBytes(300_000);
    const before = answeredFromDigest;
    const r = await dev.fs.put("api.bin", data, { chunkSize: 4096, window: 8, resume: false });
    assert.equal(r.verified, "sha256");
    assert.equal(r.sha256, sha(data));
    assert.equal(answeredFromDigest, before + 1);
    assert.ok((await dev.fs.get("api.bin")).equals(data));
  });
});
