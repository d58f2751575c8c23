/**
 * FileSink (api/sinks.ts): chunks written in any order are hashed in offset order as they are written (no
 * read-back of the whole download at its end), a resumed `.part` file's prefix is hashed once at open, a
 * restart starts the hash over, and a download with a gap cannot finish.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FileSink } from "../../src/api/sinks.js";
import { IoError } from "../../src/errors.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const dir = mkdtempSync(join(tmpdir(), "remos-file-sink-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Offsets of `size` bytes in `chunk`-byte pieces, in a scrambled order. */
function scrambled(size: number, chunk: number, from = 0): number[] {
  const offsets: number[] = [];
  for (let o = from; o < size; o += chunk) offsets.push(o);
  return offsets.sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13));
}

describe("FileSink", () => {
  it("hashes chunks that arrive out of order as it writes them; the hash does not come from reading the file back", async () => {
    const data = randomBytes(100_003);
    const path = join(dir, "a.bin");
    const sink = await FileSink.open(path);
    assert.equal(sink.start, 0);
    for (const o of scrambled(data.length, 9_999)) await sink.write(o, Buffer.from(data.subarray(o, o + 9_999)));
    await sink.finish(data.length);
    assert.ok(readFileSync(sink.partPath).equals(data));
    writeFileSync(sink.partPath, randomBytes(data.length)); // what was written is what counts
    assert.equal(await sink.sha256(), sha(data));
  });

  it("a resumed .part file's prefix is part of the hash", async () => {
    const data = randomBytes(50_000);
    const path = join(dir, "b.bin");
    writeFileSync(path + ".part", data.subarray(0, 20_000));
    const sink = await FileSink.open(path);
    assert.equal(sink.start, 20_000);
    for (const o of scrambled(data.length, 7_000, 20_000)) await sink.write(o, Buffer.from(data.subarray(o, Math.min(o + 7_000, data.length))));
    await sink.finish(data.length);
    assert.equal(await sink.sha256(), sha(data));
    await sink.commit();
    assert.ok(readFileSync(path).equals(data));
  });

  it("a restart starts the hash over; a gap cannot finish", async () => {
    const data = randomBytes(30_000);
    const path = join(dir, "c.bin");
    writeFileSync(path + ".part", randomBytes(10_000)); // not the file's bytes
    const sink = await FileSink.open(path);
    await sink.restart();
    assert.equal(sink.start, 0);
    await sink.write(0, Buffer.from(data.subarray(0, 10_000)));
    await sink.write(20_000, Buffer.from(data.subarray(20_000)));
    await assert.rejects(sink.finish(data.length), IoError);
    await sink.write(10_000, Buffer.from(data.subarray(10_000, 20_000)));
    await sink.finish(data.length);
    assert.equal(await sink.sha256(), sha(data));
    assert.ok(readFileSync(sink.partPath).equals(data));
  });
});
