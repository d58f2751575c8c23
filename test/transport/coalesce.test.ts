/**
 * coalesceWrites (transport/coalesce.ts), over a real Writable: the first write of a tick goes out at
 * once, small writes after it in the same tick leave together when the tick ends, and a big write (a
 * transfer chunk) flushes what is corked and goes out at once, in order.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { UNCORKED_WRITE_BYTES, coalesceWrites } from "../../src/transport/coalesce.js";

/** A Writable that records each batch its underlying write receives (one string per batch). */
function recorder(): { out: Writable; batches: string[] } {
  const batches: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      batches.push(chunk.length > 20 ? `<${chunk.length}>` : chunk.toString());
      done();
    },
    writev(chunks, done) {
      batches.push(chunks.map((c) => ((c.chunk as Buffer).length > 20 ? `<${(c.chunk as Buffer).length}>` : (c.chunk as Buffer).toString())).join("+"));
      done();
    },
  });
  return { out, batches };
}

describe("coalesceWrites", () => {
  it("first write of a tick at once, later small ones together at the end of the tick", async () => {
    const { out, batches } = recorder();
    const before = coalesceWrites(out, queueMicrotask);
    for (const s of ["a", "b", "c"]) {
      before(1);
      out.write(Buffer.from(s));
    }
    assert.deepEqual(batches, ["a"]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, ["a", "b+c"]);
  });

  it("a big write flushes the corked ones and goes out at once; small ones after it are corked again", async () => {
    const { out, batches } = recorder();
    const before = coalesceWrites(out, queueMicrotask);
    const big = Buffer.alloc(UNCORKED_WRITE_BYTES);
    const send = (b: Buffer): void => {
      before(b.length);
      out.write(b);
    };
    send(Buffer.from("a"));
    send(Buffer.from("b"));
    send(big);
    assert.deepEqual(batches, ["a", "b", `<${big.length}>`], "the corked write leaves first, then the big one, before the tick ends");
    send(big);
    send(Buffer.from("c"));
    send(Buffer.from("d"));
    assert.deepEqual(batches, ["a", "b", `<${big.length}>`, `<${big.length}>`]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, ["a", "b", `<${big.length}>`, `<${big.length}>`, "c+d"]);
  });
});
