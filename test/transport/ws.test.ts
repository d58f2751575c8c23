/**
 * WebSocket specifics (spec §2.3): the client's handshake (subprotocol sent, echo not required, BINARY
 * accepted), the device end (subprotocol echo, WS_in channel, digest on the upgrade), a clean close from
 * the device failing pending calls, and the device's outbound link (json-rpc, reconnect with backoff).
 */
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import WebSocket, { WebSocketServer } from "ws";
import { ChannelClosedError, TlsError } from "../../src/errors.js";
import type { Channel, ChannelInfo } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { httpDigestAuthorization } from "../../src/rpc/digest.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type HttpDeviceServer, listenHttp } from "../../src/transport/http-device.js";
import { connect as connectWs, connectWsOut } from "../../src/transport/ws.js";
import { testDigestAuthority, tlsMaterial } from "./http-fixtures.js";

/** A bare `ws` server standing in for some other device: answers every request frame with its id. */
async function fakeDevice(o: { echoProtocol: boolean; binary: boolean }): Promise<{ port: number; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (protocols) => (o.echoProtocol ? (protocols.values().next().value ?? false) : false),
  });
  wss.on("connection", (ws, req) => {
    requests.push(req);
    // Pushed at once: it may travel in the same TCP segment as the 101 response.
    ws.send(JSON.stringify({ src: "fake", method: "Fake.Hello", params: { n: 1 } }));
    ws.on("message", (data) => {
      const f = JSON.parse(String(data)) as { id: number };
      ws.send(JSON.stringify({ id: f.id, src: "fake", result: { ok: true } }), { binary: o.binary });
    });
  });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  return {
    port: (wss.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

/** Resolve with `p`, or reject after `ms` so that a lost message fails the test instead of hanging it. */
function within<T>(what: string, p: Promise<T>, ms = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function waitFor<T>(what: string, get: () => T | undefined, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = (): void => {
      const v = get();
      if (v !== undefined) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

describe("WebSocket client handshake", { timeout: 30_000 }, () => {
  for (const variant of [
    { echoProtocol: false, binary: false, name: "a server that does not echo the subprotocol" },
    { echoProtocol: true, binary: true, name: "a server that echoes it and answers in BINARY" },
  ]) {
    it(`works with ${variant.name}`, async () => {
      const fake = await fakeDevice(variant);
      try {
        const ch = await connectWs(new URL(`ws://user:pw@127.0.0.1:${fake.port}/rpc`), { timeoutMs: 5000 });
        const client = new RpcClient(ch, { src: "mos" });
        const hello = new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error("the frame pushed right behind the handshake was lost")), 5000);
          client.onNotification((n) => {
            clearTimeout(t);
            resolve(n.params);
          });
        });
        assert.deepEqual(await client.call("Sys.GetInfo"), { ok: true });
        assert.deepEqual(await hello, { n: 1 }, "a frame sent right behind the handshake is not lost");
        await client.close();
        const req = fake.requests[0];
        assert.equal(req.headers["sec-websocket-protocol"], "clubby.cesanta.com");
        assert.equal(req.headers.origin, "https://api.cesanta.com/");
        assert.equal(req.headers.authorization, undefined, "userinfo is not sent as Basic auth");
        assert.equal(req.headers["sec-websocket-extensions"], undefined);
      } finally {
        await fake.close();
      }
    });
  }

  it("a refused connection is a TransportError naming the cause", async () => {
    const fake = await fakeDevice({ echoProtocol: false, binary: false });
    const port = fake.port;
    await fake.close();
    await assert.rejects(connectWs(new URL(`ws://127.0.0.1:${port}/rpc`), { timeoutMs: 5000 }), (e: Error) => /connection refused/.test(e.message));
  });
});

describe("WebSocket device end", { timeout: 30_000 }, () => {
  const rpc = new RpcServer({ localIds: ["wsdev"] });
  const auth = testDigestAuthority("myproduct", { joe: "secret" });
  const infos: ChannelInfo[] = [];
  const channels: Channel[] = [];
  let dev: HttpDeviceServer;
  rpc.addHandler("Test.Who", (_p, ctx) => ({ user: ctx.user ?? null, type: ctx.channel.type }));
  rpc.addHandler("Test.Hang", () => new Promise(() => undefined));

  before(async () => {
    dev = await listenHttp({
      host: "127.0.0.1",
      port: 0,
      httpAuth: auth,
      onChannel: (ch) => {
        infos.push(ch.info);
        channels.push(ch);
        rpc.serve(ch);
      },
    });
  });
  after(async () => {
    rpc.stopAll();
    await dev.close();
  });

  it("echoes the subprotocol, and each connection is a WS_in channel with the peer address", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${dev.port}/rpc`, "clubby.cesanta.com");
    await within("open", new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }));
    assert.equal(ws.protocol, "clubby.cesanta.com");
    const info = await waitFor("channel", () => infos.at(-1));
    assert.equal(info.type, "WS_in");
    assert.match(info.peer, /^127\.0\.0\.1:\d+$/);
    const answer = within("the answer", new Promise<string>((r) => ws.once("message", (d) => r(String(d)))));
    ws.send('{"id":3,"src":"raw","method":"Test.Who"}');
    assert.deepEqual(JSON.parse(await answer), { id: 3, src: "wsdev", dst: "raw", result: { user: null, type: "WS_in" } });
    ws.close();
  });

  it("a valid HTTP Digest on the upgrade puts its user on the channel; a wrong one leaves it anonymous", async () => {
    for (const [password, expected] of [
      ["secret", "joe"],
      ["wrong", null],
    ] as const) {
      const authorization = httpDigestAuthorization(auth.challenge(), { username: "joe", password }, "GET", "/rpc");
      assert.ok(authorization);
      const ws = new WebSocket(`ws://127.0.0.1:${dev.port}/rpc`, { headers: { Authorization: authorization } });
      await within("open", new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      }));
      const answer = within("the answer", new Promise<string>((r) => ws.once("message", (d) => r(String(d)))));
      ws.send('{"id":4,"method":"Test.Who"}');
      assert.deepEqual(JSON.parse(await answer).result, { user: expected, type: "WS_in" });
      ws.close();
    }
  });

  it("when the device closes the link cleanly, pending calls fail with ChannelClosedError", async () => {
    const before = channels.length;
    const client = new RpcClient(await connectWs(new URL(`ws://127.0.0.1:${dev.port}/rpc`), { timeoutMs: 5000 }), { src: "mos", timeoutMs: 10_000 });
    const deviceSide = await waitFor("device channel", () => channels[before]);
    const pending = client.call("Test.Hang");
    await new Promise((r) => setTimeout(r, 50));
    await deviceSide.close();
    await assert.rejects(pending, (e: Error) => e instanceof ChannelClosedError);
    await client.close();
  });

  it("upgrades on other paths are refused with 404", async () => {
    await assert.rejects(connectWs(new URL(`ws://127.0.0.1:${dev.port}/other`), { timeoutMs: 5000 }), /HTTP 404/);
  });
});

