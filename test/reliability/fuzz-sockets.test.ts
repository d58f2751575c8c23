/**
 * Real-socket fuzzing of a device agent's receive paths, 10,000 cases per transport: garbage and truncated
 * HTTP requests, broken WebSocket frames after a good upgrade, garbage MQTT payloads through mosquitto,
 * garbage and non-ASCII bytes on a serial pty; plus an oversized HTTP body and a slow client that trickles
 * its headers. Throughout, a well-behaved client keeps calling the same device and every one of its calls
 * must succeed. HTTP and WS cases each open their own connection and half-close it after their bytes (the
 * device reads all of them, then closes), BATCH of them at once per fast-check run.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { connect, type Device } from "../../src/api/device.js";
import { type DeviceAgent, startDevice } from "../../src/device/agent.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";
import { type PtyPair, socatMissing, startPtyPair } from "../helpers/pty.js";

/** Cases per transport. */
const CASES = 10_000;
/** HTTP and WS cases sent at once (each on its own connection) per fast-check run. */
const BATCH = 25;

/** Calls RPC.Ping in a loop until stopped; every call must succeed. */
function keepCalling(dev: Device): { stop(): Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      await dev.call("RPC.Ping", undefined, { timeout: 5000 });
      n++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return n;
    },
  };
}

/**
 * Send bytes on a fresh TCP connection and half-close it, so the peer reads every byte and then closes;
 * resolves with what it answered once it has closed, or after `waitMs` (a bound: the socket is destroyed).
 */
function sendRaw(port: number, data: Buffer | string, waitMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = tcpConnect({ port, host: "127.0.0.1" });
    let got = "";
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve(got);
    };
    const t = setTimeout(done, waitMs);
    s.on("data", (d: Buffer) => (got += d.toString("latin1")));
    s.on("error", done);
    s.on("close", done);
    s.on("connect", () => s.end(data));
  });
}

/** A batch of BATCH inputs from `input`: one fast-check run sends them all at once. */
function batchOf<T>(input: fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.array(input, { minLength: BATCH, maxLength: BATCH });
}

describe("fuzz over real sockets: HTTP and WS", () => {
  let agent: DeviceAgent;
  let dev: Device;
  let port: number;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "remos-fuzz-"));
    agent = await startDevice({ dir, httpListen: "127.0.0.1:0", log: false, loopbackName: false });
    port = agent.httpAddress?.port as number;
    dev = await connect(`http://127.0.0.1:${port}/rpc`, { timeoutMs: 5000 });
  });
  after(async () => {
    await dev?.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("garbage, truncated and oversized HTTP requests and a slow client do not stop other clients", async () => {
    const calls = keepCalling(dev);
    const frame = JSON.stringify({ id: 5, src: "x", method: "RPC.Ping" });
    const req = (body: string, extra = ""): string => `POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
    await fc.assert(
      fc.asyncProperty(
        batchOf(
          fc.oneof(
            fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
            fc.string({ maxLength: 200 }).map((s) => req(s)),
            fc.integer({ min: 1, max: frame.length - 1 }).map((n) => req(frame).slice(0, -n)),
            fc.json().map((j) => req(j)),
            fc.string({ maxLength: 40 }).map((s) => `GET /rpc/${s} HTTP/1.1\r\nHost: x\r\n\r\n`),
          ),
        ),
        async (batch) => {
          await Promise.all(batch.map((data) => sendRaw(port, data)));
        },
      ),
      { numRuns: CASES / BATCH },
    );
    // An oversized body is refused (413) without taking the device down.
    const big = await sendRaw(port, `POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: ${4 * 1024 * 1024}\r\n\r\n` + "x".repeat(2 * 1024 * 1024));
    assert.match(big, /^HTTP\/1\.1 413/);
    // A slow client trickles its headers and holds its socket: others keep being served.
    const slow = tcpConnect({ port, host: "127.0.0.1" });
    slow.on("error", () => undefined);
    const header = "POST /rpc HTTP/1.1\r\nHost: x\r\n";
    for (const ch of header) {
      slow.write(ch);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok((await dev.call<{ channel_info: string }>("RPC.Ping")).channel_info);
    slow.destroy();
    const n = await calls.stop();
    assert.ok(n > 0, "the well-behaved client made calls throughout");
  });

  it("broken WebSocket frames after a good upgrade close only that connection", async () => {
    const ws = await connect(`ws://127.0.0.1:${port}/rpc`, { timeoutMs: 5000 });
    after(() => ws.close());
    const calls = keepCalling(ws);
    const upgrade =
      "GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    await fc.assert(
      fc.asyncProperty(
        batchOf(fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a)),
          // Unmasked client frame (a protocol error), a huge declared length, a bad opcode, bad UTF-8 text.
          fc.constant(Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f])),
          fc.constant(Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])),
          fc.constant(Buffer.from([0x83, 0x80, 0, 0, 0, 0])),
          fc.constant(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28])),
          fc.json().map((j) => {
            const p = Buffer.from(j);
            return p.length < 126 ? Buffer.concat([Buffer.from([0x81, 0x80 | p.length, 0, 0, 0, 0]), p]) : Buffer.from([0x88, 0x80, 0, 0, 0, 0]);
          }),
        )),
        async (batch) => {
          await Promise.all(batch.map((frame) => sendRaw(port, Buffer.concat([Buffer.from(upgrade), frame]))));
        },
      ),
      { numRuns: CASES / BATCH },
    );
    assert.ok(await calls.stop() > 0);
    assert.ok(await dev.call("RPC.Ping"));
  });
});

