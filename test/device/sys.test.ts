import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { REBOOT_LOCKOUT_MS } from "../../src/device/agent.js";
import { ChannelClosedError, RpcError } from "../../src/errors.js";
import type { Channel } from "../../src/rpc/channel.js";
import type { Frame } from "../../src/rpc/frame.js";
import { type TestDevice, deviceError, startTestDevice } from "./helpers.js";

/** Send one raw frame and return the raw reply frame. */
function rawCall(ch: Channel, frame: Frame, timeoutMs = 3000): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no reply")), timeoutMs);
    const off = ch.onFrame((r) => {
      if (String(r.frame.id) !== String(frame.id)) return;
      clearTimeout(timer);
      off();
      resolve(r.frame);
    });
    ch.send(frame).catch(reject);
  });
}

describe("device Sys and RPC services", () => {
  let t: TestDevice;
  before(async () => {
    t = await startTestDevice({
      arch: "esp32",
      services(server) {
        server.addHandler<{ a: number; b: number }>("Math.Add", (p) => ({ sum: p.a + p.b }), {
          argsFmt: "{a: %d, b: %d}",
          argsSchema: { type: "object", properties: { a: { type: "integer", minimum: 0 }, b: { type: "integer" } }, required: ["a", "b"] },
          resultSchema: { type: "object", properties: { sum: { type: "integer" } } },
          description: "Add two integers",
        });
        server.addHandler<{ mode: string }>("Demo.Mode", (p) => p.mode, {
          argsSchema: { type: "object", properties: { mode: { enum: ["on", "off"] }, tags: { type: "array", items: { type: "string" } } } },
        });
      },
    });
  });
  after(async () => {
    await t.close();
  });

  it("Sys.GetInfo reports every field, in the firmware's order, with real figures", async () => {
    const info = await t.client.call<Record<string, unknown>>("Sys.GetInfo");
    assert.deepEqual(Object.keys(info), [
      "id", "app", "fw_version", "fw_id", "mg_version", "mg_id", "mac", "arch", "uptime", "public_key",
      "ram_size", "ram_free", "ram_min_free", "fs_size", "fs_free", "wifi",
    ]);
    const wifi = info.wifi as Record<string, unknown>;
    assert.deepEqual(Object.keys(wifi).sort(), ["ap_ip", "ssid", "sta_ip", "status"]);
    assert.equal(wifi.ap_ip, "192.168.4.1", "the AP is on by default, as wifi.ap.enable says");
    assert.equal(info.id, t.agent.id);
    assert.equal(info.arch, "esp32");
    assert.equal(info.app, "remos-device");
    assert.match(String(info.mac), /^[0-9A-F]{12}$/);
    assert.equal(info.public_key, null);
    for (const k of ["ram_size", "ram_free", "ram_min_free", "fs_size", "fs_free", "uptime"]) assert.equal(typeof info[k], "number", k);
    assert.ok((info.ram_free as number) <= (info.ram_size as number));
    assert.ok((info.ram_min_free as number) <= (info.ram_free as number));
    assert.ok((info.fs_size as number) > 0 && (info.fs_free as number) <= (info.fs_size as number));
  });

  it("Sys.SetDebug answers error:{code:0} (exactly), 400 on a bad level, 501 for UDP logging", async () => {
    const ch = t.agent.connectLoopback();
    try {
      const reply = await rawCall(ch, { id: 7, src: "t", method: "Sys.SetDebug", params: { level: 3 } });
      assert.deepEqual(reply.error, { code: 0 });
      assert.equal("result" in reply, false);
    } finally {
      await ch.close();
    }
    assert.equal(await t.client.call("Sys.SetDebug", { level: 2 }), null);
    assert.deepEqual(await deviceError(t.client.call("Sys.SetDebug", { level: 9 })), { code: 400, message: "invalid level" });
    assert.equal((await deviceError(t.client.call("Sys.SetDebug", { udp_log_addr: "1.2.3.4:1993" }))).code, 501);
  });

  it("Sys.Reboot with a negative delay is 400", async () => {
    assert.deepEqual(await deviceError(t.client.call("Sys.Reboot", { delay_ms: -1 })), { code: 400, message: "invalid delay value" });
  });

  it("RPC.List, RPC.Describe (with schemas), RPC.Ping, 404 for an unknown method, dst check", async () => {
    const list = await t.client.call<string[]>("RPC.List");
    for (const m of ["RPC.List", "RPC.Describe", "RPC.Ping", "Sys.GetInfo", "Sys.Reboot", "Sys.SetDebug", "FS.Get", "Config.Set", "Math.Add"]) {
      assert.ok(list.includes(m), m);
    }
    assert.deepEqual(await t.client.call("RPC.Describe", { name: "Math.Add" }), {
      name: "Math.Add",
      args_fmt: "{a: %d, b: %d}",
      description: "Add two integers",
      args_schema: { type: "object", properties: { a: { type: "integer", minimum: 0 }, b: { type: "integer" } }, required: ["a", "b"] },
      result_schema: { type: "object", properties: { sum: { type: "integer" } } },
    });
    assert.deepEqual(await deviceError(t.client.call("RPC.Describe", {})), { code: 400, message: "name is required" });
    assert.deepEqual(await deviceError(t.client.call("RPC.Describe", { name: "No.Such" })), { code: 404, message: "name not found" });
    assert.deepEqual(await t.client.call("RPC.Ping"), { channel_info: "loopback-client" });
    assert.deepEqual(await deviceError(t.client.call("No.Such")), { code: 404, message: "No handler for No.Such" });
    const ch = t.agent.connectLoopback();
    try {
      const ok = await rawCall(ch, { id: 8, src: "me", dst: t.agent.id, method: "RPC.Ping" });
      assert.equal(ok.src, t.agent.id);
      assert.equal(ok.dst, "me");
      await assert.rejects(rawCall(ch, { id: 9, src: "me", dst: "someone_else", method: "RPC.Ping" }, 300), /no reply/);
    } finally {
      await ch.close();
    }
  });

  it("custom services: params are checked against argsSchema before the handler (400 with a clear message)", async () => {
    assert.deepEqual(await t.client.call("Math.Add", { a: 2, b: 3 }), { sum: 5 });
    assert.deepEqual(await deviceError(t.client.call("Math.Add", { a: 2 })), { code: 400, message: "b is required" });
    assert.deepEqual(await deviceError(t.client.call("Math.Add")), { code: 400, message: "a is required" });
    assert.deepEqual(await deviceError(t.client.call("Math.Add", { a: "2", b: 3 })), { code: 400, message: "a must be integer" });
    assert.deepEqual(await deviceError(t.client.call("Math.Add", { a: -1, b: 3 })), { code: 400, message: "a must be >= 0" });
    assert.deepEqual(await deviceError(t.client.call("Math.Add", [1, 2])), { code: 400, message: "params must be object" });
    assert.equal(await t.client.call("Demo.Mode", { mode: "on" }), "on");
    assert.deepEqual(await deviceError(t.client.call("Demo.Mode", { mode: "dim" })), { code: 400, message: 'mode must be one of "on", "off"' });
    assert.deepEqual(await deviceError(t.client.call("Demo.Mode", { mode: "on", tags: ["a", 1] })), { code: 400, message: "tags[1] must be string" });
  });

  it("rpc.service_sys_enable=false hides Sys.* (404, and not in RPC.List or RPC.Describe)", async () => {
    assert.ok(((await t.client.call("RPC.List")) as string[]).includes("Sys.GetInfo"));
    await t.client.call("Config.Set", { config: { rpc: { service_sys_enable: false } } });
    try {
      assert.deepEqual(await deviceError(t.client.call("Sys.GetInfo")), { code: 404, message: "No handler for Sys.GetInfo" });
      const listed = (await t.client.call("RPC.List")) as string[];
      assert.ok(listed.includes("FS.List") && !listed.some((m) => /^sys\./i.test(m)), listed.join(","));
      assert.deepEqual(await deviceError(t.client.call("RPC.Describe", { name: "Sys.Reboot" })), { code: 404, message: "name not found" });
    } finally {
      await t.client.call("Config.Set", { config: { rpc: { service_sys_enable: true } } });
    }
  });
});

