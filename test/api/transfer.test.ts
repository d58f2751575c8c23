import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { OFFLOAD_MIN_BYTES } from "../../src/sha256-stream.js";
import { chunkSizeFor, chunksOf, LEGACY_CHUNK_SIZE } from "../../src/api/transfer.js";
import { DeviceError, RpcError, VerifyError } from "../../src/errors.js";
import { type Fake, type FakeOptions, startFake } from "./fake-fs-device.js";

const fakes: Fake[] = [];
function fake(o: FakeOptions = {}): Fake {
  const f = startFake(o);
  fakes.push(f);
  return f;
}
after(async () => {
  for (const f of fakes) await f.close();
});

describe("chunk sizing", () => {
  it("leaves room for base64 and the envelope, stays under a 4 KB UART frame, caps big channels", () => {
    const uart = chunkSizeFor({ maxFrameSize: 4096 });
    assert.ok(uart % 3 === 0);
    assert.ok(Math.ceil(uart / 3) * 4 + 640 <= 4096);
    assert.ok(uart > 2000);
    assert.equal(chunkSizeFor({ maxFrameSize: 10 * 1024 * 1024 }), 256 * 1024);
    // HTTP/WS (1 MiB frames) get the cap; MQTT (256 KiB frames) gets what fits its frame.
    assert.equal(chunkSizeFor({ maxFrameSize: 1024 * 1024 }), 256 * 1024);
    const mqtt = chunkSizeFor({ maxFrameSize: 256 * 1024 }, 40);
    assert.ok(mqtt % 3 === 0 && Math.ceil(mqtt / 3) * 4 + 640 + 80 <= 256 * 1024 && mqtt > 190 * 1024);
  });
  it("cuts a range into absolute chunks", () => {
    assert.deepEqual(chunksOf(10, 25, 6), [
      { offset: 10, length: 6, index: 0 },
      { offset: 16, length: 6, index: 1 },
      { offset: 22, length: 3, index: 2 },
    ]);
  });
});

