import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { DeviceError } from "../../src/errors.js";
import { SimWifi, type WifiStatus } from "../../src/device/hal/wifi.js";
import { registerWifiService } from "../../src/device/services/wifi.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

function setup(wifi: SimWifi): RpcClient {
  const server = new RpcServer();
  registerWifiService(server, wifi);
  const [a, b] = LoopbackChannel.pair();
  server.serve(b);
  const client = new RpcClient(a, { src: "mos", timeoutMs: 5000 });
  cleanups.push(() => client.close());
  return client;
}

async function until(wifi: SimWifi, status: WifiStatus["status"], ms = 3000): Promise<WifiStatus> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = wifi.status();
    if (s.status === status) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`wifi did not reach "${status}" in ${ms} ms (now ${wifi.status().status})`);
}

async function err(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DeviceError, String(e));
    return [e.rpcCode, e.rpcMessage];
  }
  assert.fail("expected an error");
}

describe("Wifi service (simulated radio)", () => {
  it("Scan returns plausible networks with the auth enum, strongest first", async () => {
    const client = setup(new SimWifi());
    const list = await client.call<{ ssid: string; bssid: string; auth: number; channel: number; rssi: number }[]>("Wifi.Scan");
    assert.ok(list.length >= 3);
    for (const n of list) {
      assert.match(n.bssid, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.ok(Number.isInteger(n.auth) && n.auth >= 0 && n.auth <= 7);
      assert.ok(n.channel >= 1 && n.channel <= 13);
      assert.ok(n.rssi < -20 && n.rssi > -100);
    }
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].rssi >= list[i].rssi);
    assert.ok(list.some((n) => n.auth === 0) && list.some((n) => n.auth === 3));
  });

  it("the status follows the wifi.* config at boot", async () => {
    const wifi = new SimWifi({
      connectDelayMs: 20,
      config: { sta: { enable: true, ssid: "HomeNet", pass: "secret-pass" }, ap: { enable: true, ssid: "Mongoose_A1B2C3", pass: "Mongoose" } },
    });
    assert.equal(wifi.status().status, "connecting");
    assert.equal(wifi.status().ap_ip, "192.168.4.1");
    const s = await until(wifi, "got ip");
    assert.equal(s.ssid, "HomeNet");
    assert.match(s.sta_ip, /^192\.168\.1\.\d+$/);
  });

  it("SetupSTA connects at runtime (static ip honoured), fails to join unknown or enterprise networks, -1 on invalid settings", async () => {
    const wifi = new SimWifi({ connectDelayMs: 20, networks: [{ ssid: "Lab", auth: 3, channel: 6, rssi: -50, pass: "labpassword" }, { ssid: "Corp", auth: 5, channel: 1, rssi: -60 }] });
    const client = setup(wifi);
    assert.equal(await client.call("Wifi.SetupSTA", { enable: true, ssid: "Lab", pass: "labpassword", ip: "10.0.0.7", netmask: "255.255.255.0", gw: "10.0.0.1" }), null);
    assert.deepEqual(await until(wifi, "got ip"), { sta_ip: "10.0.0.7", ap_ip: "", status: "got ip", ssid: "Lab" });
    await client.call("Wifi.SetupSTA", { enable: true, ssid: "Lab", pass: "wrongpassword" });
    assert.equal(wifi.status().status, "connecting");
    await until(wifi, "disconnected");
    await client.call("Wifi.SetupSTA", { enable: true, ssid: "Corp", pass: "whatever123" });
    await until(wifi, "disconnected");
    await client.call("Wifi.SetupSTA", { enable: true, ssid: "Elsewhere", pass: "" });
    await until(wifi, "disconnected");
    assert.deepEqual(await err(client.call("Wifi.SetupSTA", { enable: true, ssid: "Lab", pass: "short" })), [-1, "mgos_wifi_setup_sta failed"]);
    assert.deepEqual(await err(client.call("Wifi.SetupSTA", { enable: true, ssid: "" })), [-1, "mgos_wifi_setup_sta failed"]);
    assert.deepEqual(await err(client.call("Wifi.SetupSTA", { enable: true, ssid: "Lab", pass: "labpassword", ip: "10.0.0.300", netmask: "255.255.255.0" })), [-1, "mgos_wifi_setup_sta failed"]);
    assert.equal((await err(client.call("Wifi.SetupSTA", { enable: "yes" })))[0], 400);
    await client.call("Wifi.SetupSTA", { enable: true, ssid: "Lab", pass: "labpassword" });
    await until(wifi, "got ip");
    assert.equal(await client.call("Wifi.SetupSTA", {}), null, "enable absent = off, as the firmware");
    assert.deepEqual(wifi.status(), { sta_ip: "", ap_ip: "", status: "disconnected", ssid: "" });
  });

  it("SetupAP sets the AP address; -1 on invalid settings", async () => {
    const wifi = new SimWifi();
    const client = setup(wifi);
    await client.call("Wifi.SetupAP", { enable: true, ssid: "remos-setup", pass: "", channel: 6, ip: "192.168.50.1", netmask: "255.255.255.0", dhcp_start: "192.168.50.10", dhcp_end: "192.168.50.50" });
    assert.equal(wifi.status().ap_ip, "192.168.50.1");
    assert.deepEqual(await err(client.call("Wifi.SetupAP", { enable: true, ssid: "x", channel: 14 })), [-1, "mgos_wifi_setup_ap failed"]);
    assert.deepEqual(await err(client.call("Wifi.SetupAP", { enable: true, ssid: "x", pass: "1234" })), [-1, "mgos_wifi_setup_ap failed"]);
    await client.call("Wifi.SetupAP", { enable: false });
    assert.equal(wifi.status().ap_ip, "");
  });
});
