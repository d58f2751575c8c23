/**
 * MqttSession (src/transport/mqtt-session.ts) against scripted brokers on 127.0.0.1, TCP and WebSocket:
 * requests cut off by a dropped connection reject at once with typed errors, nothing is written after
 * DISCONNECT, end() is idempotent and waits for in-flight acknowledgements without polling, mismatched
 * acknowledgements are protocol errors, packet ids wrap without 0 or an id in flight, the retained flag
 * and session-present reach the caller, WebSocket framing (split packets, several per message, text
 * messages refused), and a closed session leaves no timer behind.
 */
import assert from "node:assert/strict";
import { type AddressInfo, type Socket, createServer } from "node:net";
import { after, describe, it } from "node:test";
import type { WebSocketServer } from "ws";
import { ChannelClosedError, RemosError, TlsError, TransportError } from "../../src/errors.js";
import { openMqtt } from "../../src/transport/mqtt-common.js";
import { MqttParser } from "../../src/transport/mqtt-parser.js";
import { MqttSession } from "../../src/transport/mqtt-session.js";
import { MqttProtocolError, encodePacket, encodePublish } from "../../src/transport/mqtt-wire.js";
import { type OnPacket, scriptedBroker, scriptedWsBroker } from "../helpers/scripted-mqtt.js";

const servers: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const s of servers) await s.close();
});

/** A scripted TCP "broker" (test/helpers/scripted-mqtt.ts), closed after the tests; its URL. */
async function broker(onPacket: OnPacket): Promise<string> {
  const b = await scriptedBroker(onPacket);
  servers.push(b);
  return `mqtt://127.0.0.1:${b.port}`;
}

/** A scripted WebSocket "broker", closed after the tests. */
async function wsBroker(): Promise<{ wss: WebSocketServer; url: string }> {
  const b = await scriptedWsBroker();
  servers.push(b);
  return b;
}