describe("outbound WebSocket (device → cloud)", { timeout: 30_000 }, () => {
  it("connects with json-rpc, serves requests, and reconnects with backoff after the cloud drops it", async () => {
    // Reserve a port, start the device first: it must keep trying until the cloud comes up.
    const probe = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => probe.once("listening", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const rpc = new RpcServer({ localIds: ["outdev"] });
    rpc.addHandler("Test.Who", (_p, ctx) => ({ type: ctx.channel.type }));
    let channel: Channel | undefined;
    const link = await connectWsOut({
      url: `ws://127.0.0.1:${port}/device`,
      onChannel: (ch) => {
        channel = ch;
        rpc.serve(ch);
      },
      reconnect: { minMs: 30, maxMs: 200 },
      timeoutMs: 2000,
    });
    const cloudConns: { ws: WebSocket; req: IncomingMessage }[] = [];
    await new Promise((r) => setTimeout(r, 150)); // a few failed attempts happen now
    const cloud = new WebSocketServer({ host: "127.0.0.1", port, handleProtocols: () => false });
    cloud.on("connection", (ws, req) => cloudConns.push({ ws, req }));
    try {
      await within("listening", new Promise<void>((r) => cloud.once("listening", () => r())));
      const first = await waitFor("first connection", () => cloudConns[0]);
      assert.equal(first.req.headers["sec-websocket-protocol"], "json-rpc");
      assert.equal(first.req.headers.origin, "https://mongoose-os.com");
      assert.equal(first.req.url, "/device");
      assert.equal(channel?.info.type, "WS_out");

      const ask = async (c: WebSocket, id: number): Promise<unknown> => {
        const answer = new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no answer to request ${id}`)), 5000);
          c.once("message", (d) => {
            clearTimeout(t);
            resolve(String(d));
          });
        });
        c.send(JSON.stringify({ id, src: "cloud", method: "Test.Who" }));
        return JSON.parse(await answer);
      };
      assert.deepEqual(await ask(first.ws, 1), { id: 1, src: "outdev", dst: "cloud", result: { type: "WS_out" } });

      first.ws.terminate();
      const second = await waitFor("reconnection", () => cloudConns[1]);
      assert.deepEqual(await ask(second.ws, 2), { id: 2, src: "outdev", dst: "cloud", result: { type: "WS_out" } });

      await link.close();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(cloudConns.length, 2, "no reconnection after close()");
      assert.equal(link.channel.closed, true);
    } finally {
      await within("link close", link.close());
      rpc.stopAll();
      for (const c of cloud.clients) c.terminate();
      await within("cloud close", new Promise<void>((r) => cloud.close(() => r())));
    }
  });

  it("wss: verifies the cloud against the given CA (WSS_out), and keeps retrying with the TLS cause when it cannot", async () => {
    const m = await tlsMaterial();
    const web = https.createServer({ cert: m.server.certPem, key: m.server.keyPem });
    const cloud = new WebSocketServer({ server: web });
    const conns: WebSocket[] = [];
    cloud.on("connection", (ws) => conns.push(ws));
    await new Promise<void>((r) => web.listen(0, "127.0.0.1", () => r()));
    const url = `wss://localhost:${(web.address() as AddressInfo).port}/device`;
    const good = await connectWsOut({ url, tls: { ca: m.ca.certPem }, onChannel: () => undefined, reconnect: { minMs: 30, maxMs: 100 } });
    const bad = await connectWsOut({ url, tls: { ca: m.otherCa.certPem }, onChannel: () => undefined, reconnect: { minMs: 30, maxMs: 100 } });
    try {
      await good.channel.whenConnected(5000);
      assert.equal(good.channel.info.type, "WSS_out");
      assert.equal(good.channel.link?.info.tls?.authorized, true);
      await waitFor("a failed attempt", () => bad.channel.lastError);
      assert.ok(bad.channel.lastError instanceof TlsError, String(bad.channel.lastError));
      assert.match(bad.channel.lastError.message, /unknown CA/);
      assert.notEqual(bad.channel.state, "connected");
    } finally {
      await good.close();
      await bad.close();
      for (const c of conns) c.terminate();
      await within("cloud close", new Promise<void>((r) => cloud.close(() => r())));
      await within("server close", new Promise<void>((r) => web.close(() => r())));
    }
  });

  it("refuses a URL that is not ws:// or wss://", async () => {
    await assert.rejects(connectWsOut({ url: "http://x/", onChannel: () => undefined, reconnect: { minMs: 10, maxMs: 20 } }), /ws:\/\/ or wss:\/\//);
  });
});

describe("WebSocket masking", () => {
  // ws masks every client frame (and unmasks it at the device end) byte by byte in JavaScript unless the
  // optional `bufferutil` addon loads: a quarter of an upload's CPU on each end. Its prebuilt binaries
  // cover linux-x64 (CI, servers); elsewhere ws falls back to JavaScript, slower but the same bytes.
  it("uses the native bufferutil addon that ws looks for, where a prebuilt binary exists", { skip: `${process.platform}-${process.arch}` !== "linux-x64" }, () => {
    const requireFromWs = createRequire(fileURLToPath(import.meta.resolve("ws")));
    const addon = requireFromWs("bufferutil") as { mask: (...a: unknown[]) => void; unmask: (...a: unknown[]) => void };
    assert.match(addon.mask.toString(), /\[native code\]/);
    assert.match(addon.unmask.toString(), /\[native code\]/);
    const data = Buffer.from("a frame long enough for the native path of ws's masking: 48 bytes or more");
    const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const out = Buffer.alloc(data.length);
    addon.mask(data, mask, out, 0, data.length);
    assert.deepEqual(out, Buffer.from(data.map((b, i) => b ^ mask[i & 3])));
  });
});
