/**
 * MQTT transport through a real mosquitto: the channel contract, the exact topics and routing fields of
 * spec §2.4, and interop with mosquitto's own command-line clients.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import { TransportError } from "../../src/errors.js";
import { type LogEvent, addLogSink } from "../../src/log.js";
import type { Channel } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type MqttDeviceLink, RecentRequests, startMqttDevice } from "../../src/transport/mqtt-device.js";
import { connect, parseMqttPort, resolveTls } from "../../src/transport/mqtt.js";
import { openChannel } from "../../src/transport/url.js";
import { channelContract } from "../contract/channel-contract.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const skip = mosquittoSkipReason();

if (!skip) {
  channelContract("mqtt via mosquitto", () => {
    let broker: MosquittoBroker | undefined;
    let device: MqttDeviceLink | undefined;
    let raw: MqttClient | undefined;
    return {
      async start(accept) {
        broker = await startMosquitto();
        device = await startMqttDevice({
          server: `127.0.0.1:${broker.port}`,
          clientId: "contract_dev",
          deviceId: "contract_dev",
          reconnect: { minMs: 100, maxMs: 1000 },
          onChannel: accept,
        });
        raw = await mqtt.connectAsync(broker.url, { clientId: "contract_raw", reconnectPeriod: 0 }, false);
      },
      async connect() {
        return connect(new URL(`mqtt://127.0.0.1:${broker?.port}/contract_dev`), { timeoutMs: 5000 });
      },
      async injectRaw(data) {
        await raw?.publishAsync("contract_dev/rpc", data, { qos: 1 });
      },
      async stop() {
        await device?.close();
        await raw?.endAsync();
        await broker?.stop();
      },
    };
  });
}

/** Run a command with a time bound; resolves with its output. */
function run(cmd: string, args: string[], timeoutMs = 10_000, onStdout?: (s: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("mqtt transport: topics, routing and interop (mosquitto)", { skip, timeout: 60_000 }, () => {
  let broker: MosquittoBroker;
  let device: MqttDeviceLink;
  let deviceChannel: Channel;
  let spy: MqttClient;
  const seen: Array<{ topic: string; payload: string }> = [];
  const server = new RpcServer({ localIds: ["esp32_A1B2C3"] });
  server.addHandler("Test.Echo", (p) => p);
  server.addHandler("Sys.GetInfo", () => ({ id: "esp32_A1B2C3", fw_version: "1.0" }));

  before(async () => {
    broker = await startMosquitto({ websockets: true });
    device = await startMqttDevice({
      server: `127.0.0.1:${broker.port}`,
      clientId: "esp32_A1B2C3",
      deviceId: "esp32_A1B2C3",
      reconnect: { minMs: 100, maxMs: 500 },
      onChannel: (ch) => {
        deviceChannel = ch;
        server.serve(ch);
      },
    });
    spy = await mqtt.connectAsync(broker.url, { clientId: "spy", reconnectPeriod: 0 }, false);
    spy.on("message", (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await spy.subscribeAsync("#", { qos: 1 });
  });

  after(async () => {
    await device?.close();
    await spy?.endAsync();
    await broker?.stop();
  });

  it("parses port URLs as mos does", () => {
    const p = parseMqttPort(new URL("mqtts://u%40x:p%3Aw@broker.example/esp32_A1B2C3"));
    assert.equal(p.brokerUrl, "mqtts://broker.example:8883");
    assert.equal(p.deviceId, "esp32_A1B2C3");
    assert.equal(p.username, "u@x");
    assert.equal(p.password, "p:w");
    assert.equal(parseMqttPort(new URL("mqtt://h/d")).brokerUrl, "mqtt://h:1883");
    assert.equal(parseMqttPort(new URL("mqtt+wss://h/d")).brokerUrl, "wss://h:443/mqtt");
    assert.equal(parseMqttPort(new URL("mqtt+wss://h:8443/d?ws_path=/ws")).brokerUrl, "wss://h:8443/ws");
    assert.throws(() => parseMqttPort(new URL("mqtt://h/")), /device id/);
    assert.throws(() => parseMqttPort(new URL("mqtt://h/a%2B")), /wildcard/);
  });

  it("request on <dev>/rpc with src <dev>/rpc-resp/<clientId>, dst <dev>; reply on <src>/rpc", async () => {
    const ch = await openChannel(`mqtt://127.0.0.1:${broker.port}/esp32_A1B2C3`, { timeoutMs: 5000, clientId: "mos-77" });
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
    try {
      seen.length = 0;
      assert.deepEqual(await client.call("Sys.GetInfo"), { id: "esp32_A1B2C3", fw_version: "1.0" });
      await waitFor(() => seen.some((m) => m.topic === "esp32_A1B2C3/rpc-resp/mos-77/rpc"), 5000);
      const req = seen.find((m) => m.topic === "esp32_A1B2C3/rpc");
      assert.ok(req, `request seen on esp32_A1B2C3/rpc (saw ${seen.map((m) => m.topic).join(", ")})`);
      const rf = JSON.parse(req.payload) as Record<string, unknown>;
      assert.equal(rf.src, "esp32_A1B2C3/rpc-resp/mos-77");
      assert.equal(rf.dst, "esp32_A1B2C3");
      assert.equal(rf.method, "Sys.GetInfo");
      const rep = seen.find((m) => m.topic === "esp32_A1B2C3/rpc-resp/mos-77/rpc");
      const pf = JSON.parse(rep?.payload ?? "{}") as Record<string, unknown>;
      assert.equal(pf.id, rf.id);
      assert.equal(pf.src, "esp32_A1B2C3");
      assert.equal(pf.dst, "esp32_A1B2C3/rpc-resp/mos-77");
      assert.deepEqual(
        seen.map((m) => m.topic).filter((t) => t.startsWith("esp32_A1B2C3")),
        ["esp32_A1B2C3/rpc", "esp32_A1B2C3/rpc-resp/mos-77/rpc"],
        "exactly one request and one reply",
      );
    } finally {
      await client.close();
    }
  });

  it("the default client id is mos-<int31>", async () => {
    const ch = await connect(new URL(`mqtt://127.0.0.1:${broker.port}/esp32_A1B2C3`), { timeoutMs: 5000 });
    try {
      assert.match(ch.clientId, /^mos-\d{1,10}$/);
      assert.ok(Number(ch.clientId.slice(4)) < 2 ** 31);
      assert.equal(ch.src, `esp32_A1B2C3/rpc-resp/${ch.clientId}`);
      assert.equal(ch.info.type, "MQTT");
      assert.equal(ch.info.peer, `mqtt://127.0.0.1:${broker.port}`);
    } finally {
      await ch.close();
    }
  });

  it("interop: mosquitto_rr and mosquitto_pub/mosquitto_sub talk to the device end", async () => {
    const rr = await run("mosquitto_rr", [
      "-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-W", "10",
      "-t", "esp32_A1B2C3/rpc", "-e", "tool_rr/rpc",
      "-m", '{"id":7,"src":"tool_rr","method":"Test.Echo","params":{"x":1}}',
    ]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual(JSON.parse(rr.stdout), { id: 7, src: "esp32_A1B2C3", dst: "tool_rr", result: { x: 1 } });

    // mosquitto_sub waits for the reply; publish once its SUBACK shows in its debug output.
    let subscribed!: () => void;
    const ready = new Promise<void>((r) => (subscribed = r));
    const sub = run(
      "stdbuf", // mosquitto_sub block-buffers a piped stdout: line-buffer it to see the SUBACK at once
      ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-t", "tool_sub/rpc", "-C", "1", "-W", "10", "-d"],
      15_000,
      (out) => {
        if (/SUBACK/.test(out)) subscribed();
      },
    );
    await ready;
    const pub = await run("mosquitto_pub", [
      "-h", "127.0.0.1", "-p", String(broker.port), "-q", "1",
      "-t", "esp32_A1B2C3/rpc", "-m", '{"id":"s-1","src":"tool_sub","method":"Test.Echo","params":[1,2]}',
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    const got = await sub;
    assert.equal(got.code, 0, got.stderr);
    const line = got.stdout.split("\n").find((l) => l.startsWith("{"));
    assert.deepEqual(JSON.parse(line ?? "null"), { id: "s-1", src: "esp32_A1B2C3", dst: "tool_sub", result: [1, 2] });
  });

  it("on <dev>/rpc/<Method> the method comes from the topic suffix", async () => {
    const rr = await run("mosquitto_rr", [
      "-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-W", "10",
      "-t", "esp32_A1B2C3/rpc/Test.Echo", "-e", "tool_suffix/rpc",
      "-m", '{"id":8,"src":"tool_suffix","method":"Ignored.Method","params":{"y":2}}',
    ]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual(JSON.parse(rr.stdout), { id: 8, src: "esp32_A1B2C3", dst: "tool_suffix", result: { y: 2 } });
  });

  it("a request with an id but no src is dropped and logged; the device keeps answering", async () => {
    const events: LogEvent[] = [];
    const off = addLogSink((e) => events.push(e));
    try {
      seen.length = 0;
      await spy.publishAsync("esp32_A1B2C3/rpc", '{"id":9,"method":"Test.Echo","params":1}', { qos: 1 });
      await waitFor(() => events.some((e) => e.message === "Drop frame without src"), 5000);
      const ch = await connect(new URL(`mqtt://127.0.0.1:${broker.port}/esp32_A1B2C3`), { timeoutMs: 5000 });
      const client = new RpcClient(ch, { timeoutMs: 5000 });
      assert.equal(await client.call("Test.Echo", 2), 2);
      await client.close();
      assert.equal(seen.filter((m) => m.payload.includes('"id":9')).length, 1, "only the request itself, no reply");
    } finally {
      off();
    }
  });

  it("a duplicate delivery of the same request (same src and id) runs once", async () => {
    seen.length = 0;
    const req = '{"id":11,"src":"dup_check","method":"Test.Echo","params":"once"}';
    await spy.publishAsync("esp32_A1B2C3/rpc", req, { qos: 1 });
    await spy.publishAsync("esp32_A1B2C3/rpc/Test.Echo", req, { qos: 1 });
    await spy.publishAsync("esp32_A1B2C3/rpc", '{"id":12,"src":"dup_check","method":"Test.Echo","params":"next"}', { qos: 1 });
    await waitFor(() => seen.some((m) => m.topic === "dup_check/rpc" && m.payload.includes('"next"')), 5000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen.filter((m) => m.topic === "dup_check/rpc").map((m) => (JSON.parse(m.payload) as { result: string }).result), ["once", "next"]);
  });

  it("resolves TLS options: files or PEM, ALPN x-amzn-mqtt-ca on port 443", () => {
    assert.deepEqual(resolveTls(undefined, 443, false), { alpn: ["x-amzn-mqtt-ca"] });
    assert.deepEqual(resolveTls(undefined, 8883, false), {});
    assert.deepEqual(resolveTls({ ca: "CA" }, 443, true), { ca: "CA" });
    assert.deepEqual(resolveTls({ cert: "C", key: "K", insecure: true, alpn: ["mqtt"] }, 443, false), { cert: "C", key: "K", insecure: true, alpn: ["mqtt"] });
    assert.throws(() => resolveTls({ certFile: "/nonexistent/cert.pem", keyFile: "/nonexistent/key.pem" }, 8883, false), /cannot read --cert-file/);
    assert.throws(() => resolveTls({ cert: "C" }, 8883, false), /needs both/);
  });

  it("device-originated frames go to <dst>/rpc; without dst to the last requester", async () => {
    seen.length = 0;
    await deviceChannel.send({ src: "esp32_A1B2C3", dst: "watcher", method: "Event.Fired", params: { n: 1 } });
    await waitFor(() => seen.some((m) => m.topic === "watcher/rpc"), 5000);
    await spy.publishAsync("esp32_A1B2C3/rpc", '{"id":10,"src":"last_one","method":"Test.Echo"}', { qos: 1 });
    await waitFor(() => seen.some((m) => m.topic === "last_one/rpc"), 5000);
    await deviceChannel.send({ src: "esp32_A1B2C3", method: "Event.Fired", params: { n: 2 } });
    await waitFor(() => seen.some((m) => m.payload.includes('"n":2')), 5000);
    assert.equal(seen.find((m) => m.payload.includes('"n":2'))?.topic, "last_one/rpc");
    await device.publish("esp32_A1B2C3/log", "hello");
    await waitFor(() => seen.some((m) => m.topic === "esp32_A1B2C3/log" && m.payload === "hello"), 5000);
  });

  it("MQTT over WebSocket (mqtt+ws://host:port/DEV, path /mqtt)", async () => {
    const ch = await openChannel(`mqtt+ws://127.0.0.1:${broker.wsPort}/esp32_A1B2C3`, { timeoutMs: 5000 });
    const client = new RpcClient(ch, { timeoutMs: 5000 });
    try {
      assert.deepEqual(await client.call("Test.Echo", { ws: true }), { ws: true });
    } finally {
      await client.close();
    }
  });

  it("connection refused and a CONNACK refusal are TransportErrors that name the cause", async () => {
    const closed = await startMosquitto();
    const port = closed.port;
    await closed.stop();
    await assert.rejects(
      connect(new URL(`mqtt://127.0.0.1:${port}/dev`), { timeoutMs: 5000 }),
      (e: Error) => e instanceof TransportError && /connection refused/.test(e.message),
    );
    const locked = await startMosquitto({ extraConfig: "allow_anonymous false" });
    try {
      await assert.rejects(
        connect(new URL(`mqtt://nobody:wrong@127.0.0.1:${locked.port}/dev`), { timeoutMs: 5000 }),
        (e: Error) => e instanceof TransportError && /return code 5 \(not authorized\)/.test(e.message),
      );
    } finally {
      await locked.stop();
    }
  });
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("mqtt device end: duplicate deliveries (RecentRequests)", () => {
  it("a src and id seen within 2 s is a duplicate, however often it was seen before", () => {
    const recent = new RecentRequests();
    assert.equal(recent.isDuplicate("app\u00001", 0), false);
    assert.equal(recent.isDuplicate("app\u00001", 100), true, "the second delivery right after the first");
    assert.equal(recent.isDuplicate("app\u00002", 150), false, "another id");
    // the same id again after the window: a new request, recorded again next to the old entry
    assert.equal(recent.isDuplicate("app\u00001", 2500), false);
    // its duplicate must be caught by the newer entry, not missed because the older one is stale
    assert.equal(recent.isDuplicate("app\u00001", 2600), true);
    assert.equal(recent.isDuplicate("other\u00001", 2600), false, "the same id from another src");
  });

  it("remembers the last 8 requests only", () => {
    const recent = new RecentRequests();
    for (let i = 0; i < RecentRequests.SIZE + 1; i++) assert.equal(recent.isDuplicate(`app\u0000${i}`, i), false);
    assert.equal(recent.isDuplicate("app\u00000", 20), false, "pushed out by 8 later requests");
    assert.equal(recent.isDuplicate(`app\u0000${RecentRequests.SIZE}`, 20), true);
  });
});
