import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startDevice } from "../../src/device/agent.js";
import { parseSetting, parseSettings, expandMacPlaceholders } from "../../src/device/config/values.js";
import { UsageError } from "../../src/errors.js";
import { type TestDevice, deviceError, startTestDevice, tempDir } from "./helpers.js";

const readJson = async (p: string): Promise<unknown> => JSON.parse(await readFile(p, "utf8"));

describe("device config (layers and Config.* service)", () => {
  let t: TestDevice;
  before(async () => {
    t = await startTestDevice({ arch: "esp32" });
  });
  after(async () => {
    await t.close();
  });

  it("writes conf0.json with the defaults at first boot and fills ? from the MAC", async () => {
    const conf0 = (await readJson(join(t.agent.fsRoot, "conf0.json"))) as { device: { id: string } };
    assert.equal(conf0.device.id, "esp32_??????");
    const mac = ((await readJson(join(t.dir, "device.json"))) as { mac: string }).mac;
    assert.match(mac, /^[0-9A-F]{12}$/);
    assert.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, "locally administered unicast");
    assert.equal(t.agent.id, `esp32_${mac.slice(6)}`);
    assert.equal(await t.client.call("Config.Get", { key: "wifi.ap.ssid" }), `Mongoose_${mac.slice(6)}`);
    assert.equal(expandMacPlaceholders("x_???", "AABBCCDDEEFF"), "x_???", "odd count: untouched");
  });

  it("Config.Get: whole, sub-tree, scalar, 404 on an unknown key, levels", async () => {
    const all = await t.client.call<Record<string, unknown>>("Config.Get");
    for (const k of ["device", "mqtt", "rpc", "http", "wifi", "debug", "update", "aws", "conf_acl"]) assert.ok(k in all, k);
    const rpc = await t.client.call<Record<string, unknown>>("Config.Get", { key: "rpc" });
    assert.equal(rpc.auth_domain, "RPC");
    assert.equal(rpc.max_frame_size, 4096);
    assert.deepEqual(await t.client.call("Config.Get", { key: "rpc.uart" }), { uart_no: 0, baud_rate: 115200, fc_type: 2, dst: "" });
    assert.equal(await t.client.call("Config.Get", { key: "update.sig_req_mask" }), -1);
    assert.equal(await t.client.call("Config.Get", { key: "mqtt.server" }), "iot.eclipse.org:1883");
    assert.deepEqual(await deviceError(t.client.call("Config.Get", { key: "no.such" })), { code: 404, message: "invalid config key" });
    assert.deepEqual(await deviceError(t.client.call("Config.Get", { level: 12 })), { code: 400, message: "failed to load config" });
  });

  it("Config.Set: types checked, unknown keys ignored, key form, value synonym, saved flag", async () => {
    assert.deepEqual(await t.client.call("Config.Set", { config: { mqtt: { enable: true, server: "b:1", bogus: 1 }, nope: { x: 1 } } }), { saved: false });
    assert.equal(t.agent.config().mqtt.enable, true);
    assert.equal(t.agent.config().mqtt.server, "b:1");
    assert.ok(!existsSync(join(t.agent.fsRoot, "conf9.json")), "not saved");
    assert.deepEqual(await t.client.call("Config.Set", { key: "debug.level", value: 3 }), { saved: false });
    assert.equal(t.agent.config().debug.level, 3);
    assert.deepEqual(await t.client.call("Config.Set", { key: "wifi.sta", config: { ssid: "Net" } }), { saved: false });
    assert.equal(t.agent.config().wifi.sta.ssid, "Net");
    const e1 = await deviceError(t.client.call("Config.Set", { config: { mqtt: { enable: "yes" } } }));
    assert.equal(e1.code, 400);
    assert.match(e1.message, /^invalid config value: mqtt\.enable/);
    assert.match((await deviceError(t.client.call("Config.Set", { config: { debug: { level: 1.5 } } }))).message, /^invalid config value:/);
    assert.match((await deviceError(t.client.call("Config.Set", { config: { mqtt: 5 } }))).message, /^invalid config value:/);
    assert.match((await deviceError(t.client.call("Config.Set", { config: { mqtt: { server: 1 } } }))).message, /^invalid config value:/);
    assert.equal(t.agent.config().mqtt.server, "b:1", "a failed Set changes nothing");
    assert.deepEqual(await deviceError(t.client.call("Config.Set", {})), { code: 400, message: "value is required" });
    assert.deepEqual(await deviceError(t.client.call("Config.Set", { config: {}, level: 0 })), { code: 400, message: "not allowed" });
    assert.deepEqual(await deviceError(t.client.call("Config.Set", { key: "x.y", config: 1 })), { code: 404, message: "invalid config key" });
  });

  it("Config.Set save writes conf9.json with only the differences from level 8; Config.Save too", async () => {
    assert.deepEqual(await t.client.call("Config.Set", { config: { device: { sn: "42" } }, save: true }), { saved: true });
    const c9 = (await readJson(join(t.agent.fsRoot, "conf9.json"))) as Record<string, Record<string, unknown>>;
    assert.deepEqual(c9.device, { sn: "42" });
    assert.equal(c9.mqtt.enable, true);
    assert.equal(c9.rpc, undefined);
    await t.client.call("Config.Set", { config: { device: { license: "L" } } });
    assert.deepEqual(await t.client.call("Config.Save", {}), { saved: true });
    assert.deepEqual(((await readJson(join(t.agent.fsRoot, "conf9.json"))) as { device: unknown }).device, { sn: "42", license: "L" });
  });

  it("Config.Get level shows the config as loaded up to a layer; vendor layers are gated by conf_acl", async () => {
    await writeFile(join(t.agent.fsRoot, "conf1.json"), JSON.stringify({ conf_acl: "wifi.*,device.sn", mqtt: { server: "vendor:1" } }));
    await writeFile(join(t.agent.fsRoot, "conf2.json"), JSON.stringify({ mqtt: { server: "denied:1" }, wifi: { sta: { ssid: "V" } }, device: { sn: "v2" } }));
    assert.equal(await t.client.call("Config.Get", { key: "mqtt.server", level: 0 }), "iot.eclipse.org:1883");
    assert.equal(await t.client.call("Config.Get", { key: "mqtt.server", level: 1 }), "vendor:1");
    assert.equal(await t.client.call("Config.Get", { key: "mqtt.server", level: 2 }), "vendor:1", "denied by conf1's conf_acl");
    assert.equal(await t.client.call("Config.Get", { key: "wifi.sta.ssid", level: 2 }), "V");
    assert.equal(await t.client.call("Config.Get", { key: "device.sn", level: 8 }), "v2");
    // Set at vendor level 3: gated by the level-2 conf_acl, saved as conf3.json, the live config untouched
    assert.deepEqual(await t.client.call("Config.Set", { level: 3, config: { wifi: { sta: { pass: "p3" } }, rpc: { acl: "x" } }, save: true }), { saved: true });
    assert.deepEqual(await readJson(join(t.agent.fsRoot, "conf3.json")), { wifi: { sta: { pass: "p3" } } });
    assert.equal(t.agent.config().wifi.sta.pass, "");
    assert.equal(await t.client.call("Config.Get", { key: "wifi.sta.pass", level: 3 }), "p3");
  });
});

