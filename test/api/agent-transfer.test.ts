/**
 * The API's transfer paths against the real device agent (not a fake): the agent serves FS.Sha256, so
 * put/get are verified by the device's checksum, and interrupted transfers resume from the prefix it proves.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Device, connect } from "../../src/api/device.js";
import { type TestDevice, startTestDevice } from "../device/helpers.js";

describe("transfers against the real agent (FS.Sha256)", () => {
  let t: TestDevice;
  let dev: Device;
  let tmp: string;
  before(async () => {
    t = await startTestDevice({ loopbackName: true, id: `xfer_${process.pid}` });
    dev = await connect(`loopback://${t.agent.id}`, { timeoutMs: 10_000 });
    tmp = mkdtempSync(join(tmpdir(), "remos-api-agent-"));
  });
  after(async () => {
    await dev?.close();
    await t?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("the agent is seen as a remos device with FS.Sha256; sha256() matches the file", async () => {
    const caps = await dev.capabilities();
    assert.equal(caps.fsSha256, true);
    assert.equal(caps.remos, true);
    await writeFile(join(t.agent.fsRoot, "h.txt"), "hello");
    const r = await dev.fs.sha256("h.txt", { offset: 1, len: 3 });
    assert.deepEqual(r, { sha256: createHash("sha256").update("ell").digest("hex"), size: 5, offset: 1, len: 3 });
  });

  it("upload from disk is verified by the device checksum; an interrupted one resumes from the proven prefix", async () => {
    const data = randomBytes(600_000);
    const local = join(tmp, "up.bin");
    writeFileSync(local, data);
    const r = await dev.fs.upload(local, "up.bin", { chunkSize: 30_000 });
    assert.equal(r.verified, "sha256");
    assert.ok((await readFile(join(t.agent.fsRoot, "up.bin"))).equals(data));
    // As if the upload had been cut: the device holds a prefix that ends mid-chunk, plus a hole.
    await truncate(join(t.agent.fsRoot, "up.bin"), 400_000);
    const bytes = await readFile(join(t.agent.fsRoot, "up.bin"));
    bytes.fill(0, 250_000, 280_000);
    await writeFile(join(t.agent.fsRoot, "up.bin"), bytes);
    const again = await dev.fs.upload(local, "up.bin", { chunkSize: 30_000, window: 2 });
    assert.equal(again.resumedFrom, 240_000);
    assert.equal(again.verified, "sha256");
    assert.ok((await readFile(join(t.agent.fsRoot, "up.bin"))).equals(data));
  });

  it("download verifies by FS.Sha256 and resumes a .part; a .part of another file is not trusted", async () => {
    const data = randomBytes(500_000);
    await writeFile(join(t.agent.fsRoot, "down.bin"), data);
    const out = join(tmp, "down.bin");
    writeFileSync(out + ".part", data.subarray(0, 123_456));
    const r = await dev.fs.download("down.bin", out, { chunkSize: 40_000 });
    assert.equal(r.resumedFrom, 123_456);
    assert.equal(r.verified, "sha256");
    assert.ok(readFileSync(out).equals(data));
    assert.ok(!existsSync(out + ".part"));

    const out2 = join(tmp, "down2.bin");
    writeFileSync(out2 + ".part", randomBytes(100_000)); // same length class, wrong bytes
    await assert.rejects(dev.fs.download("down.bin", out2, { chunkSize: 40_000 }), (e: unknown) => (e as { code?: string }).code === "ERR_VERIFY");
    assert.ok(!existsSync(out2 + ".part"), "a .part that fails verification is removed");
    const r2 = await dev.fs.download("down.bin", out2, { chunkSize: 40_000 });
    assert.equal(r2.resumedFrom, 0);
    assert.ok(readFileSync(out2).equals(data));
  });
});