describe("put/get on a remos device (FS.Sha256)", () => {
  it("on a channel of big frames: 90 KiB chunks (frames under V8's 128 KiB large-object size) and a window holding 2 MiB", async () => {
    const f = fake({ sha256: true, maxFrameSize: 1024 * 1024 });
    const data = randomBytes(1024 * 1024 + 5);
    const r = await f.device.fs.put("w.bin", data);
    assert.deepEqual([r.chunkSize, r.window], [92160, 23]);
    assert.ok(f.calls.every((c) => c.method !== "FS.Put" || String(c.params.data).length + 200 < 128 * 1024));
    assert.ok(f.maxInFlight > 8, `max in flight ${f.maxInFlight}`);
    assert.ok(f.files.get("w.bin")?.equals(data));
    // what the caller asks for is kept
    const e = await f.device.fs.put("w.bin", data, { window: 4 });
    assert.deepEqual([e.chunkSize, e.window], [92160, 4]);
    const c = await f.device.fs.put("w.bin", data, { chunkSize: 200_001 });
    assert.deepEqual([c.chunkSize, c.window], [200_001, 8]);
    assert.ok(f.files.get("w.bin")?.equals(data));
  });

  it("round-trips 300 KB with a window of chunks in flight and verifies by SHA-256", async () => {
    const f = fake({ sha256: true, maxFrameSize: 16 * 1024 });
    const data = randomBytes(300 * 1024 + 7);
    const progress: number[] = [];
    const r = await f.device.fs.put("big.bin", data, { onProgress: (p) => progress.push(p.done) });
    assert.equal(r.verified, "sha256");
    assert.equal(r.window, 8);
    assert.ok(f.maxInFlight > 1, `max in flight ${f.maxInFlight}`);
    assert.ok(f.files.get("big.bin")?.equals(data));
    assert.equal(progress[progress.length - 1], data.length);
    const back = await f.device.fs.get("big.bin");
    assert.ok(back.equals(data));
  });

  it("writes the first chunk at offset 0 before any other chunk goes out", async () => {
    const f = fake({ sha256: true, maxFrameSize: 4096 });
    f.files.set("x.bin", randomBytes(100_000)); // a longer old file must be truncated
    const data = randomBytes(20_000);
    await f.device.fs.put("x.bin", data, { resume: false });
    const puts = f.calls.filter((c) => c.method === "FS.Put");
    assert.equal(puts[0].params.offset, 0);
    assert.equal(puts[0].params.append, false);
    assert.ok(f.files.get("x.bin")?.equals(data));
  });

  it("creates an empty file (mos sends nothing for 0 bytes)", async () => {
    const f = fake({ sha256: true });
    await f.device.fs.put("empty", Buffer.alloc(0));
    assert.equal(f.files.get("empty")?.length, 0);
  });

  it("retries failed chunks with new ids and succeeds", async () => {
    const failed = new Set<number>();
    const f = fake({
      sha256: true,
      maxFrameSize: 4096,
      inject: (m, p) => {
        const off = p.offset as number;
        if (m === "FS.Put" && off > 0 && off % 3 === 0 && !failed.has(off)) {
          failed.add(off);
          throw new RpcError(500, "failed to write data");
        }
      },
    });
    const data = randomBytes(60_000);
    await f.device.fs.put("r.bin", data);
    assert.ok(failed.size > 0);
    assert.ok(f.files.get("r.bin")?.equals(data));
  });

  it("retries a chunk that timed out", async () => {
    let slow = true;
    const f = fake({
      sha256: true,
      timeoutMs: 150,
      inject: (m, p) => {
        if (m === "FS.Get" && (p.offset as number) > 0 && slow) {
          slow = false;
          return 400;
        }
      },
    });
    const data = randomBytes(200_000);
    f.files.set("t.bin", data);
    const back = await f.device.fs.get("t.bin", { chunkSize: 30_000 });
    assert.ok(back.equals(data));
  });

  it("gives up after --fs-op-attempts and names the chunk", async () => {
    const f = fake({ sha256: true, inject: (m, p) => { if (m === "FS.Put" && p.offset === 4096) throw new RpcError(500, "failed to write data"); } });
    await assert.rejects(f.device.fs.put("a.bin", randomBytes(10_000), { chunkSize: 4096, attempts: 2 }), (e: unknown) => {
      assert.ok(e instanceof DeviceError);
      assert.equal(e.step, "chunk at offset 4096");
      assert.match(e.message, /device error 500: failed to write data/);
      return true;
    });
    assert.equal(f.calls.filter((c) => c.method === "FS.Put" && c.params.offset === 4096).length, 2);
  });

  it("does not retry errors retrying cannot fix (400)", async () => {
    const f = fake({ sha256: true, inject: (m) => { if (m === "FS.Get") throw new RpcError(400, "bad"); } });
    f.files.set("a", Buffer.from("hello"));
    await assert.rejects(f.device.fs.get("a"), DeviceError);
    // one call per chunk of the first window (asked for at once), none of them retried
    const gets = f.calls.filter((c) => c.method === "FS.Get").map((c) => c.params.offset as number);
    assert.equal(gets.length, new Set(gets).size);
    assert.equal(gets.filter((off) => off === 0).length, 1);
  });

  it("resumes an interrupted upload after a proven prefix", async () => {
    const f = fake({ sha256: true });
    const data = randomBytes(100_000);
    f.files.set("res.bin", Buffer.from(data.subarray(0, 40_000)));
    const r = await f.device.fs.put("res.bin", data, { chunkSize: 10_000, window: 2 });
    assert.equal(r.resumedFrom, 40_000);
    assert.equal(f.calls.filter((c) => c.method === "FS.Put").length, 6);
    assert.ok(f.files.get("res.bin")?.equals(data));
  });

  it("resumes before the holes an interrupted window leaves", async () => {
    const f = fake({ sha256: true });
    const data = randomBytes(100_000);
    const partial = Buffer.alloc(70_000);
    data.copy(partial, 0, 0, 50_000);
    data.copy(partial, 60_000, 60_000, 70_000); // chunk 50000..60000 never arrived
    f.files.set("hole.bin", partial);
    const r = await f.device.fs.put("hole.bin", data, { chunkSize: 10_000, window: 2 });
    assert.equal(r.resumedFrom, 50_000);
    assert.ok(f.files.get("hole.bin")?.equals(data));
  });

  it("finds holes deeper than the resuming window (a bigger window was interrupted) by binary search", async () => {
    const f = fake({ sha256: true });
    const data = randomBytes(100_000);
    const partial = Buffer.alloc(80_000);
    data.copy(partial, 0, 0, 20_000);
    data.copy(partial, 30_000, 30_000, 80_000); // chunk 20000..30000 never arrived
    f.files.set("deep.bin", partial);
    const r = await f.device.fs.put("deep.bin", data, { chunkSize: 10_000, window: 2 });
    assert.equal(r.resumedFrom, 20_000);
    assert.ok(f.calls.filter((c) => c.method === "FS.Sha256").length <= 8, "a few checksum calls, not one per chunk");
    assert.ok(f.files.get("deep.bin")?.equals(data));
  });

  it("reads a ByteSource chunk by chunk (never the whole file at once) and uploads a local file from disk", async () => {
    const f = fake({ sha256: true, maxFrameSize: 64 * 1024 });
    const data = randomBytes(3 * 1024 * 1024 + 11);
    const reads: number[] = [];
    const src = { size: data.length, read: async (o: number, n: number) => (reads.push(n), data.subarray(o, o + n)) };
    const r = await f.device.fs.put("s.bin", src);
    assert.equal(r.verified, "sha256");
    assert.ok(f.files.get("s.bin")?.equals(data));
    assert.ok(Math.max(...reads) <= 1024 * 1024, `largest read ${Math.max(...reads)}`);
    const dir = mkdtempSync(join(tmpdir(), "remos-api-src-"));
    try {
      writeFileSync(join(dir, "local.bin"), data);
      const u = await f.device.fs.upload(join(dir, "local.bin"), "u.bin");
      assert.equal(u.sha256, r.sha256);
      assert.ok(f.files.get("u.bin")?.equals(data));
      await assert.rejects(f.device.fs.upload(join(dir, "missing.bin"), "m.bin"), (e: unknown) => (e as { code?: string }).code === "ERR_IO");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts over when what is on the device is a different file", async () => {
    const f = fake({ sha256: true });
    f.files.set("o.bin", randomBytes(5000));
    const data = randomBytes(20_000);
    const r = await f.device.fs.put("o.bin", data, { chunkSize: 4000 });
    assert.equal(r.resumedFrom, 0);
    assert.ok(f.files.get("o.bin")?.equals(data));
  });

  it("detects corruption on the device: VerifyError", async () => {
    const f = fake({
      sha256: true,
      inject: (m, p) => {
        if (m === "FS.Put" && p.offset === 8192) {
          const b = Buffer.from(String(p.data), "base64");
          b[10] ^= 0xff;
          p.data = b.toString("base64");
        }
      },
    });
    await assert.rejects(f.device.fs.put("c.bin", randomBytes(20_000), { chunkSize: 4096 }), (e: unknown) => {
      assert.ok(e instanceof VerifyError);
      assert.equal(e.step, "verify");
      assert.match(e.message, /SHA-256 mismatch/);
      return true;
    });
  });

  it("downloads to a file, resumes from the .part file, and discards a .part that does not match", async () => {
    const dir = mkdtempSync(join(tmpdir(), "remos-get-"));
    try {
      const f = fake({ sha256: true });
      const data = randomBytes(150_000);
      f.files.set("d.bin", data);
      const out = join(dir, "d.bin");
      writeFileSync(out + ".part", data.subarray(0, 64_000));
      const r = await f.device.fs.download("d.bin", out, { chunkSize: 16_000 });
      assert.equal(r.resumedFrom, 64_000);
      assert.equal(r.verified, "sha256");
      assert.ok(readFileSync(out).equals(data));
      assert.equal(existsSync(out + ".part"), false);

      writeFileSync(out + ".part", randomBytes(30_000));
      await assert.rejects(f.device.fs.download("d.bin", out), VerifyError);
      assert.equal(existsSync(out + ".part"), false);
      const r2 = await f.device.fs.download("d.bin", out);
      assert.equal(r2.resumedFrom, 0);
      assert.ok(readFileSync(out).equals(data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("big transfers (hashed on the worker thread) verify through every sink and still catch a changed byte", async () => {
    const f = fake({ sha256: true });
    const data = randomBytes(OFFLOAD_MIN_BYTES + 100_001);
    const up = await f.device.fs.put("w.bin", data);
    assert.equal(up.verified, "sha256");
    assert.equal(up.sha256, createHash("sha256").update(data).digest("hex"));
    assert.ok((await f.device.fs.get("w.bin")).equals(data));
    const dir = mkdtempSync(join(tmpdir(), "remos-big-"));
    try {
      const out = join(dir, "w.bin");
      assert.equal((await f.device.fs.download("w.bin", out)).verified, "sha256");
      assert.ok(readFileSync(out).equals(data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const stream = new PassThrough();
    let streamed = 0;
    stream.on("data", (d: Buffer) => (streamed += d.length));
    assert.equal((await f.device.fs.getToStream("w.bin", stream)).verified, "sha256");
    assert.equal(streamed, data.length);
    const bad = fake({
      sha256: true,
      inject: (m, p) => {
        if (m === "FS.Put" && Number(p.offset) > OFFLOAD_MIN_BYTES) {
          const b = Buffer.from(String(p.data), "base64");
          b[0] ^= 0x01;
          p.data = b.toString("base64");
        }
      },
    });
    await assert.rejects(bad.device.fs.put("w.bin", data), VerifyError);
  });

  it("streams a windowed download in order", async () => {
    const f = fake({ sha256: true });
    const data = randomBytes(120_000);
    f.files.set("s.bin", data);
    const out = new PassThrough();
    const got: Buffer[] = [];
    out.on("data", (d: Buffer) => got.push(d));
    const r = await f.device.fs.getToStream("s.bin", out, { chunkSize: 5000, window: 6 });
    assert.equal(r.size, data.length);
    assert.ok(Buffer.concat(got).equals(data));
  });
});

describe("put/get on real firmware (no FS.Sha256)", () => {
  it("falls back to 512-byte chunks, a window of 1, and verifies by reading back", async () => {
    const f = fake({ sha256: false });
    const data = randomBytes(10_000);
    const r = await f.device.fs.put("init.js", data);
    assert.equal(r.chunkSize, LEGACY_CHUNK_SIZE);
    assert.equal(r.window, 1);
    assert.equal(r.verified, "readback");
    assert.equal(f.maxInFlight, 1);
    const puts = f.calls.filter((c) => c.method === "FS.Put");
    assert.deepEqual(puts.slice(0, 2).map((c) => [c.params.offset, c.params.append]), [[0, false], [512, true]]);
    assert.ok(f.files.get("init.js")?.equals(data));
    const g = await f.device.fs.get("init.js");
    assert.ok(g.equals(data));
  });

  it("a remos agent without FS.Sha256 (mg_id remos/...) gets big chunks and a window, verified by read-back", async () => {
    const f = fake({ sha256: false, mgId: "remos/0.1.0", maxFrameSize: 16 * 1024 });
    const data = randomBytes(100_000);
    const r = await f.device.fs.put("a.bin", data);
    assert.ok(r.chunkSize > 10_000);
    assert.equal(r.window, 8);
    assert.equal(r.verified, "readback");
    assert.ok(f.files.get("a.bin")?.equals(data));
  });

  it("a remos agent without FS.Sha256 resumes after the longest prefix it reads back identical", async () => {
    const f = fake({ sha256: false, mgId: "remos/0.1.0" });
    const data = randomBytes(100_000);
    const partial = Buffer.alloc(70_000);
    data.copy(partial, 0, 0, 45_000);
    data.copy(partial, 50_000, 50_000, 70_000);
    f.files.set("p.bin", partial);
    const r = await f.device.fs.put("p.bin", data, { chunkSize: 10_000 });
    assert.equal(r.resumedFrom, 45_000);
    assert.ok(f.files.get("p.bin")?.equals(data));
  });

  it("real firmware without a checksum starts over instead of resuming", async () => {
    const f = fake({ sha256: false });
    const data = randomBytes(3000);
    f.files.set("q.bin", Buffer.from(data.subarray(0, 1000)));
    const r = await f.device.fs.put("q.bin", data);
    assert.equal(r.resumedFrom, 0);
    assert.ok(f.files.get("q.bin")?.equals(data));
  });

  it("a download from a device without a checksum starts over instead of resuming a .part", async () => {
    const dir = mkdtempSync(join(tmpdir(), "remos-get-"));
    try {
      const f = fake({ sha256: false });
      const data = randomBytes(5000);
      f.files.set("g.bin", data);
      const out = join(dir, "g.bin");
      writeFileSync(out + ".part", randomBytes(2000)); // stale bytes from an older version of the file
      const r = await f.device.fs.download("g.bin", out);
      assert.equal(r.resumedFrom, 0);
      assert.ok(readFileSync(out).equals(data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing file as the device's error", async () => {
    const f = fake();
    await assert.rejects(f.device.fs.get("nope.txt"), /device error 400: failed to open file "nope.txt"/);
  });
});