describe("device config across boots", () => {
  it("--set and --id apply and save at start; values are typed by the schema", async () => {
    const dir = await tempDir();
    const t = await startTestDevice({ dir, id: "dev-1", set: ["mqtt.enable=true", "mqtt.keep_alive=0x10", "mqtt.reconnect_timeout_min=0.5", "mqtt.server=h:1=x"] });
    try {
      const c = t.agent.config();
      assert.equal(t.agent.id, "dev-1");
      assert.equal(c.mqtt.enable, true);
      assert.equal(c.mqtt.keep_alive, 16);
      assert.equal(c.mqtt.reconnect_timeout_min, 0.5);
      assert.equal(c.mqtt.server, "h:1=x");
      const c9 = (await readJson(join(t.agent.fsRoot, "conf9.json"))) as { device: { id: string } };
      assert.equal(c9.device.id, "dev-1");
    } finally {
      await t.close();
    }
    assert.deepEqual(parseSetting("rpc.uart.baud_rate=9600"), { rpc: { uart: { baud_rate: 9600 } } });
    assert.throws(() => parseSetting("mqtt.enable=maybe"), /expected true or false/);
    assert.throws(() => parseSetting("no.key=1"), /unknown config key/);
    assert.throws(() => parseSetting("mqtt=1"), /section/);
    // --set settings become one diff: sections merged, a later setting of the same key wins
    assert.deepEqual(parseSettings(["mqtt.enable=true", "mqtt.server=a:1", "device.id=x", "mqtt.server=b:2", "mqtt.keep_alive=7"]), {
      mqtt: { enable: true, server: "b:2", keep_alive: 7 },
      device: { id: "x" },
    });
    assert.deepEqual(parseSettings([]), {});
    assert.throws(() => parseSettings(["mqtt.enable=true", "mqtt.enable=maybe"]), /expected true or false/);
    await assert.rejects(startDevice({ dir, httpListen: "off", set: ["mqtt.keep_alive=abc"] }), UsageError);
  });

  it("conf9.json.try is used for one boot and deleted; the config reloads from disk at reboot", async () => {
    const t = await startTestDevice();
    try {
      await t.client.call("Config.Set", { config: { device: { sn: "kept" } }, save: true });
      await t.client.call("Config.Set", { config: { device: { sn: "try" } }, save: true, try_once: true });
      assert.ok(existsSync(join(t.agent.fsRoot, "conf9.json.try")));
      await t.client.call("Config.Set", { config: { device: { license: "unsaved" } } });
      await t.agent.reboot(0);
      assert.equal(t.agent.config().device.sn, "try");
      assert.equal(t.agent.config().device.license, "", "unsaved change lost at reboot");
      assert.ok(!existsSync(join(t.agent.fsRoot, "conf9.json.try")), "try file deleted once used");
      await t.agent.reboot(0);
      assert.equal(t.agent.config().device.sn, "kept");
    } finally {
      await t.close();
    }
  });

  it("Config.Set with save and reboot reboots after 500 ms; without save it does not", async () => {
    const t = await startTestDevice();
    try {
      let boots = 0;
      t.agent.onBoot(() => boots++);
      const booted = new Promise<void>((r) => t.agent.onBoot(r));
      await t.client.call("Config.Set", { config: { debug: { level: 1 } }, reboot: true });
      const started = Date.now();
      assert.deepEqual(await t.client.call("Config.Set", { config: { device: { sn: "r" } }, save: true, reboot: true }), { saved: true });
      await booted;
      assert.ok(Date.now() - started >= 400, "rebooted after about 500 ms");
      assert.equal(boots, 1);
      assert.equal(t.agent.config().device.sn, "r");
      assert.equal(t.agent.config().debug.level, 1, "save writes the whole live config");
    } finally {
      await t.close();
    }
  });
});
