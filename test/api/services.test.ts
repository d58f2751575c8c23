import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { buildConfigDiff, configValueAt, parseAssignments } from "../../src/api/config.js";
import { UsageError } from "../../src/errors.js";
import { type Fake, startFake } from "./fake-fs-device.js";

const fakes: Fake[] = [];
function fake(o: Parameters<typeof startFake>[0] = {}): Fake {
  const f = startFake(o);
  fakes.push(f);
  return f;
}
after(async () => {
  for (const f of fakes) await f.close();
});

describe("config", () => {
  const current = { wifi: { sta: { enable: false, ssid: "", channel: 6 }, ap: { enable: true } }, debug: { level: 2 } };

  it("converts values to the type of the existing value", () => {
    assert.deepEqual(buildConfigDiff(current, parseAssignments(["wifi.sta.enable=true", "wifi.sta.ssid=123", "wifi.sta.channel=11"])), {
      wifi: { sta: { enable: true, ssid: "123", channel: 11 } },
    });
  });

  it("refuses unknown keys, objects, and values of the wrong type", () => {
    assert.throws(() => buildConfigDiff(current, { "wifi.nope": "1" }), /no config value at path "wifi.nope"/);
    assert.throws(() => buildConfigDiff(current, { wifi: "x" }), UsageError);
    assert.throws(() => buildConfigDiff(current, { "debug.level": "high" }), /not a number/);
    assert.throws(() => buildConfigDiff(current, { "wifi.ap.enable": "yes" }), /not a boolean/);
    assert.throws(() => parseAssignments(["novalue"]), /KEY=VALUE/);
  });

  it("walks dotted paths", () => {
    assert.equal(configValueAt(current, "wifi.sta.channel"), 6);
    assert.equal(configValueAt(current, "wifi.x.y"), undefined);
  });

  it("Config.Set with save and reboot; saved:true ends it", async () => {
    const f = fake();
    const r = await f.device.config.setValues({ "debug.level": "3" }, { reboot: true });
    assert.deepEqual(r, { saved: true, rebooting: true, usedSaveFallback: false });
    assert.equal((f.config.debug as { level: number }).level, 3);
  });

  it("falls back to Config.Save when old firmware does not say saved:true", async () => {
    const f = fake();
    const seen: unknown[] = [];
    f.server.addHandler("Config.Set", (p) => {
      seen.push(p);
      return null;
    });
    f.server.addHandler("Config.Save", (p) => {
      seen.push(p);
      return { saved: true };
    });
    const r = await f.device.config.set({ debug: { level: 1 } }, { reboot: true, tryOnce: true });
    assert.equal(r.usedSaveFallback, true);
    assert.deepEqual(seen, [
      { config: { debug: { level: 1 } }, save: true, reboot: true, try_once: true },
      { reboot: true, try_once: true },
    ]);
  });

  it("--no-save sends neither save nor reboot", async () => {
    const f = fake();
    const seen: unknown[] = [];
    f.server.addHandler("Config.Set", (p) => {
      seen.push(p);
      return { saved: false };
    });
    const r = await f.device.config.set({ debug: { level: 1 } }, { save: false, reboot: true, level: 5 });
    assert.equal(r.saved, false);
    assert.deepEqual(seen, [{ config: { debug: { level: 1 } }, level: 5 }]);
  });

  it("level 0, -1 and unset are left out of Config.Set, as mos does (firmware refuses level 0)", async () => {
    const f = fake();
    const seen: unknown[] = [];
    f.server.addHandler("Config.Set", (p) => {
      seen.push(p);
      return { saved: false };
    });
    for (const level of [0, -1, undefined]) await f.device.config.set({ debug: { level: 1 } }, { save: false, level });
    assert.deepEqual(seen, Array(3).fill({ config: { debug: { level: 1 } } }));
  });

  it("get passes key and level", async () => {
    const f = fake();
    assert.equal(await f.device.config.get("device.id"), "fake_1");
    await assert.rejects(f.device.config.get("nope.x"), /device error 404: invalid config key/);
  });
});

describe("sys, wifi and notifications", () => {
  it("typed Sys.GetInfo", async () => {
    const f = fake();
    const info = await f.device.sys.getInfo();
    assert.equal(info.id, "fake_1");
    assert.equal(typeof info.uptime, "number");
  });

  it("wifi.configure is mos wifi: a typed config-set with reboot", async () => {
    const f = fake();
    await f.device.wifi.configure("Home", "secret");
    assert.deepEqual(f.config.wifi, { sta: { enable: true, ssid: "Home", pass: "secret" }, ap: { enable: false } });
  });

  it("device.on delivers notifications of one method", async () => {
    const f = fake();
    f.server.addHandler("Test.Fire", async (_p, ctx) => {
      await ctx.sendOnChannel({ method: "GPIO.Int", params: { pin: 4, ts: 1, value: 1 } });
      await ctx.sendOnChannel({ method: "Other.Event", params: {} });
      return null;
    });
    const got: unknown[] = [];
    const off = f.device.on("gpio.int", (p) => got.push(p));
    await f.device.call("Test.Fire");
    await new Promise((r) => setTimeout(r, 20));
    off();
    assert.deepEqual(got, [{ pin: 4, ts: 1, value: 1 }]);
  });
});

describe("ota", () => {
  it("Status → Begin → Write×N (in order) → End", async () => {
    const f = fake({ sha256: true });
    const zip = randomBytes(50_000);
    const r = await f.device.ota.upload(zip, { chunkSize: 4096, commitTimeoutS: 30 });
    assert.equal(r.window, 1);
    assert.deepEqual(f.ota.begun, { timeout: 600, commit_timeout: 30, size: 50_000 });
    assert.ok(f.ota.data.equals(zip));
    assert.equal(f.ota.ended, true);
  });

  it("refuses while an update is in progress", async () => {
    const f = fake();
    f.ota.state = 1;
    await assert.rejects(f.device.ota.upload(randomBytes(10)), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /OTA state 1/);
      return true;
    });
  });

  it("calls OTA.End after a write fails for good", async () => {
    const { RpcError } = await import("../../src/errors.js");
    const f = fake({ inject: (m) => { if (m === "OTA.Write") throw new RpcError(500, "flash write failed"); } });
    await assert.rejects(f.device.ota.upload(randomBytes(2000), { attempts: 2 }), /flash write failed/);
    assert.equal(f.ota.ended, true);
  });
});
