import { describe, it, after, before } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeviceError } from "../../src/errors.js";
import { readBootState, resolveBoot, slotFsRoot, startCommitWatchdog } from "../../src/device/ota/boot.js";
import { makeBundle, makeSigningKey, otaFixture, pushBundle, repackBundle, treeDigest, type OtaFixture } from "../helpers/bundle.js";

const fixtures: OtaFixture[] = [];
async function fixture(...args: Parameters<typeof otaFixture>): Promise<OtaFixture> {
  const f = await otaFixture(...args);
  fixtures.push(f);
  return f;
}
after(async () => {
  for (const f of fixtures) await f.close();
});

async function seedSlot0(dir: string): Promise<void> {
  const fs0 = slotFsRoot(dir, 0);
  await writeFile(join(fs0, "conf0.json"), '{"v":1}');
  await writeFile(join(fs0, "conf9.json"), '{"user":true}');
  await writeFile(join(fs0, "app.js"), "old app");
  await mkdir(join(fs0, "data"), { recursive: true });
  await writeFile(join(fs0, "data", "log.txt"), "user data");
}

async function rpcError(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DeviceError, `expected a DeviceError, got ${String(e)}`);
    return { code: e.rpcCode, message: e.rpcMessage };
  }
  assert.fail("expected the call to fail");
}

const APP = { "app.js": "new app v2", "conf0.json": '{"v":2}', "lib/util.js": "export const x = 1;" };

