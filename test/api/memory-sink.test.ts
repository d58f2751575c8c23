/**
 * MemorySink (api/sinks.ts): chunks decoded in place from base64 or given as Buffers, in any order, end up
 * as the file with its SHA-256 computed on the way; a restart forgets everything; a chunk past the end of
 * the announced size is refused.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { MemorySink } from "../../src/api/sinks.js";
import { IoError } from "../../src/errors.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("MemorySink", () => {
  it("assembles chunks that arrive out of order, base64 and Buffers mixed, and hashes them in order", async () => {
    const data = randomBytes(100_003);
    const size = data.length;
    const chunk = 9_999;
    const offsets: number[] = [];
    for (let o = 0; o < size; o += chunk) offsets.push(o);
    offsets.reverse().sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13));
    const sink = new MemorySink();
    for (const [i, o] of offsets.entries()) {
      const piece = data.subarray(o, Math.min(size, o + chunk));
      if (i % 3 === 0) await sink.write(o, Buffer.from(piece));
      else assert.equal(await sink.writeBase64(o, piece.toString("base64"), piece.length, size), piece.length);
    }
    await sink.finish(size);
    assert.ok(sink.buffer().equals(data));
    assert.equal(await sink.sha256(), sha(data));
  });

  it("refuses to finish with a gap, forgets everything on restart, refuses a chunk past the end", async () => {
    const sink = new MemorySink();
    await sink.writeBase64(0, Buffer.from("abc").toString("base64"), 3, 6);
    await assert.rejects(sink.finish(6), IoError);
    await sink.restart();
    await assert.rejects(sink.writeBase64(4, Buffer.from("abc").toString("base64"), 3, 6), IoError);
    const empty = new MemorySink();
    assert.equal(await empty.writeBase64(0, "", 0, 0), 0);
    await empty.finish(0);
    assert.equal(empty.buffer().length, 0);
    assert.equal(await empty.sha256(), sha(Buffer.alloc(0)));
  });
});