describe("fuzz over real sockets: MQTT", () => {
  const skip = mosquittoSkipReason();
  let broker: MosquittoBroker;
  let agent: DeviceAgent;
  let dev: Device;
  let dir: string;
  before(async () => {
    if (skip) return;
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), "remos-fuzz-mqtt-"));
    agent = await startDevice({ dir, id: "fuzzdev", httpListen: "off", log: false, loopbackName: false, set: ["mqtt.enable=true", `mqtt.server=127.0.0.1:${broker.port}`] });
    dev = await connect(`${broker.url}/fuzzdev`, { timeoutMs: 5000 });
    for (let i = 0; ; i++) {
      try {
        await dev.call("RPC.Ping", undefined, { timeout: 1000 });
        break;
      } catch (e) {
        if (i > 20) throw e;
      }
    }
  });
  after(async () => {
    await dev?.close();
    await agent?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("garbage payloads on the device's topics do not stop other callers", { skip }, async () => {
    const { connectAsync } = await import("mqtt");
    const evil = await connectAsync(broker.url, { clientId: "fuzz-evil", reconnectPeriod: 0 }, false);
    try {
      const calls = keepCalling(dev);
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.constant("fuzzdev/rpc"), fc.string({ maxLength: 20 }).map((s) => `fuzzdev/rpc/${s.replace(/[#+\0]/g, "")}`)),
          fc.oneof(
            { arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), weight: 40 },
            { arbitrary: fc.json().map((j) => Buffer.from(j)), weight: 40 },
            { arbitrary: fc.constant(Buffer.from(JSON.stringify({ id: 7, method: "RPC.Ping" }))), weight: 10 }, // no src: dropped
            // above the device's frame limit (rare: each is 300 KB through the broker)
            { arbitrary: fc.constant(Buffer.from(JSON.stringify({ id: 8, src: "fuzz/evil", method: "RPC.Ping", params: "x".repeat(300_000) }))), weight: 1 },
          ),
          async (topic, payload) => {
            await evil.publishAsync(topic, payload, { qos: 1 });
          },
        ),
        { numRuns: CASES },
      );
      assert.ok(await calls.stop() > 0);
      assert.ok(await dev.call("RPC.Ping"));
    } finally {
      await evil.endAsync();
    }
  });
});

describe("fuzz over real sockets: serial", () => {
  const skip = socatMissing();
  let pty: PtyPair;
  let agent: DeviceAgent;
  let dir: string;
  before(async () => {
    if (skip) return;
    pty = await startPtyPair();
    dir = mkdtempSync(join(tmpdir(), "remos-fuzz-serial-"));
    agent = await startDevice({ dir, httpListen: "off", serial: pty.b, log: false, loopbackName: false });
  });
  after(async () => {
    await agent?.stop();
    await pty?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("garbage, non-ASCII and oversized input on the UART is dropped and the device answers after it", { skip }, async () => {
    const { openRawSerial } = await import("../../src/transport/serial.js");
    const raw = await openRawSerial(pty.a);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), weight: 40 },
          { arbitrary: fc.string({ unit: "grapheme", maxLength: 50 }).map((s) => Buffer.from(`{"id":1,"src":"x","method":"${s}"}\n`)), weight: 40 },
          // above the UART's 4 KB frame limit (rare: each is 6 KB through the pty)
          { arbitrary: fc.constant(Buffer.from(`{"x":"${"a".repeat(6000)}"}\n`)), weight: 2 },
          { arbitrary: fc.constant(randomBytes(64)), weight: 10 },
        ),
        async (data) => {
          await new Promise<void>((r, j) => raw.write(data, (e) => (e ? j(e) : r())));
        },
      ),
      { numRuns: CASES },
    );
    // The SerialPort itself: close() releases the port's lock (destroy() alone does not, at once).
    await new Promise<void>((r) => (raw as unknown as { close(cb: () => void): void }).close(() => r()));
    const dev = await connect(pty.a, { noPacing: true, timeoutMs: 5000 });
    try {
      for (let i = 0; i < 5; i++) assert.ok(await dev.call("RPC.Ping"));
    } finally {
      await dev.close();
    }
  });
});