describe("OTA push (Begin/Write/End)", () => {
  it("installs a bundle pushed in chunks (with a retried chunk), boots it uncommitted, then commits", async () => {
    const f = await fixture();
    await seedSlot0(f.dir);
    const { zip } = makeBundle(APP, { version: "2.0" });
    assert.equal((await f.client.call<{ state: number }>("OTA.Status")).state, 0);
    await f.client.call("OTA.Begin", { timeout: 600, commit_timeout: 300, size: zip.length });
    const chunk = 100;
    for (let off = 0; off < zip.length; off += chunk) {
      const data = Buffer.from(zip.subarray(off, off + chunk)).toString("base64");
      await f.client.call("OTA.Write", { offset: off, data });
      if (off === 200) await f.client.call("OTA.Write", { offset: off, data }); // retried (reply lost)
    }
    const st = await f.client.call<{ state: number; progress_percent: number; received: number }>("OTA.Status");
    assert.equal(st.state, 1);
    assert.equal(st.progress_percent, 100);
    assert.equal(st.received, zip.length);
    const end = await f.client.call<{ slot: number; version: string }>("OTA.End");
    assert.equal(end.slot, 1);
    assert.equal(end.version, "2.0");
    assert.deepEqual(f.reboots, [500]);
    assert.equal((await f.client.call<{ state: number }>("OTA.Status")).state, 3);
    assert.deepEqual(await f.client.call("OTA.GetBootState"), { active_slot: 1, is_committed: false, revert_slot: 0, commit_timeout: 300 });

    const boot = await resolveBoot(f.dir); // the reboot
    assert.equal(boot.slot, 1);
    assert.equal(boot.manifest.version, "2.0");
    assert.equal(await readFile(join(boot.fsRoot, "app.js"), "utf8"), "new app v2");
    assert.equal(await readFile(join(boot.fsRoot, "conf0.json"), "utf8"), '{"v":2}');
    assert.equal(await readFile(join(boot.fsRoot, "lib/util.js"), "utf8"), "export const x = 1;");
    assert.equal(await readFile(join(boot.fsRoot, "conf9.json"), "utf8"), '{"user":true}', "user config carried over");
    assert.equal(await readFile(join(boot.fsRoot, "data/log.txt"), "utf8"), "user data", "user files carried over");
    assert.equal(await readFile(join(slotFsRoot(f.dir, 0), "app.js"), "utf8"), "old app", "old slot intact");

    await f.client.call("OTA.Commit");
    assert.deepEqual(await f.client.call("OTA.GetBootState"), { active_slot: 1, is_committed: true, revert_slot: 0, commit_timeout: 300 });
    assert.equal((await resolveBoot(f.dir)).slot, 1);
    assert.equal((await resolveBoot(f.dir)).slot, 1);
  });

  it("reverts when the new firmware reboots without commit, and when commit_timeout passes while running", async () => {
    const f = await fixture();
    await seedSlot0(f.dir);
    await pushBundle(f.client, makeBundle(APP).zip);
    assert.equal((await resolveBoot(f.dir)).slot, 1);
    const again = await resolveBoot(f.dir);
    assert.equal(again.slot, 0);
    assert.equal(await readFile(join(again.fsRoot, "app.js"), "utf8"), "old app");

    await pushBundle(f.client, makeBundle(APP).zip, 512, { commit_timeout: 1 });
    const b = await resolveBoot(f.dir);
    assert.equal(b.slot, 1);
    const reboot = await new Promise<number | "none">((resolve) => {
      const keep = setTimeout(() => resolve("none"), 5000);
      const w = startCommitWatchdog(f.dir, (ms) => {
        clearTimeout(keep);
        w.stop();
        resolve(ms);
      });
    });
    assert.equal(reboot, 100);
    assert.equal((await resolveBoot(f.dir)).slot, 0);
  });

  it("OTA.Revert switches back and reboots in 100 ms", async () => {
    const f = await fixture();
    await seedSlot0(f.dir);
    await pushBundle(f.client, makeBundle(APP).zip);
    await resolveBoot(f.dir);
    await f.client.call("OTA.Commit");
    await f.client.call("OTA.Revert");
    assert.equal(f.reboots.at(-1), 100);
    const b = await resolveBoot(f.dir);
    assert.equal(b.slot, 0);
    assert.equal(await readFile(join(b.fsRoot, "app.js"), "utf8"), "old app");
    assert.equal((await rpcError(f.client.call("OTA.Revert"))).code, -1, "nothing left to revert to");
  });

  it("refuses out-of-order, inconsistent and oversize writes, and an incomplete End", async () => {
    const f = await fixture({ maxBundleSize: 10_000 });
    assert.equal((await rpcError(f.client.call("OTA.Write", { offset: 0, data: "AAAA" }))).code, 409);
    assert.equal((await rpcError(f.client.call("OTA.End"))).code, 409);
    assert.equal((await rpcError(f.client.call("OTA.Begin", {}))).code, 400);
    assert.equal((await rpcError(f.client.call("OTA.Begin", { size: 20_000 }))).code, 413);
    await f.client.call("OTA.Begin", { size: 8 });
    assert.equal((await rpcError(f.client.call("OTA.Begin", { size: 8 }))).code, 409);
    await f.client.call("OTA.Write", { offset: 0, data: Buffer.from("abcd").toString("base64") });
    assert.equal((await rpcError(f.client.call("OTA.Write", { offset: 6, data: "AAAA" }))).code, 400);
    assert.equal((await rpcError(f.client.call("OTA.Write", { offset: 2, data: Buffer.from("XY").toString("base64") }))).code, 400);
    assert.equal((await rpcError(f.client.call("OTA.Write", { offset: 4, data: Buffer.from("12345").toString("base64") }))).code, 413);
    assert.equal((await rpcError(f.client.call("OTA.Write", { offset: 4, data: "!!" }))).code, 400);
    // an overlapping retry that extends the data is fine
    await f.client.call("OTA.Write", { offset: 2, data: Buffer.from("cdef").toString("base64") });
    assert.equal((await f.client.call<{ received: number }>("OTA.Status")).received, 6);
    const e = await rpcError(f.client.call("OTA.End"));
    assert.equal(e.code, 400);
    assert.match(e.message, /received 6 of 8/);
    const st = await f.client.call<{ state: number; msg: string }>("OTA.Status");
    assert.equal(st.state, 2);
    assert.match(st.msg, /incomplete/);
  });
});