const connack = (sessionPresent = false): Buffer => encodePacket({ type: "connack", sessionPresent, returnCode: 0 });

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_r, j) => (t = setTimeout(() => j(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** A session on a broker that accepts the connection and then answers nothing; `socket()` is its end of it. */
async function sessionOnQuietBroker(clientId: string): Promise<{ session: MqttSession; socket: () => Socket | undefined }> {
  let sock: Socket | undefined;
  const url = await broker((s, p) => {
    sock = s;
    if (p.type === "connect") s.write(connack());
  });
  return { session: await MqttSession.connect({ url, clientId }), socket: () => sock };
}

describe("mqtt-session: requests when the connection drops", { timeout: 20_000 }, () => {
  it("pending QoS 1/2 publishes, subscribes and unsubscribes reject at once with a typed error when the broker closes", async () => {
    const { session, socket } = await sessionOnQuietBroker("drop");
    const reqs = [session.publish("t", "x", 1), session.publish("t", "y", 2), session.subscribe("a", 1), session.unsubscribe("a")];
    reqs.forEach((r) => r.catch(() => undefined));
    await new Promise((r) => setTimeout(r, 30));
    socket()?.end();
    for (const r of reqs) await within(assert.rejects(r, (e: Error) => e instanceof ChannelClosedError), 2000, "rejection");
    await assert.rejects(session.publish("t", "late", 1), ChannelClosedError);
    await assert.rejects(session.publish("t", "late", 0), ChannelClosedError);
  });

  it("a reset names the link error in a TransportError", async () => {
    const { session, socket } = await sessionOnQuietBroker("reset");
    const pub = session.publish("t", "x", 1);
    await new Promise((r) => setTimeout(r, 30));
    socket()?.resetAndDestroy();
    await within(assert.rejects(pub, (e: Error) => e instanceof TransportError && /MQTT connection lost: .*ECONNRESET/.test(e.message)), 2000, "rejection");
  });
});

describe("mqtt-session: acknowledgements", { timeout: 20_000 }, () => {
  it("a SUBACK with the wrong number of return codes, or a PUBACK for a SUBSCRIBE, is a protocol error", async () => {
    const url = await broker((s, p) => {
      if (p.type === "connect") s.write(connack());
      if (p.type === "subscribe" && p.subscriptions.length === 2) s.write(encodePacket({ type: "suback", messageId: p.messageId, granted: [1] }));
      if (p.type === "subscribe" && p.subscriptions.length === 1) s.write(encodePacket({ type: "puback", messageId: p.messageId }));
    });
    const a = await MqttSession.connect({ url, clientId: "acks-a" });
    await assert.rejects(a.subscribe(["x", "y"], 1), (e: Error) => e instanceof MqttProtocolError && /SUBACK with 1 return codes for 2 topics/.test(e.message));
    const b = await MqttSession.connect({ url, clientId: "acks-b" });
    await assert.rejects(b.subscribe("x", 1), (e: Error) => e instanceof MqttProtocolError && /PUBACK for packet \d+, which awaits a SUBACK/.test(e.message));
  });

  it("packet ids wrap from 65535 to 1, never 0, and skip ids still in flight", async () => {
    const ids: number[] = [];
    const url = await broker((s, p) => {
      if (p.type === "connect") s.write(connack());
      if (p.type === "publish" && p.messageId) {
        ids.push(p.messageId);
        // 1 stays in flight; the others are acknowledged.
        if (p.messageId !== 1) s.write(encodePacket({ type: "puback", messageId: p.messageId }));
      }
    });
    const session = await MqttSession.connect({ url, clientId: "ids" });
    const inFlight = session.publish("t", "held", 1);
    inFlight.catch(() => undefined);
    (session as unknown as { nextId: number }).nextId = 65534;
    for (let i = 0; i < 4; i++) await within(session.publish("t", `m${i}`, 1), 2000, "puback");
    assert.deepEqual(ids, [1, 65534, 65535, 2, 3]);
    session.destroy();
  });
});

describe("mqtt-session: end()", { timeout: 20_000 }, () => {
  it("nothing is written after DISCONNECT: a QoS 1 message still arriving does not turn a polite close into an error", async () => {
    const seen: string[] = [];
    const url = await broker((s, p) => {
      seen.push(p.type);
      if (p.type === "connect") s.write(connack());
      // A message that crossed our DISCONNECT on the wire; then the broker closes.
      if (p.type === "disconnect") s.end(encodePublish("t", "late", 1, 5));
    });
    const session = await MqttSession.connect({ url, clientId: "late" });
    await within(session.end(), 3000, "end");
    assert.equal(session.error, undefined, `no error (${session.error?.message})`);
    assert.deepEqual(seen, ["connect", "disconnect"]);
  });

  it("a second end() while the first waits for acknowledgements does not cut the connection", async () => {
    const seen: string[] = [];
    const url = await broker((s, p) => {
      seen.push(p.type);
      if (p.type === "connect") s.write(connack());
      if (p.type === "publish" && p.messageId) setTimeout(() => s.write(encodePacket({ type: "puback", messageId: p.messageId ?? 0 })), 100);
      if (p.type === "disconnect") s.end();
    });
    const session = await MqttSession.connect({ url, clientId: "twice" });
    const pub = session.publish("t", "x", 1);
    const first = session.end(2000);
    const second = session.end(2000);
    await within(pub, 2000, "puback");
    await within(Promise.all([first, second]), 3000, "end");
    assert.deepEqual(seen, ["connect", "publish", "disconnect"]);
  });

  it("waits for in-flight acknowledgements only up to the grace period, then rejects them typed", async () => {
    const url = await broker((s, p) => {
      if (p.type === "connect") s.write(connack());
      if (p.type === "disconnect") s.end();
    });
    const session = await MqttSession.connect({ url, clientId: "grace" });
    const pub = session.publish("t", "never acked", 1);
    pub.catch(() => undefined);
    const t0 = Date.now();
    await within(session.end(200), 3000, "end");
    assert.ok(Date.now() - t0 >= 150, "waited for the acknowledgement");
    await assert.rejects(pub, RemosError);
  });

  it("a closed session leaves no timer or handle behind", async () => {
    const url = await broker((s, p) => {
      if (p.type === "connect") s.write(connack());
      if (p.type === "publish" && p.messageId) s.write(encodePacket({ type: "puback", messageId: p.messageId }));
      if (p.type === "disconnect") s.end();
    });
    await new Promise((r) => setTimeout(r, 20));
    const count = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout" || r === "TCPSocketWrap").length;
    const before = count();
    const session = await MqttSession.connect({ url, clientId: "leak", keepalive: 5 });
    await session.publish("t", "x", 1);
    await session.end();
    await new Promise((r) => setTimeout(r, 20));
    // At most as many as before (sockets of earlier tests may still be closing, never more).
    assert.ok(count() <= before, `${count()} timers/sockets now, ${before} before`);
  });
});

describe("mqtt-session: what reaches the caller", { timeout: 20_000 }, () => {
  it("the retained flag of incoming messages and the CONNACK's session-present", async () => {
    const url = await broker((s, p) => {
      if (p.type === "connect") {
        s.write(connack(true));
        s.write(encodePublish("r", "old", 0, undefined, true));
        s.write(encodePublish("r", "new", 1, 4, false));
      }
    });
    const got: Array<[string, boolean]> = [];
    let done!: () => void;
    const two = new Promise<void>((r) => (done = r));
    const session = await MqttSession.connect({ url, clientId: "ret", clean: false }, (s) =>
      s.on("message", (_t, payload, retain) => {
        got.push([payload.toString(), retain]);
        if (got.length === 2) done();
      }),
    );
    assert.equal(session.sessionPresent, true);
    await within(two, 2000, "messages");
    assert.deepEqual(got, [["old", true], ["new", false]]);
    session.destroy();
  });
});

describe("mqtt-session: incoming QoS 2", { timeout: 20_000 }, () => {
  it("a QoS 2 message sent again before its PUBREL is acknowledged but delivered once; after PUBREL the id is new", async () => {
    const seen: string[] = [];
    const url = await broker((s, p) => {
      seen.push(p.type === "pubrec" || p.type === "pubcomp" ? `${p.type}:${p.messageId}` : p.type);
      if (p.type === "connect") {
        s.write(connack());
        s.write(encodePublish("q2", "one", 2, 9));
        s.write(encodePublish("q2", "one", 2, 9, false, true)); // DUP, before PUBREL
        s.write(encodePacket({ type: "pubrel", messageId: 9 }));
        s.write(encodePublish("q2", "two", 2, 9)); // the id, free again
        s.write(encodePacket({ type: "pubrel", messageId: 9 }));
      }
    });
    const got: string[] = [];
    const session = await MqttSession.connect({ url, clientId: "q2dup" }, (s) => s.on("message", (_t, p) => got.push(p.toString())));
    const deadline = Date.now() + 2000;
    while (seen.filter((t) => t === "pubcomp:9").length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ["one", "two"]);
    assert.deepEqual(seen, ["connect", "pubrec:9", "pubrec:9", "pubcomp:9", "pubrec:9", "pubcomp:9"]);
    session.destroy();
  });
});

describe("mqtt-session over WebSocket", { timeout: 20_000 }, () => {
  it("packets split across messages and several in one message are parsed; a text message is a protocol error", async () => {
    const { wss, url } = await wsBroker();
    wss.on("connection", (ws) => {
      const parser = new MqttParser(1 << 20);
      ws.on("message", (d: Buffer) => {
        for (const p of parser.push(d)) {
          if (p.type === "connect") {
            const c = connack();
            for (const b of c) ws.send(Buffer.from([b]), { binary: true }); // one byte per message
          }
          if (p.type === "subscribe") {
            const both = Buffer.concat([encodePacket({ type: "suback", messageId: p.messageId, granted: [1] }), encodePublish("w", "hello", 0, undefined)]);
            ws.send(both.subarray(0, 3), { binary: true });
            ws.send(both.subarray(3), { binary: true });
          }
          if (p.type === "publish" && p.topic === "text-please") ws.send("not mqtt");
        }
      });
    });
    let got!: (s: string) => void;
    const message = new Promise<string>((r) => (got = r));
    const session = await within(MqttSession.connect({ url, clientId: "ws" }, (s) => s.on("message", (_t, p) => got(p.toString()))), 3000, "connect");
    assert.deepEqual(await within(session.subscribe("w", 1), 2000, "suback"), [1]);
    assert.equal(await within(message, 2000, "message"), "hello");
    await session.publish("text-please", "", 0);
    await within(session.closed, 2000, "close");
    assert.ok(session.error instanceof MqttProtocolError, String(session.error));
  });
});

describe("mqtt-session over WebSocket: end()", { timeout: 20_000 }, () => {
  it("DISCONNECT reaches the broker before the WebSocket closes", async () => {
    const { wss, url } = await wsBroker();
    const seen: string[] = [];
    wss.on("connection", (ws) => {
      const parser = new MqttParser(1 << 20);
      ws.on("message", (d: Buffer) => {
        for (const p of parser.push(d)) {
          seen.push(p.type);
          if (p.type === "connect") ws.send(connack(), { binary: true });
        }
      });
    });
    const session = await MqttSession.connect({ url, clientId: "ws-end" });
    await within(session.end(), 3000, "end");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, ["connect", "disconnect"]);
    assert.equal(session.error, undefined);
  });
});

describe("mqtt-session: a broker that does not read", { timeout: 30_000 }, () => {
  it("publishes are refused with a TransportError once maxUnsentBytes are waiting, instead of buffering without bound", async () => {
    const url = await broker((s, p) => {
      if (p.type === "connect") {
        s.write(connack());
        s.pause(); // reads nothing more
      }
    });
    const session = await MqttSession.connect({ url, clientId: "slow", maxUnsentBytes: 256 * 1024 });
    const chunk = Buffer.alloc(100 * 1024, 0x61);
    let refused: unknown;
    // Not awaited: once the kernel's buffers are full, a QoS 0 publish waits for the socket.
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < 600 && refused === undefined; i++) {
      const p = session.publish("t", chunk, 0);
      p.catch((e: unknown) => (refused ??= e));
      sent.push(p);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(refused instanceof TransportError && /not keeping up: \d+ bytes still unsent/.test(refused.message), String(refused));
    assert.equal(session.connected, true, "the connection itself stays up");
    session.destroy();
    // The publishes stuck in the socket's buffer reject (typed) when it is destroyed: none hangs.
    const settled = await within(Promise.allSettled(sent), 2000, "stuck publishes settle");
    assert.ok(settled.some((r) => r.status === "rejected"));
    for (const r of settled) if (r.status === "rejected") assert.ok(r.reason instanceof RemosError, String(r.reason));
  });
});

describe("openMqtt: connection failures name their cause (as with mqtt.js)", { timeout: 20_000 }, () => {
  /** A raw TCP server on 127.0.0.1 doing `onConnection` with each socket. */
  async function raw(onConnection: (s: Socket) => void): Promise<number> {
    const server = createServer((s) => {
      s.on("error", () => undefined);
      onConnection(s);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    servers.push({ close: () => new Promise((r) => server.close(() => r())) });
    return (server.address() as AddressInfo).port;
  }
  const open = (url: string, tlsUsed = false): Promise<MqttSession> => openMqtt({ url, clientId: "e", ...(tlsUsed ? { tls: { rejectUnauthorized: true } } : {}) }, { timeoutMs: 3000, peer: "P", tlsUsed });

  it("refused, closed before CONNACK, mqtts:// to a plain port, ws:// to a non-WebSocket server, garbage instead of CONNACK", async () => {
    await new Promise<void>((r) => {
      // A port that was just free: nothing listens there.
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => {
          void assert.rejects(open(`mqtt://127.0.0.1:${port}`), (e: Error) => e instanceof TransportError && e.message === "P: connection refused (is the broker running?)").then(r);
        });
      });
    });
    const closing = await raw((s) => s.once("data", () => s.end()));
    await assert.rejects(open(`mqtt://127.0.0.1:${closing}`), (e: Error) => e instanceof TransportError && e.message === "P: connection closed before the broker accepted it");
    const plain = await raw((s) => s.once("data", () => s.write(Buffer.concat([connack(), encodePacket({ type: "pingresp" }), connack()]))));
    await assert.rejects(open(`mqtts://127.0.0.1:${plain}`, true), (e: Error) => e instanceof TlsError && /TLS handshake failed \(is this a TLS port\?\)/.test(e.message));
    const http = await raw((s) => s.once("data", () => s.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")));
    await assert.rejects(open(`ws://127.0.0.1:${http}/mqtt`), (e: Error) => e instanceof TransportError && /P: Unexpected server response: 404/.test(e.message));
    let sawBytes = false;
    const quiet = await raw((s) => s.once("data", () => (sawBytes = true)));
    await assert.rejects(
      openMqtt({ url: `mqtt://127.0.0.1:${quiet}`, clientId: "e", password: "pw" }, { timeoutMs: 3000, peer: "P", tlsUsed: false }),
      (e: Error) => e instanceof TransportError && /^P: MQTT protocol error: a password needs a user name/.test(e.message),
    );
    assert.equal(sawBytes, false, "no invalid CONNECT was sent");
    const junk = await raw((s) => s.once("data", () => s.write(Buffer.from([0xf0, 0x00]))));
    await assert.rejects(open(`mqtt://127.0.0.1:${junk}`), (e: Error) => e instanceof TransportError && /^P: MQTT protocol error: reserved packet type 15/.test(e.message));
  });
});

describe("mqtt-session: keepalive", { timeout: 20_000 }, () => {
  it("an event-loop stall longer than the keepalive period is not mistaken for a dead broker (a PINGRESP waiting unread counts)", async () => {
    let pings = 0;
    const url = await broker((s, p) => {
      if (p.type === "connect") s.write(connack());
      if (p.type === "pingreq") {
        s.write(encodePacket({ type: "pingresp" }));
        // Stall this process (client included) past the next keepalive tick, the PINGRESP unread.
        if (++pings === 1) {
          const until = Date.now() + 1300;
          while (Date.now() < until);
        }
      }
    });
    const session = await MqttSession.connect({ url, clientId: "stall", keepalive: 1 });
    const deadline = Date.now() + 6000;
    while (pings < 3 && Date.now() < deadline && !session.closing) await new Promise((r) => setTimeout(r, 50));
    assert.equal(session.error, undefined, String(session.error));
    assert.ok(pings >= 3, `kept pinging (${pings})`);
    session.destroy();
  });
});
