/**
 * The HTTP client's connections (http-connection.ts) against hand-written servers on loopback: answers
 * framed every way a device may frame them, connections the device closes (after an answer, while idle,
 * before answering), bytes nobody asked for, malformed and oversized answers, more calls than connections,
 * a TLS handshake that never completes, and closing with calls in flight.
 */
import assert from "node:assert/strict";
import https from "node:https";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { after, describe, it } from "node:test";
import { ChannelClosedError, FrameTooLargeError, TlsError, TransportError, UsageError } from "../../src/errors.js";
import { RpcClient } from "../../src/rpc/client.js";
import { HTTP_MAX_SOCKETS, connect } from "../../src/transport/http.js";
import { issueCert, makeCa } from "../helpers/certs.js";

interface Request {
  head: string;
  body: string;
  socket: net.Socket;
}

interface RawServer {
  url: string;
  /** Connections accepted so far. */
  connections: number;
  open: Set<net.Socket>;
  close(): Promise<void>;
}

/** A TCP server that reads HTTP requests (Content-Length bodies) and lets `onRequest` answer with raw bytes. */
async function rawServer(onRequest: (r: Request) => void): Promise<RawServer> {
  const open = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    socket.on("error", () => undefined);
    let buf = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.toString("latin1", 0, end);
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.toString("utf8", end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        onRequest({ head, body, socket });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/rpc`,
    get connections() {
      return state.connections;
    },
    open,
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The answer frame to a request body, as a device sends it. */
function answerTo(body: string, result: unknown = { ok: true }): string {
  const f = JSON.parse(body) as { id: number; src?: string };
  return JSON.stringify({ id: f.id, src: "dev", dst: f.src, result });
}

function ok(body: string, extra = ""): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const servers: RawServer[] = [];
const clients: RpcClient[] = [];
after(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  for (const s of servers) await s.close();
});

async function clientOf(server: RawServer, timeoutMs = 5000): Promise<RpcClient> {
  servers.push(server);
  const c = new RpcClient(await connect(new URL(server.url), { timeoutMs }), { timeoutMs, src: "me" });
  clients.push(c);
  return c;
}

describe("HTTP client connections", { timeout: 60_000 }, () => {
  it("reads answers framed by Content-Length, chunked, by the close, and from HTTP/1.0", async () => {
    let n = 0;
    const c = await clientOf(
      await rawServer(({ body, socket }) => {
        const a = answerTo(body, n);
        const mode = n++ % 4;
        if (mode === 0) socket.write(ok(a));
        else if (mode === 1) {
          const half = a.length >> 1;
          socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${half.toString(16)}\r\n${a.slice(0, half)}\r\n`);
          setTimeout(() => socket.write(`${(a.length - half).toString(16)}\r\n${a.slice(half)}\r\n0\r\n\r\n`), 5);
        } else if (mode === 2) socket.end(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${a}\r\n`);
        else socket.end(`HTTP/1.0 200 OK\r\nContent-Length: ${a.length}\r\n\r\n${a}`);
      }),
    );
    for (let i = 0; i < 8; i++) assert.equal(await c.call("X"), i);
  });

  it("reuses a kept-alive connection, and opens a new one after Connection: close", async () => {
    let closeNext = false;
    const server = await rawServer(({ body, socket }) => {
      if (closeNext) socket.end(ok(answerTo(body), "Connection: close\r\n"));
      else socket.write(ok(answerTo(body)));
    });
    const c = await clientOf(server);
    for (let i = 0; i < 5; i++) await c.call("X");
    assert.equal(server.connections, 1);
    closeNext = true;
    await c.call("X");
    closeNext = false;
    await c.call("X");
    await c.call("X");
    assert.equal(server.connections, 2);
  });

  it("a connection the device closes while idle is not reused: the next call goes out on a new one", async () => {
    const server = await rawServer(({ body, socket }) => {
      socket.write(ok(answerTo(body)));
      setTimeout(() => socket.destroy(), 10); // as a device whose keep-alive timeout is very short
    });
    const c = await clientOf(server);
    for (let i = 0; i < 5; i++) {
      await c.call("X");
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.equal(server.connections, 5);
  });

  it("a device that drops the connection before answering fails that call with a clear error; the next call works", async () => {
    let drop = true;
    const c = await clientOf(
      await rawServer(({ body, socket }) => {
        if (drop) socket.destroy();
        else socket.write(ok(answerTo(body)));
      }),
    );
    await assert.rejects(c.call("X"), (e: unknown) => e instanceof TransportError && /connection reset by the peer/.test(e.message));
    drop = false;
    assert.deepEqual(await c.call("X"), { ok: true });
  });

  it("malformed answers and bytes nobody asked for drop that connection, never the client", async () => {
    let n = 0;
    const server = await rawServer(({ body, socket }) => {
      const mode = n++;
      if (mode === 0) socket.write("SSH-2.0-OpenSSH_9.6\r\n\r\n");
      else if (mode === 1) socket.write(ok(answerTo(body)) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      else socket.write(ok(answerTo(body)));
    });
    const c = await clientOf(server);
    await assert.rejects(c.call("X"), (e: unknown) => e instanceof TransportError && /not an HTTP\/1\.x status line/.test(e.message));
    assert.deepEqual(await c.call("X"), { ok: true }); // an extra answer follows it: that connection is dropped
    assert.deepEqual(await c.call("X"), { ok: true });
    assert.deepEqual(await c.call("X"), { ok: true });
    assert.equal(server.connections, 3);
  });

  it("bytes after an answer never become the next call's answer; a stray CRLF after a body is harmless", async () => {
    let n = 0;
    const server = await rawServer(({ body, socket }) => {
      const mode = n++;
      const a = answerTo(body, mode);
      if (mode === 0) socket.write(ok(a) + ok(answerTo(body, "BOGUS"))); // an extra answer in the same write
      else if (mode === 1) socket.write(ok(a) + "HTTP/1.1 200"); // the start of another
      else socket.write(ok(a) + "\r\n"); // the stray CRLF some servers add
    });
    const c = await clientOf(server);
    // one call at a time over one connection each time, so a leftover would reach the next call
    for (let i = 0; i < 5; i++) assert.equal(await c.call("X"), i);
    assert.equal(server.connections, 3, "the connections with bytes after the answer were dropped, the CRLF one reused");
  });

  it("a Keep-Alive timeout hint of 1 s means the connection is not reused", async () => {
    const server = await rawServer(({ body, socket }) => socket.write(ok(answerTo(body), "Keep-Alive: timeout=1\r\n")));
    const c = await clientOf(server);
    for (let i = 0; i < 3; i++) await c.call("X");
    assert.equal(server.connections, 3);
  });

  it("over http:// a reset is a TransportError even when a client certificate is configured", async () => {
    const server = await rawServer(({ socket }) => socket.destroy());
    servers.push(server);
    const ca = await makeCa();
    const leaf = await issueCert(ca, { cn: "client", usage: "client" });
    const c = new RpcClient(await connect(new URL(server.url), { timeoutMs: 5000, tls: { cert: leaf.certPem, key: leaf.keyPem } }), { timeoutMs: 5000 });
    clients.push(c);
    await assert.rejects(c.call("X"), (e: unknown) => e instanceof TransportError && !(e instanceof TlsError) && /connection reset/.test(e.message));
  });

  it("credentials that would break the header line are refused with a UsageError, before anything is sent", async () => {
    let challenged = 0;
    const server = await rawServer(({ head, socket }) => {
      if (!/\r\nauthorization:/i.test(head)) {
        challenged++;
        socket.write('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n');
      } else socket.destroy();
    });
    servers.push(server);
    const channel = await connect(new URL(server.url), { timeoutMs: 5000, credentials: { username: "a\r\nX-Injected: 1", password: "p" } });
    const c = new RpcClient(channel, { timeoutMs: 5000 });
    clients.push(c);
    await assert.rejects(c.call("X"), UsageError);
    assert.equal(challenged, 1);
  });

  it("https:// connections resume the TLS session the device gave", async () => {
    const ca = await makeCa();
    const leaf = await issueCert(ca, { cn: "localhost", usage: "server" });
    const reused: boolean[] = [];
    const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem, keepAliveTimeout: 50 }, (req, res) => {
      reused.push((req.socket as TLSSocket).isSessionReused());
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => res.end(answerTo(body)));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const c = new RpcClient(await connect(new URL(`https://127.0.0.1:${port}/rpc`), { timeoutMs: 5000, tls: { ca: ca.certPem } }), { timeoutMs: 5000 });
      await c.call("X");
      await new Promise((r) => setTimeout(r, 200)); // the server drops the idle connection after 50 ms
      await c.call("X");
      await c.close();
      assert.deepEqual(reused, [false, true]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("an answer over the frame limit is a FrameTooLargeError, refused from its Content-Length", async () => {
    const c = await clientOf(await rawServer(({ socket }) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`)));
    await assert.rejects(c.call("X"), FrameTooLargeError);
  });

  it("more calls than connections queue in order, all answered, over at most HTTP_MAX_SOCKETS connections", async () => {
    const server = await rawServer(({ body, socket }) => setTimeout(() => socket.write(ok(answerTo(body, JSON.parse(body).params))), 2));
    const c = await clientOf(server);
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => c.call("X", i)));
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
    assert.ok(server.connections <= HTTP_MAX_SOCKETS, `${server.connections} connections`);
  });

  it("an https:// device that never finishes the TLS handshake fails within the connect timeout", async () => {
    const silent = net.createServer((s) => s.on("error", () => undefined).resume()); // reads (and so sees the close), never answers
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const channel = await connect(new URL(`https://127.0.0.1:${port}/rpc`), { timeoutMs: 300 });
      const c = new RpcClient(channel, { timeoutMs: 5000 });
      const t0 = Date.now();
      await assert.rejects(c.call("X"), (e: unknown) => e instanceof TransportError && /cannot connect to 127\.0\.0\.1:\d+ within 300 ms/.test(e.message));
      assert.ok(Date.now() - t0 < 3000);
      await c.close();
    } finally {
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it("closing the channel fails the calls in flight and the queued ones with ChannelClosedError", async () => {
    const server = await rawServer(() => undefined); // never answers
    const channel = await connect(new URL(server.url), {});
    servers.push(server);
    const c = new RpcClient(channel, { timeoutMs: 0 });
    const calls = Array.from({ length: HTTP_MAX_SOCKETS + 5 }, () => c.call("X"));
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    const results = await Promise.allSettled(calls);
    assert.ok(results.every((r) => r.status === "rejected" && r.reason instanceof ChannelClosedError));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.open.size, 0);
  });
});