describe("OTA refuses bad bundles and changes nothing", () => {
  const key = makeSigningKey();
  const other = makeSigningKey();
  const cases: { name: string; code: number; pattern: RegExp; config?: Record<string, unknown>; zip: () => Uint8Array }[] = [
    {
      name: "bad checksum",
      code: 422,
      pattern: /SHA-256 mismatch/,
      zip: () => repackBundle(makeBundle(APP).zip, (_m, parts) => {
        const fs = parts.get("fs.zip");
        assert.ok(fs);
        const bad = Buffer.from(fs);
        bad[bad.length - 30] ^= 0xff;
        parts.set("fs.zip", bad);
      }),
    },
    {
      name: "bad size",
      code: 422,
      pattern: /size/,
      zip: () => repackBundle(makeBundle(APP).zip, (m) => {
        const parts = m.parts as Record<string, Record<string, unknown>>;
        parts.fs.size = (parts.fs.size as number) + 1;
      }),
    },
    { name: "truncated zip", code: 422, pattern: /malformed bundle/, zip: () => makeBundle(APP).zip.subarray(0, 300) },
    { name: "not a zip", code: 422, pattern: /malformed bundle/, zip: () => Buffer.from("hello, this is not a zip archive at all") },
    {
      name: "wrong platform",
      code: 422,
      pattern: /platform "esp32"/,
      zip: () => repackBundle(makeBundle(APP).zip, (m) => {
        m.platform = "esp32";
      }),
    },
    {
      name: "bad signature (signed by another key)",
      code: 403,
      pattern: /sig0/,
      config: { keys: [key.publicB64], sig_req_mask: 1 },
      zip: () => makeBundle(APP, { signKeys: [other.privatePem] }).zip,
    },
    {
      name: "signature of a modified manifest",
      code: 403,
      pattern: /sig0/,
      config: { keys: [key.publicB64], sig_req_mask: 1 },
      zip: () => repackBundle(makeBundle(APP, { signKeys: [key.privatePem] }).zip, (m) => {
        m.version = "6.6.6";
      }, true),
    },
    {
      name: "missing required signature",
      code: 403,
      pattern: /sig1/,
      config: { keys: [key.publicB64, other.publicPem], sig_req_mask: 3 },
      zip: () => makeBundle(APP, { signKeys: [key.privatePem] }).zip,
    },
    {
      name: "updates disabled by sig_req_mask=0",
      code: 403,
      pattern: /disabled/,
      config: { keys: [key.publicB64], sig_req_mask: 0 },
      zip: () => makeBundle(APP, { signKeys: [key.privatePem] }).zip,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = await fixture({ config: c.config as never });
      await seedSlot0(f.dir);
      const zip = c.zip();
      const before = await treeDigest(f.dir);
      const e = await rpcError(pushBundle(f.client, zip, 256));
      assert.equal(e.code, c.code, e.message);
      assert.match(e.message, c.pattern);
      assert.deepEqual(await treeDigest(f.dir), before);
      assert.deepEqual(f.reboots, []);
      assert.equal((await f.client.call<{ state: number }>("OTA.Status")).state, 2);
      assert.equal((await resolveBoot(f.dir)).slot, 0);
    });
  }

  it("accepts a bundle whose required signatures verify (key as base64 DER, PEM, or FS file)", async () => {
    const k2 = makeSigningKey();
    const f = await fixture({ config: { keys: [key.publicB64, undefined, "keys/k2.pem"], sig_req_mask: 5 } });
    await mkdir(join(slotFsRoot(f.dir, 0), "keys"), { recursive: true });
    await writeFile(join(slotFsRoot(f.dir, 0), "keys/k2.pem"), k2.publicPem);
    const r = await pushBundle(f.client, makeBundle(APP, { signKeys: [key.privatePem, undefined, k2.privatePem] }).zip);
    assert.equal((r as { slot: number }).slot, 1);
  });

  it("refuses a new update while the running firmware is uncommitted", async () => {
    const f = await fixture();
    await pushBundle(f.client, makeBundle(APP).zip);
    await resolveBoot(f.dir);
    assert.equal((await rpcError(f.client.call("OTA.Begin", { size: 100 }))).code, 409);
  });
});

