/**
 * Sha256Stream (src/sha256-stream.ts): small streams hashed on the calling thread, big ones on the worker
 * thread, with the same digests as node:crypto for pieces that straddle its batches, also mid-stream (peek); streams interleaved
 * with each other stay apart; a dead worker fails the digest with a clear error instead of hanging; a
 * process whose big digest is done exits (the worker does not hold it open).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { OFFLOAD_MIN_BYTES, Sha256Stream, stopHashThreadForTests } from "../src/sha256-stream.js";
import { IoError } from "../src/errors.js";

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Feeds `data` in pieces of irregular sizes (1 byte to 300 KiB). */
function feed(s: Sha256Stream, data: Buffer): void {
  let at = 0;
  let k = 1;
  while (at < data.length) {
    const n = Math.min(data.length - at, (k * 104_729) % 300_000 || 1);
    s.update(data.subarray(at, at + n));
    at += n;
    k++;
  }
}

describe("Sha256Stream", () => {
  it("gives node:crypto's digest on the calling thread and on the worker thread", async () => {
    const small = randomBytes(100_000);
    const s1 = new Sha256Stream(small.length);
    feed(s1, small);
    assert.equal(await s1.digest(), sha(small));

    const big = randomBytes(OFFLOAD_MIN_BYTES + 1_234_567);
    const s2 = new Sha256Stream(big.length);
    feed(s2, big);
    const d = s2.digest();
    assert.equal(s2.digest(), d, "a second digest() is the same promise");
    assert.equal(await d, sha(big));
    assert.throws(() => s2.update(big.subarray(0, 1)));

    const empty = new Sha256Stream(OFFLOAD_MIN_BYTES);
    assert.equal(await empty.digest(), sha(Buffer.alloc(0)));
  });

  it("peek() gives the digest so far and the stream goes on, on either thread", async () => {
    const a = randomBytes(3_000_000);
    const b = randomBytes(1_000_001);
    for (const s of [new Sha256Stream(), Sha256Stream.big()]) {
      feed(s, a);
      const first = s.peek();
      feed(s, b);
      assert.equal(await first, sha(a));
      assert.equal(await s.peek(), sha(Buffer.concat([a, b])));
      assert.equal(await s.digest(), sha(Buffer.concat([a, b])));
    }
  });

  it("keeps interleaved streams apart, and the bytes fed may change once update() returns", async () => {
    const datas = [0, 1, 2].map(() => randomBytes(OFFLOAD_MIN_BYTES + 777));
    const streams = datas.map((d) => new Sha256Stream(d.length));
    const scratch = Buffer.alloc(65_536);
    for (let at = 0; at < datas[0].length; at += scratch.length) {
      for (const [i, s] of streams.entries()) {
        const n = datas[i].copy(scratch, 0, at, at + scratch.length);
        s.update(scratch.subarray(0, n));
        scratch.fill(0xaa); // a caller reusing its buffer must not change what was hashed
      }
    }
    assert.deepEqual(await Promise.all(streams.map((s) => s.digest())), datas.map(sha));
  });

  it("a digest fails with an IoError when the worker dies, and the next big stream gets a new worker", async () => {
    const data = randomBytes(OFFLOAD_MIN_BYTES);
    const s = new Sha256Stream(data.length);
    feed(s, data);
    await stopHashThreadForTests();
    await assert.rejects(s.digest(), IoError);
    const again = new Sha256Stream(data.length);
    feed(again, data);
    assert.equal(await again.digest(), sha(data));
  });

  it("a process that hashed a big stream exits without waiting for the worker", async () => {
    const root = fileURLToPath(new URL("..", import.meta.url));
    const script = `
      import { Sha256Stream, OFFLOAD_MIN_BYTES } from "./src/sha256-stream.ts";
      const s = new Sha256Stream(OFFLOAD_MIN_BYTES);
      s.update(Buffer.alloc(OFFLOAD_MIN_BYTES, 1));
      console.log(await s.digest());`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, timeout: 20_000 }, (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    assert.equal(out.trim(), sha(Buffer.alloc(OFFLOAD_MIN_BYTES, 1)));
  });
});
