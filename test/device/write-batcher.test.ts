/**
 * WriteBatcher (device/write-batcher.ts): one write in flight per file; writes asked for meanwhile go out
 * together (contiguous runs as one pwritev), each settles on its own, a short pwritev is finished write by
 * write, an error fails the writes it carried and no others, appends keep their order.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { WriteBatcher } from "../../src/device/write-batcher.js";

const dir = mkdtempSync(join(tmpdir(), "remos-write-batcher-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A FileHandle over a real file that counts its write calls and can be told to write short or fail. */
async function spied(name: string, flags = "w+"): Promise<{ fh: FileHandle; calls: string[]; shortBy: { n: number }; failAt: Set<number> }> {
  const fh = await open(join(dir, name), flags);
  const calls: string[] = [];
  const shortBy = { n: 0 };
  const failAt = new Set<number>();
  const realWrite = fh.write.bind(fh) as (b: Buffer, o: number, l: number, p: number | null) => Promise<{ bytesWritten: number }>;
  const realWritev = fh.writev.bind(fh);
  Object.assign(fh, {
    write: (b: Buffer, o: number, l: number, p: number | null) => {
      calls.push(`write@${p}`);
      if (p !== null && failAt.has(p)) return Promise.reject(Object.assign(new Error("EIO"), { code: "EIO" }));
      return realWrite(b, o, l, p);
    },
    writev: async (bufs: Buffer[], p: number) => {
      calls.push(`writev@${p}x${bufs.length}`);
      if (failAt.has(p)) throw Object.assign(new Error("EIO"), { code: "EIO" });
      if (shortBy.n > 0) {
        // write all but the last shortBy.n bytes, as a short pwritev would
        const all = Buffer.concat(bufs);
        const n = all.length - shortBy.n;
        shortBy.n = 0;
        await realWrite(all, 0, n, p);
        return { bytesWritten: n, buffers: bufs };
      }
      return realWritev(bufs, p);
    },
  });
  return { fh, calls, shortBy, failAt };
}

describe("WriteBatcher", () => {
  it("joins the writes asked for while one is in flight: contiguous runs in one pwritev, in any arrival order", async () => {
    const { fh, calls } = await spied("a.bin");
    const w = new WriteBatcher(fh);
    const data = randomBytes(40 * 1000);
    const order = Array.from({ length: 40 }, (_, i) => i).sort((a, b) => ((a * 7) % 11) - ((b * 7) % 11));
    await Promise.all(order.map((k) => w.write(data.subarray(k * 1000, (k + 1) * 1000), k * 1000)));
    await fh.close();
    assert.ok(readFileSync(join(dir, "a.bin")).equals(data));
    assert.equal(calls[0].startsWith("write@"), true, "the first write goes out alone, at once");
    assert.ok(calls.length <= 3, `40 writes in ${calls.length} calls: ${calls.join(" ")}`);
  });

  it("a short pwritev settles what it covered and writes the rest one by one", async () => {
    const { fh, calls, shortBy } = await spied("b.bin");
    const w = new WriteBatcher(fh);
    const data = randomBytes(5000);
    const first = w.write(data.subarray(0, 1000), 0);
    shortBy.n = 1500; // the run 1000..5000 comes up 1500 bytes short: [1000,2000),[2000,3000) whole, [3000,4000) half
    const rest = [1, 2, 3, 4].map((k) => w.write(data.subarray(k * 1000, (k + 1) * 1000), k * 1000));
    await Promise.all([first, ...rest]);
    await fh.close();
    assert.ok(readFileSync(join(dir, "b.bin")).equals(data));
    assert.deepEqual(calls, ["write@0", "writev@1000x4", "write@3500", "write@4000"]);
  });

  it("an error fails the writes of that call, and only those", async () => {
    const { fh, failAt } = await spied("c.bin");
    const w = new WriteBatcher(fh);
    failAt.add(2000);
    const first = w.write(Buffer.alloc(1000, 1), 0);
    const gap = w.write(Buffer.alloc(1000, 2), 2000); // its own run: 1000..2000 is not asked for
    const later = w.write(Buffer.alloc(1000, 3), 2000 + 1000);
    const other = w.write(Buffer.alloc(500, 4), 5000);
    await first;
    await assert.rejects(gap, /EIO/);
    await assert.rejects(later, /EIO/, "joined with the failing write");
    await other;
    await fh.close();
    assert.equal(readFileSync(join(dir, "c.bin"))[5000], 4);
  });

  it("appends (no position) keep their order and are not joined", async () => {
    const { fh, calls } = await spied("d.bin", "a");
    const w = new WriteBatcher(fh);
    await Promise.all(["1", "2", "3", "4"].map((s) => w.write(Buffer.from(s), null)));
    await fh.close();
    assert.equal(readFileSync(join(dir, "d.bin"), "utf8"), "1234");
    assert.deepEqual(calls, ["write@null", "write@null", "write@null", "write@null"]);
  });
});