describe("OTA.Update (pull)", () => {
  let http: Server;
  let base: string;
  const served = new Map<string, Uint8Array>();
  before(async () => {
    http = createServer((req, res) => {
      const body = served.get(req.url ?? "");
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/zip", "content-length": body.length }).end(body);
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  after(async () => {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });

  it("downloads, verifies and installs; refuses HTTP errors, oversize and bad bundles with nothing changed", async () => {
    const f = await fixture({ maxBundleSize: 50_000 });
    await seedSlot0(f.dir);
    served.set("/fw.zip", makeBundle(APP, { version: "3.1" }).zip);
    served.set("/big.zip", Buffer.alloc(60_000));
    served.set("/bad.zip", makeBundle(APP).zip.subarray(0, 500));
    const before = await treeDigest(f.dir);
    assert.equal((await rpcError(f.client.call("OTA.Update", { url: `${base}/missing.zip` }))).code, 502);
    assert.equal((await rpcError(f.client.call("OTA.Update", { url: `${base}/big.zip` }))).code, 413);
    assert.equal((await rpcError(f.client.call("OTA.Update", { url: `${base}/bad.zip` }))).code, 422);
    assert.equal((await rpcError(f.client.call("OTA.Update", { url: "file:///etc/passwd" }))).code, 400);
    assert.equal((await rpcError(f.client.call("OTA.Update", {}))).code, 400);
    assert.deepEqual(await treeDigest(f.dir), before);
    const r = await f.client.call<{ slot: number; version: string }>("OTA.Update", { url: `${base}/fw.zip`, commit_timeout: 60 });
    assert.equal(r.version, "3.1");
    assert.deepEqual(await f.client.call("OTA.GetBootState"), { active_slot: 1, is_committed: false, revert_slot: 0, commit_timeout: 60 });
    const b = await resolveBoot(f.dir);
    assert.equal(b.manifest.version, "3.1");
    assert.equal(await readFile(join(b.fsRoot, "conf9.json"), "utf8"), '{"user":true}');
  });
});

describe("OTA boot state methods", () => {
  it("GetBootState / SetBootState / CreateSnapshot", async () => {
    const f = await fixture();
    await seedSlot0(f.dir);
    assert.deepEqual(await f.client.call("OTA.GetBootState"), { active_slot: 0, is_committed: true, revert_slot: 0, commit_timeout: 0 });
    assert.equal((await rpcError(f.client.call("OTA.SetBootState", { active_slot: 1 }))).code, -2, "slot 1 is empty");
    assert.equal((await rpcError(f.client.call("OTA.SetBootState", { active_slot: 7 }))).code, 400);
    assert.equal((await rpcError(f.client.call("OTA.SetBootState", { is_committed: "yes" }))).code, 400);

    assert.deepEqual(await f.client.call("OTA.CreateSnapshot", { set_as_revert: true }), { slot: 1 });
    assert.equal(await readFile(join(slotFsRoot(f.dir, 1), "data/log.txt"), "utf8"), "user data");
    assert.deepEqual(await f.client.call("OTA.GetBootState"), { active_slot: 0, is_committed: true, revert_slot: 1, commit_timeout: 0 });

    await f.client.call("OTA.SetBootState", { active_slot: 1, is_committed: false, commit_timeout: 30 });
    assert.deepEqual(await f.client.call("OTA.GetBootState"), { active_slot: 1, is_committed: false, revert_slot: 1, commit_timeout: 30 });
    const b = await resolveBoot(f.dir);
    assert.equal(b.slot, 1);
    assert.equal((await readBootState(f.dir))?.uncommitted_boots, 1);
    await f.client.call("OTA.Commit");

    // snapshot with a commit timeout: the running firmware must be committed within it, else it reverts
    await writeFile(join(slotFsRoot(f.dir, 1), "conf9.json"), '{"risky":true}');
    assert.deepEqual(await f.client.call("OTA.CreateSnapshot", { set_as_revert: true, commit_timeout: 60 }), { slot: 0 });
    assert.equal(await readFile(join(slotFsRoot(f.dir, 0), "conf9.json"), "utf8"), '{"risky":true}');
    const s = await f.client.call<{ is_committed: boolean; revert_slot: number }>("OTA.GetBootState");
    assert.equal(s.is_committed, false);
    assert.equal(s.revert_slot, 0);
    assert.equal((await rpcError(f.client.call("OTA.CreateSnapshot", {}))).code, -2);
    assert.equal((await resolveBoot(f.dir)).slot, 0, "rebooted without commit: back to the snapshot");
  });
});
