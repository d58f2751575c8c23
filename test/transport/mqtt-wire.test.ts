/**
 * The MQTT 3.1.1 codec (src/transport/mqtt-wire.ts, mqtt-parser.ts) without sockets: every packet type round-trips,
 * the incremental parser gives the same packets however the bytes are split, arbitrary bytes never make
 * it throw anything but MqttProtocolError, and oversized packets are refused (PUBLISH: skipped and
 * reported) without being buffered. Plus the session (mqtt-session.ts) against scripted TCP brokers:
 * a dead broker is detected through keepalive, and garbage from a broker closes the connection.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { AbortedError, TransportError } from "../../src/errors.js";
import { openMqtt } from "../../src/transport/mqtt-common.js";
import { MqttSession } from "../../src/transport/mqtt-session.js";
import { MqttParser } from "../../src/transport/mqtt-parser.js";
import { type ScriptedBroker, scriptedBroker } from "../helpers/scripted-mqtt.js";
import {
  MAX_REMAINING_LENGTH,
  MqttProtocolError,
  type Packet,
  connackMessage,
  encodePacket,
  encodePublish,
} from "../../src/transport/mqtt-wire.js";

const EVERY_TYPE: Packet[] = [
  { type: "connect", clientId: "mos-123", clean: true, keepalive: 60 },
  {
    type: "connect",
    clientId: "dev",
    clean: false,
    keepalive: 0,
    username: "üser",
    password: Buffer.from([0, 1, 255]),
    will: { topic: "dev/status", payload: Buffer.from("gone"), qos: 1, retain: true },
  },
  { type: "connack", sessionPresent: false, returnCode: 0 },
  { type: "connack", sessionPresent: true, returnCode: 5 },
  { type: "publish", topic: "a/rpc", payload: Buffer.from('{"id":1}'), qos: 0, dup: false, retain: false },
  { type: "publish", topic: "ü/rpc", payload: Buffer.alloc(0), qos: 1, dup: true, retain: true, messageId: 65535 },
  { type: "publish", topic: "t", payload: Buffer.alloc(20_000, 7), qos: 2, dup: false, retain: false, messageId: 1 },
  { type: "puback", messageId: 7 },
  { type: "pubrec", messageId: 8 },
  { type: "pubrel", messageId: 9 },
  { type: "pubcomp", messageId: 10 },
  { type: "subscribe", messageId: 2, subscriptions: [{ topic: "a/rpc", qos: 1 }, { topic: "a/rpc/#", qos: 0 }] },
  { type: "suback", messageId: 2, granted: [1, 0, 2, 0x80] },
  { type: "unsubscribe", messageId: 3, topics: ["a/rpc", "b"] },
  { type: "unsuback", messageId: 3 },
  { type: "pingreq" },
  { type: "pingresp" },
  { type: "disconnect" },
];

function parseAll(chunks: Buffer[], max = 1024 * 1024): unknown[] {
  const parser = new MqttParser(max);
  const out: unknown[] = [];
  for (const c of chunks) out.push(...parser.push(c));
  assert.equal(parser.buffered, 0, "nothing left over");
  return out;
}

describe("mqtt-wire: encode/decode", () => {
  it("every packet type round-trips", () => {
    for (const p of EVERY_TYPE) assert.deepEqual(parseAll([encodePacket(p)]), [p], p.type);
  });

  it("known bytes: CONNECT, PUBLISH QoS 1, SUBACK failure, PINGREQ", () => {
    assert.equal(
      encodePacket({ type: "connect", clientId: "c", clean: true, keepalive: 60 }).toString("hex"),
      "100d00044d5154540402003c000163",
    );
    assert.equal(encodePublish("a", "hi", 1, 5).toString("hex"), "3207000161000568" + "69");
    assert.deepEqual(parseAll([Buffer.from("900300018" + "0", "hex")]), [{ type: "suback", messageId: 1, granted: [0x80] }]);
    assert.equal(encodePacket({ type: "pingreq" }).toString("hex"), "c000");
  });

  it("remaining length uses up to 4 varint bytes", () => {
    for (const n of [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const buf = encodePublish("t", Buffer.alloc(n - 3 < 0 ? 0 : n - 3), 0, undefined);
      const header = buf.length - Math.max(3, n);
      assert.equal(header, 1 + (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4), `length ${n}`);
      assert.equal((parseAll([buf], 4 * 1024 * 1024)[0] as { payload: Buffer }).payload.length, Math.max(0, n - 3));
    }
    // 5 varint bytes are refused.
    assert.throws(() => new MqttParser(MAX_REMAINING_LENGTH).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), MqttProtocolError);
  });

  it("CONNACK return codes have clear words", () => {
    assert.equal(connackMessage(5), "not authorized");
    assert.equal(connackMessage(4), "bad user name or password");
    assert.equal(connackMessage(2), "identifier rejected");
    assert.match(connackMessage(77), /unknown return code 77/);
  });

  it("values MQTT cannot carry are refused when encoding", () => {
    assert.throws(() => encodePacket({ type: "puback", messageId: 0 }), MqttProtocolError);
    assert.throws(() => encodePublish("x".repeat(70_000), "", 0, undefined), MqttProtocolError);
    assert.throws(() => encodePublish("t", "", 1, undefined), MqttProtocolError);
    for (const t of ["", "a/+", "#", "a\0"]) assert.throws(() => encodePublish(t, "", 0, undefined), /not an MQTT topic name/, JSON.stringify(t));
    for (const f of ["", "a+", "+a", "a/#/b", "a#", "++", "a/\0"]) {
      assert.throws(() => encodePacket({ type: "subscribe", messageId: 1, subscriptions: [{ topic: f, qos: 0 }] }), /not an MQTT topic filter/, JSON.stringify(f));
      assert.throws(() => encodePacket({ type: "unsubscribe", messageId: 1, topics: [f] }), /not an MQTT topic filter/, JSON.stringify(f));
    }
    for (const f of ["#", "+", "a/#", "a/+/b", "+/+", "/", "a//b", "$SYS/#"]) encodePacket({ type: "subscribe", messageId: 1, subscriptions: [{ topic: f, qos: 1 }] });
    assert.throws(() => encodePacket({ type: "subscribe", messageId: 1, subscriptions: [] }), MqttProtocolError);
    // As mqtt.js did: a password without a user name is not valid MQTT 3.1.1 (§3.1.2.9).
    assert.throws(() => encodePacket({ type: "connect", clientId: "c", clean: true, keepalive: 60, password: Buffer.from("pw") }), /password needs a user name/);
  });
});

describe("mqtt-wire: incremental parser", () => {
  const stream = Buffer.concat(EVERY_TYPE.map(encodePacket));

  it("the same packets however the bytes are split (every offset, and byte by byte)", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(parseAll([stream.subarray(0, cut), stream.subarray(cut)]), EVERY_TYPE, `split at ${cut}`);
    }
    const small = Buffer.concat(EVERY_TYPE.filter((p) => p.type !== "publish" || p.payload.length < 100).map(encodePacket));
    assert.equal(parseAll([...small].map((b) => Buffer.from([b]))).length, EVERY_TYPE.length - 1);
  });

  it("three-way splits of a short stream", () => {
    const s = Buffer.concat([encodePublish("a/b", "xyz", 1, 3), encodePacket({ type: "suback", messageId: 3, granted: [1] }), encodePacket({ type: "pingresp" })]);
    for (let i = 0; i <= s.length; i++) {
      for (let j = i; j <= s.length; j++) assert.equal(parseAll([s.subarray(0, i), s.subarray(i, j), s.subarray(j)]).length, 3);
    }
  });

  it("a packet above the size limit is refused before it is buffered", () => {
    const parser = new MqttParser(1000);
    // SUBACK claiming 2 MB: refused from its header alone.
    assert.throws(() => parser.push(Buffer.from([0x90, 0x80, 0x80, 0x80, 0x01])), (e: Error) => e instanceof MqttProtocolError && /exceeds the 1000-byte limit/.test(e.message));
  });

  it("an oversized PUBLISH is reported with its routing and skipped, the next packets still parse", () => {
    const big = encodePublish("dev/rpc", Buffer.alloc(5000, 0x7b), 1, 42);
    const next = encodePacket({ type: "pingresp" });
    const all = Buffer.concat([big, next]);
    for (const step of [1, 7, 100, 4096, all.length]) {
      const parser = new MqttParser(1000);
      const out: unknown[] = [];
      for (let i = 0; i < all.length; i += step) out.push(...parser.push(all.subarray(i, i + step)));
      assert.deepEqual(out, [{ type: "publish-oversized", topic: "dev/rpc", qos: 1, messageId: 42, size: big.length - 3 }, { type: "pingresp" }], `step ${step}`);
      assert.ok(parser.buffered < 1100, "the big payload was not held");
    }
  });

  it("garbage: reserved types, bad flags, stray bytes, QoS 3, packet id 0 are protocol errors", () => {
    for (const hex of ["0000", "f000", "c100", "c00100", "3600", "4003000100", "40020000", "6002000a", "9002000a", "900300010a", "2002020000"]) {
      assert.throws(() => new MqttParser(1000).push(Buffer.from(hex, "hex")), MqttProtocolError, hex);
    }
  });

  it("PUBLISH topics that MQTT forbids (empty, bad UTF-8, U+0000, wildcards) are protocol errors, oversized ones too", () => {
    const withTopic = (topic: Buffer, qos: 0 | 1, payload = 0): Buffer => {
      const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 255]), topic, qos ? Buffer.from([0, 9]) : Buffer.alloc(0), Buffer.alloc(payload)]);
      return Buffer.concat([Buffer.from([0x30 | (qos << 1)]), Buffer.from(body.length < 128 ? [body.length] : [(body.length & 127) | 128, body.length >> 7]), body]);
    };
    for (const t of [Buffer.alloc(0), Buffer.from([0x61, 0xff]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from("a\0b"), Buffer.from("a/+/b"), Buffer.from("a/#")]) {
      for (const qos of [0, 1] as const) {
        assert.throws(() => new MqttParser(1000).push(withTopic(t, qos)), MqttProtocolError, `topic ${t.toString("hex")} qos ${qos}`);
        assert.throws(() => new MqttParser(100).push(withTopic(t, qos, 500)), MqttProtocolError, `oversized, topic ${t.toString("hex")}`);
      }
    }
    assert.deepEqual(parseAll([withTopic(Buffer.from("ü/$x/ok"), 1)]), [{ type: "publish", topic: "ü/$x/ok", payload: Buffer.alloc(0), qos: 1, dup: false, retain: false, messageId: 9 }]);
  });

  it("fast-check: 10,000 arbitrary byte streams never throw anything but MqttProtocolError", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), (chunks) => {
        const parser = new MqttParser(4096);
        try {
          for (const c of chunks) parser.push(Buffer.from(c));
        } catch (e) {
          if (!(e instanceof MqttProtocolError)) throw e;
        }
      }),
      { numRuns: 10_000 },
    );
  });

  it("fast-check: valid packets with a corrupted byte never throw anything but MqttProtocolError", () => {
    fc.assert(
      fc.property(fc.constantFrom(...EVERY_TYPE), fc.nat(), fc.integer({ min: 0, max: 255 }), (p, at, b) => {
        const buf = Buffer.from(encodePacket(p));
        buf[at % buf.length] = b;
        try {
          new MqttParser(4096).push(buf);
        } catch (e) {
          if (!(e instanceof MqttProtocolError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("mqtt-session against scripted brokers", { timeout: 20_000 }, () => {
  const servers: ScriptedBroker[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });
  const connack = encodePacket({ type: "connack", sessionPresent: false, returnCode: 0 });

  it("a broker that stops answering PINGREQ is detected within two keepalive periods", async () => {
    const b = await scriptedBroker((s, p) => {
      if (p.type === "connect") s.write(connack); // CONNACK, then silence
    });
    servers.push(b);
    const session = await MqttSession.connect({ url: `mqtt://127.0.0.1:${b.port}`, clientId: "ka", keepalive: 1 });
    const t0 = Date.now();
    await Promise.race([session.closed, new Promise((_r, j) => setTimeout(() => j(new Error("not detected in 8 s")), 8000))]);
    assert.ok(Date.now() - t0 >= 900, "not before one keepalive period");
    assert.match(session.error?.message ?? "", /no PINGRESP/);
  });

  it("garbage from the broker closes the connection with MqttProtocolError; pending publishes reject", async () => {
    let sock: Socket | undefined;
    const b = await scriptedBroker((s, p) => {
      sock = s;
      if (p.type === "connect") s.write(connack);
    });
    servers.push(b);
    const session = await MqttSession.connect({ url: `mqtt://127.0.0.1:${b.port}`, clientId: "junk" });
    const pub = session.publish("t", "x", 1);
    await new Promise((r) => setTimeout(r, 20));
    sock?.write(Buffer.from([0xf0, 0x00]));
    await assert.rejects(pub, MqttProtocolError);
    await session.closed;
    assert.ok(session.error instanceof MqttProtocolError);
  });

  it("a QoS 1 publish resolves on PUBACK; subscribe returns the granted QoS", async () => {
    const b = await scriptedBroker((s, p) => {
      if (p.type === "connect") s.write(connack);
      if (p.type === "publish" && p.messageId) s.write(encodePacket({ type: "puback", messageId: p.messageId }));
      if (p.type === "subscribe") s.write(encodePacket({ type: "suback", messageId: p.messageId, granted: [1, 0x80] }));
    });
    servers.push(b);
    const session = await MqttSession.connect({ url: `mqtt://127.0.0.1:${b.port}`, clientId: "ok" });
    await session.publish("t", "hello", 1);
    assert.deepEqual(await session.subscribe(["a", "b"], 1), [1, 0x80]);
    await session.end();
    await assert.rejects(session.publish("t", "late", 1), /closed/);
  });

  it("QoS 2 both ways: PUBREC/PUBREL/PUBCOMP", async () => {
    const seen: string[] = [];
    const b = await scriptedBroker((s, p) => {
      seen.push(p.type);
      if (p.type === "connect") {
        s.write(connack);
        s.write(encodePublish("in/q2", "incoming", 2, 77));
      }
      if (p.type === "publish" && p.messageId) s.write(encodePacket({ type: "pubrec", messageId: p.messageId }));
      if (p.type === "pubrel") s.write(encodePacket({ type: "pubcomp", messageId: p.messageId }));
      if (p.type === "pubrec") s.write(encodePacket({ type: "pubrel", messageId: p.messageId }));
    });
    servers.push(b);
    let got!: (s: string) => void;
    const incoming = new Promise<string>((resolve) => (got = resolve));
    const session = await MqttSession.connect({ url: `mqtt://127.0.0.1:${b.port}`, clientId: "q2" }, (s) => s.on("message", (_t, payload) => got(payload.toString())));
    await session.publish("out/q2", "outgoing", 2);
    assert.equal(await incoming, "incoming");
    await new Promise((r) => setTimeout(r, 50));
    for (const t of ["pubrel", "pubrec", "pubcomp"]) assert.ok(seen.includes(t), `broker saw ${t} (${seen.join(",")})`);
    await session.end();
  });

  it("the first packet of a tick leaves at once, the rest of the tick together (corked: one writev)", async () => {
    let publishes = 0;
    const b = await scriptedBroker((s, p) => {
      if (p.type === "connect") s.write(connack);
      if (p.type === "publish") publishes++;
    });
    servers.push(b);
    const session = await MqttSession.connect({ url: `mqtt://127.0.0.1:${b.port}`, clientId: "cork" });
    // Count what the stream hands to the socket handle: one _writev for the batch, or one _write per packet.
    const sock = session.socket as unknown as Record<string, (...a: unknown[]) => unknown>;
    const calls: string[] = [];
    for (const name of ["_write", "_writev"]) {
      const orig = sock[name]?.bind(sock);
      if (orig) sock[name] = (...a: unknown[]) => (calls.push(name), orig(...a));
    }
    await Promise.all(Array.from({ length: 50 }, (_, i) => session.publish("t", `m${i}`, 0)));
    const deadline = Date.now() + 5000;
    while (publishes < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(publishes, 50);
    assert.deepEqual(calls, ["_write", "_writev"], "50 publishes in one tick: the first at once, 49 in one writev");
    await session.end();
  });

  it("openMqtt: a broker that never sends CONNACK times out, an abort is AbortedError, refusals are typed", async () => {
    const b = await scriptedBroker(() => undefined);
    servers.push(b);
    const url = `mqtt://127.0.0.1:${b.port}`;
    await assert.rejects(
      openMqtt({ url, clientId: "slow" }, { timeoutMs: 300, peer: url, tlsUsed: false }),
      (e: Error) => e instanceof TransportError && /no answer from the broker within 300 ms/.test(e.message),
    );
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(openMqtt({ url, clientId: "abort" }, { timeoutMs: 5000, signal: ac.signal, peer: url, tlsUsed: false }), AbortedError);
    const refusing = await scriptedBroker((s, p) => {
      if (p.type === "connect") s.write(encodePacket({ type: "connack", sessionPresent: false, returnCode: 4 }));
    });
    servers.push(refusing);
    await assert.rejects(
      openMqtt({ url: `mqtt://127.0.0.1:${refusing.port}`, clientId: "bad" }, { timeoutMs: 5000, peer: "P", tlsUsed: false }),
      (e: Error) => e instanceof TransportError && e.message === "P: broker refused the connection, return code 4 (bad user name or password)",
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(b.sockets.size, 0, "the timed-out and aborted connections were closed");
  });
});