describe("device in-process reboot", () => {
  it("Sys.Reboot closes every channel, reloads the config from disk, resets uptime; the process lives on", async () => {
    const t = await startTestDevice();
    try {
      const before = await t.client.call<{ uptime: number }>("Sys.GetInfo");
      await new Promise((r) => setTimeout(r, 1100));
      assert.ok((await t.client.call<{ uptime: number }>("Sys.GetInfo")).uptime >= 1);
      await t.client.call("Config.Set", { config: { device: { sn: "saved" } }, save: true });
      await t.client.call("Config.Set", { config: { device: { license: "volatile" } } });
      const other = t.agent.connectLoopback();
      const closed = Promise.all([
        new Promise<void>((r) => t.client.channel.onClose(() => r())),
        new Promise<void>((r) => other.onClose(() => r())),
      ]);
      const booted = new Promise<void>((r) => t.agent.onBoot(r));
      assert.equal(await t.client.call("Sys.Reboot", { delay_ms: 150 }), null);
      await closed;
      await booted;
      await assert.rejects(t.client.call("RPC.Ping"), ChannelClosedError);
      const c = t.reconnect();
      const after = await c.call<{ uptime: number; id: string; mac: string }>("Sys.GetInfo");
      assert.equal(after.uptime, 0);
      assert.equal(after.mac, (before as unknown as { mac: string }).mac);
      assert.equal(t.agent.config().device.sn, "saved");
      assert.equal(t.agent.config().device.license, "");
    } finally {
      await t.close();
    }
  });

  it("requests in the last 100 ms before a reboot get 418 'shutting down in N ms'", async () => {
    const t = await startTestDevice();
    try {
      // Deterministic: the loopback call is dispatched in microtasks, before the reboot timer can fire.
      const first = t.agent.reboot(400);
      assert.ok(await t.client.call("RPC.Ping"), "more than 100 ms before the reboot: served");
      const done = t.agent.reboot(REBOOT_LOCKOUT_MS - 10);
      const e = await deviceError(t.client.call("RPC.Ping"));
      assert.equal(e.code, 418);
      assert.match(e.message, /^shutting down in \d+ ms$/);
      const n = Number(/(\d+)/.exec(e.message)?.[1]);
      assert.ok(n < REBOOT_LOCKOUT_MS, e.message);
      await first;
      await done;
      assert.ok(await t.reconnect().call("RPC.Ping"));
    } finally {
      await t.close();
    }
  });

  it("a handler that throws RpcError answers its code; anything else is a 500 without a stack", async () => {
    const t = await startTestDevice({
      services(server) {
        server.addHandler("T.Rpc", () => {
          throw new RpcError(409, "conflict");
        });
        server.addHandler("T.Bug", () => {
          throw new TypeError("oops");
        });
      },
    });
    try {
      assert.deepEqual(await deviceError(t.client.call("T.Rpc")), { code: 409, message: "conflict" });
      assert.deepEqual(await deviceError(t.client.call("T.Bug")), { code: 500, message: "oops" });
    } finally {
      await t.close();
    }
  });
});
