/**
 * Every method of spec §3 against the agent over HTTP (the loopback tests in this folder cover each in
 * depth): its success shape and an error code, through the remos HTTP client end (POST /rpc).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RpcClient } from "../../src/rpc/client.js";
import { openChannel } from "../../src/transport/url.js";
import { type TestDevice, deviceError, startTestDevice } from "./helpers.js";

describe("§3 methods over HTTP", () => {
  let t: TestDevice;
  let c: RpcClient;
  const b64 = (s: string): string => Buffer.from(s).toString("base64");

  before(async () => {
    t = await startTestDevice({ httpListen: "127.0.0.1:0" });
    c = new RpcClient(await openChannel(`http://127.0.0.1:${t.agent.httpAddress?.port}/rpc`), { src: "mos", timeoutMs: 5000 });
  });
  after(async () => {
    await c?.close();
    await t?.close();
  });

  it("RPC.*", async () => {
    const list = await c.call<string[]>("RPC.List");
    for (const m of ["Sys.GetInfo", "FS.Get", "Config.Set", "GPIO.Toggle", "I2C.Scan", "Wifi.Scan", "OTA.Status", "RPC.Ping"]) assert.ok(list.includes(m), m);
    assert.equal((await c.call<{ args_fmt: string }>("RPC.Describe", { name: "FS.Get" })).args_fmt, "{filename: %Q, offset: %ld, len: %ld}");
    assert.deepEqual(await deviceError(c.call("RPC.Describe", {})), { code: 400, message: "name is required" });
    assert.deepEqual(await deviceError(c.call("RPC.Describe", { name: "No.Such" })), { code: 404, message: "name not found" });
    assert.match((await c.call<{ channel_info: string }>("RPC.Ping")).channel_info, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(await deviceError(c.call("No.Such")), { code: 404, message: "No handler for No.Such" });
  });

  it("Sys.*", async () => {
    const info = await c.call<Record<string, unknown>>("Sys.GetInfo");
    assert.equal(info.id, t.agent.id);
    assert.equal(await c.call("Sys.SetDebug", { level: 2 }), null, "error:{code:0} is success");
    assert.deepEqual(await deviceError(c.call("Sys.SetDebug", { level: 9 })), { code: 400, message: "invalid level" });
    assert.deepEqual(await deviceError(c.call("Sys.Reboot", { delay_ms: -1 })), { code: 400, message: "invalid delay value" });
  });

  it("FS.*", async () => {
    assert.equal(await c.call("FS.Put", { filename: "a.txt", data: b64("hello"), offset: 0 }), null);
    assert.equal(await c.call("FS.Put", { filename: "a.txt", data: b64(" world"), append: true }), null);
    assert.deepEqual(await c.call("FS.Get", { filename: "a.txt", offset: 6, len: 3 }), { data: b64("wor"), left: 2 });
    assert.ok((await c.call<string[]>("FS.List")).includes("a.txt"));
    assert.ok((await c.call<{ name: string; size: number }[]>("FS.ListExt")).some((e) => e.name === "a.txt" && e.size === 11));
    assert.equal(await c.call("FS.Rename", { src: "a.txt", dst: "b.txt" }), null);
    assert.equal(await c.call("FS.Mkdir", { path: "d" }), null);
    assert.equal(await c.call("FS.Remove", { filename: "b.txt" }), null);
    assert.deepEqual(await deviceError(c.call("FS.Get", {})), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(c.call("FS.Get", { filename: "b.txt" })), { code: 400, message: 'failed to open file "b.txt"' });
    assert.equal((await deviceError(c.call("FS.Get", { filename: "../device.json" }))).code, 400, "no way out of the FS root");
    assert.deepEqual(await deviceError(c.call("FS.Rename", { src: "x" })), { code: 400, message: "src and dst are required" });
    assert.equal((await deviceError(c.call("FS.Remove", { filename: "nope" }))).code, 500);
  });

  it("Config.*", async () => {
    assert.equal(await c.call("Config.Get", { key: "device.id" }), t.agent.id);
    assert.deepEqual(await c.call("Config.Set", { config: { debug: { level: 3 } } }), { saved: false });
    assert.deepEqual(await c.call("Config.Save", {}), { saved: true });
    assert.deepEqual(await deviceError(c.call("Config.Get", { key: "no.such" })), { code: 404, message: "invalid config key" });
    assert.match((await deviceError(c.call("Config.Set", { config: { debug: { level: "x" } } }))).message, /^invalid config value/);
  });

  it("GPIO.*", async () => {
    assert.equal(await c.call("GPIO.Write", { pin: 2, value: 1 }), null);
    assert.deepEqual(await c.call("GPIO.ReadOut", { pin: 2 }), { value: 1 });
    assert.deepEqual(await c.call("GPIO.Toggle", { pin: 2 }), { value: 0 });
    assert.equal(typeof (await c.call<{ value: number }>("GPIO.Read", { pin: 4 })).value, "number");
    assert.equal(await c.call("GPIO.Blink", { pin: 5, on_ms: 100, off_ms: 100 }), null);
    assert.equal(await c.call("GPIO.SetIntHandler", { pin: 6, edge: "any" }), null);
    assert.equal(await c.call("GPIO.RemoveIntHandler", { pin: 6 }), null);
    assert.equal((await deviceError(c.call("GPIO.Write", { pin: 2 }))).code, 400);
    assert.equal((await deviceError(c.call("GPIO.RemoveIntHandler", { pin: 6 }))).code, 500);
  });

  it("I2C.*", async () => {
    assert.equal((await deviceError(c.call("I2C.Scan"))).code, 503, "I2C is disabled by default, as on firmware");
    await c.call("Config.Set", { config: { i2c: { enable: true } } });
    assert.deepEqual(await c.call("I2C.Scan"), [0x44, 0x50]);
    assert.equal(await c.call("I2C.Write", { addr: 0x50, data_hex: "000aabcd" }), null);
    await new Promise((r) => setTimeout(r, 10)); // the EEPROM's write cycle
    assert.equal(await c.call("I2C.Write", { addr: 0x50, data_hex: "000a" }), null);
    assert.deepEqual(await c.call("I2C.Read", { addr: 0x50, len: 2 }), { data_hex: "abcd" });
    assert.equal(typeof (await c.call<{ value: number }>("I2C.ReadRegB", { addr: 0x50, reg: 0 })).value, "number");
    assert.equal(typeof (await c.call<{ value: number }>("I2C.ReadRegW", { addr: 0x50, reg: 0 })).value, "number");
    assert.equal((await deviceError(c.call("I2C.Read", { addr: 0x50 }))).code, 400);
    assert.equal((await deviceError(c.call("I2C.Read", { addr: 0x33, len: 1 }))).code, 503, "no part at 0x33: NACK");
  });

  it("Wifi.*", async () => {
    const nets = await c.call<{ ssid: string; auth: number }[]>("Wifi.Scan");
    assert.ok(nets.length > 0 && typeof nets[0].ssid === "string");
    assert.equal(await c.call("Wifi.SetupAP", { enable: true, ssid: "Dev_AP", pass: "password1" }), null);
    assert.equal(await c.call("Wifi.SetupSTA", { enable: false }), null);
    assert.equal((await deviceError(c.call("Wifi.SetupSTA", { enable: true, ssid: "x", pass: "short" }))).code, -1);
  });

  it("OTA.*", async () => {
    assert.equal((await c.call<{ state: number }>("OTA.Status")).state, 0);
    const boot = await c.call<Record<string, unknown>>("OTA.GetBootState");
    for (const k of ["active_slot", "is_committed", "revert_slot", "commit_timeout"]) assert.ok(k in boot, k);
    assert.equal(await c.call("OTA.Commit"), null);
    assert.equal((await deviceError(c.call("OTA.Write", { offset: 0, data: b64("x") }))).code, 409, "no update in progress");
    assert.equal((await deviceError(c.call("OTA.Begin", {}))).code, 400);
  });
});
