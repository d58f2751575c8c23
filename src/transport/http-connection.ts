/**
 * The HTTP client's connections (http.ts): a pool of keep-alive HTTP/1.1 connections to one device, each
 * carrying one request at a time (no pipelining), written straight to a TCP or TLS socket and answered
 * through HttpResponseParser (http-response.ts). Node's http client does the same job with several
 * objects, listeners and timers per request; this costs a fraction of its CPU per call.
 *
 * - At most `maxSockets` connections; further requests wait in order for a free one.
 * - A new connection must connect (and finish its TLS handshake) within `connectTimeoutMs`.
 * - A request whose connection stays silent for `silentTimeoutMs` fails (checked by one sweep timer).
 * - An idle connection is reused most-recent first, and only if it has been idle under REUSE_IDLE_MS (or
 *   a second less than the server's `Keep-Alive: timeout=N`, when shorter), so a request never races a
 *   device closing a connection it kept alive for 5 s (as Node's and remos's servers do). Idle connections
 *   do not keep the process alive. A connection whose answer came with bytes after it is not reused.
 * - TLS sessions are resumed: a new connection offers the last session the device gave (a full handshake
 *   costs an ESP32 about a second).
 * - Failures are typed (linkError); a TLS server that drops a fresh connection right after the handshake,
 *   before any answer, while we presented a certificate, is reported as refusing it (refusedAfterHandshake).
 */
import { type Socket, connect as netConnect } from "node:net";
import type { ConnectionOptions, TLSSocket } from "node:tls";
import { type RemosError, TransportError } from "../errors.js";
import { HttpResponseParser, type HttpResponse } from "./http-response.js";
import { linkError, refusedAfterHandshake } from "./tls-errors.js";

/** Idle connections older than this are closed instead of reused (servers commonly drop them at 5 s). */
export const REUSE_IDLE_MS = 4000;

export interface HttpPoolOptions {
  host: string;
  port: number;
  /** `host:port`, for errors. */
  peer: string;
  /** TLS options for https (node:tls is loaded only then). */
  tls: ConnectionOptions | undefined;
  /** Whether a client certificate is presented (for refusedAfterHandshake). */
  sentClientCert: boolean;
  maxSockets: number;
  /** Largest response body. */
  maxBody: number;
  connectTimeoutMs: number | undefined;
  silentTimeoutMs: number;
  /** A new TLS connection finished its handshake. */
  onSecureConnect?(socket: TLSSocket): void;
}

/** The pool as its connections see it. */
interface PoolSide {
  tlsSession: Buffer | undefined;
  released(c: Connection): void;
  dropped(c: Connection): void;
  mapError(e: unknown, freshAfterHandshake: boolean): RemosError;
}

interface Waiter {
  head: string;
  body: Buffer;
  resolve(r: HttpResponse): void;
  reject(e: RemosError): void;
}

class Connection {
  readonly socket: Socket;
  private readonly parser: HttpResponseParser;
  /** The request being answered. */
  current: Waiter | undefined;
  /** Nothing has been received on this connection yet. */
  fresh = true;
  handshakeDone = false;
  lastIo = Date.now();
  /** Reused only while idle for less than this. */
  reuseMs = REUSE_IDLE_MS;
  private connectTimer: NodeJS.Timeout | undefined;
  /** The answer the parser produced during the current feed, and whether more followed it. */
  private answer: HttpResponse | undefined;
  private extra = false;

  constructor(private readonly pool: PoolSide, o: HttpPoolOptions) {
    this.parser = new HttpResponseParser(o.maxBody, (r) => {
      if (this.answer === undefined) this.answer = r;
      else this.extra = true;
    });
    const isTls = o.tls !== undefined;
    this.socket = isTls
      ? process.getBuiltinModule("node:tls").connect({ ...o.tls, host: o.host, port: o.port, ...(pool.tlsSession ? { session: pool.tlsSession } : {}) })
      : netConnect({ host: o.host, port: o.port });
    if (isTls) this.socket.on("session", (session: Buffer) => (pool.tlsSession = session));
    this.socket.setNoDelay(true);
    const ms = o.connectTimeoutMs;
    if (ms && ms > 0) {
      this.connectTimer = setTimeout(() => this.socket.destroy(new TransportError(`cannot connect to ${o.peer} within ${ms} ms`)), ms);
    }
    this.socket.once(isTls ? "secureConnect" : "connect", () => {
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.handshakeDone = true;
      if (isTls) o.onSecureConnect?.(this.socket as TLSSocket);
    });
    this.socket.on("data", (chunk: Buffer) => this.received(chunk));
    this.socket.on("end", () => this.ended());
    this.socket.on("error", (e) => this.failed(e));
    this.socket.on("close", () => {
      if (this.connectTimer) clearTimeout(this.connectTimer);
      if (this.current) this.failed(hangUp());
      this.pool.dropped(this);
    });
  }

  send(w: Waiter): void {
    this.current = w;
    this.lastIo = Date.now();
    const s = this.socket;
    s.ref();
    s.cork();
    s.write(w.head, "latin1");
    s.write(w.body);
    s.uncork();
  }

  private received(chunk: Buffer): void {
    this.lastIo = Date.now();
    if (!this.current) {
      this.socket.destroy(); // bytes nobody asked for: the connection cannot be trusted
      return;
    }
    this.fresh = false;
    try {
      this.parser.feed(chunk);
    } catch (e) {
      this.settle(e);
      return;
    }
    this.deliver(true);
  }

  /** The input broke off (a parse error, the close): an answer already parsed still counts, else `e` fails the request. */
  private settle(e: unknown): void {
    if (!this.deliver(false) && e !== undefined) this.failed(e);
    this.socket.destroy();
  }

  /**
   * Hand the answer parsed during the last feed to its request. The connection is reused only when the
   * answer allows it and nothing came after it (bytes after an answer belong to no request: the
   * connection cannot be trusted any more). Returns whether there was an answer.
   */
  private deliver(reusable: boolean): boolean {
    const r = this.answer;
    const w = this.current;
    if (r === undefined || w === undefined) return false;
    this.answer = undefined;
    this.current = undefined;
    const reuse = reusable && r.keepAlive && !this.extra && this.parser.idle;
    this.extra = false;
    if (r.keepAliveMs !== undefined) this.reuseMs = Math.min(REUSE_IDLE_MS, r.keepAliveMs - 1000);
    if (reuse && this.reuseMs > 0) this.pool.released(this);
    else this.socket.destroy();
    w.resolve(r);
    return true;
  }

  private ended(): void {
    let e: unknown;
    try {
      this.parser.end(); // completes an answer delimited by the close
    } catch (error) {
      e = error;
    }
    this.settle(e);
  }

  /** Fail the current request (once). */
  failed(e: unknown): void {
    const w = this.current;
    if (!w) return;
    this.current = undefined;
    w.reject(this.pool.mapError(e, this.fresh && this.handshakeDone));
  }
}

/** Node's http client reports a connection closed before the answer as this. */
function hangUp(): Error {
  return Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
}

export class HttpConnectionPool implements PoolSide {
  /** The last TLS session a device gave, offered by the next new connection. */
  tlsSession: Buffer | undefined;
  private readonly all = new Set<Connection>();
  /** Idle connections, most recently used last. */
  private readonly idle: Connection[] = [];
  private readonly queue: (Waiter | undefined)[] = [];
  private queueHead = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private closedWith: RemosError | undefined;

  constructor(private readonly o: HttpPoolOptions) {}

  /** Send one request (its head, ending with the blank line, and body); resolves with the answer. */
  request(head: string, body: Buffer): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      if (this.closedWith) {
        reject(this.closedWith);
        return;
      }
      const w: Waiter = { head, body, resolve, reject };
      try {
        const c = this.idleConnection() ?? this.newConnection();
        if (c) c.send(w);
        else this.queue.push(w);
      } catch (e) {
        reject(this.mapError(e, false)); // e.g. TLS options node:tls refuses (a malformed PEM)
      }
    });
  }

  /** Destroy every connection; the requests in flight and waiting fail with `reason`. */
  close(reason: RemosError): void {
    this.closedWith = reason;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const w of this.queue.slice(this.queueHead)) w?.reject(reason);
    this.queue.length = 0;
    this.queueHead = 0;
    for (const c of [...this.all]) {
      const w = c.current;
      c.current = undefined;
      w?.reject(reason);
      c.socket.destroy();
    }
    this.all.clear();
    this.idle.length = 0;
  }

  /** A connection is free again: the next waiting request takes it, else it waits idle. */
  released(c: Connection): void {
    const next = this.nextWaiter();
    if (next) {
      c.send(next);
      return;
    }
    c.socket.unref();
    this.idle.push(c);
  }

  /** A connection closed: forget it, and open another for a waiting request. */
  dropped(c: Connection): void {
    if (!this.all.delete(c)) return;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.queueHead < this.queue.length && !this.closedWith) {
      let n: Connection | undefined;
      try {
        n = this.newConnection();
      } catch (e) {
        this.nextWaiter()?.reject(this.mapError(e, false));
        return;
      }
      const w = n && this.nextWaiter();
      if (n && w) n.send(w);
    }
  }

  mapError(e: unknown, freshAfterHandshake: boolean): RemosError {
    if (this.closedWith) return this.closedWith;
    return refusedAfterHandshake(e, this.o.peer, freshAfterHandshake, this.o.sentClientCert) ?? linkError(e, this.o.peer);
  }

  private nextWaiter(): Waiter | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const w = this.queue[this.queueHead];
    this.queue[this.queueHead++] = undefined; // a taken request (and its body) is not kept by the queue
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    return w;
  }

  private idleConnection(): Connection | undefined {
    const now = Date.now();
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (now - c.lastIo < c.reuseMs && !c.socket.destroyed) return c;
      this.all.delete(c);
      c.socket.destroy();
    }
    return undefined;
  }

  private newConnection(): Connection | undefined {
    if (this.all.size >= this.o.maxSockets) return undefined;
    const c = new Connection(this, this.o);
    this.all.add(c);
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(10_000, this.o.silentTimeoutMs)).unref();
    return c;
  }

  /** Fail requests whose connection has been silent too long. */
  private sweep(): void {
    const now = Date.now();
    for (const c of this.all) {
      if (c.current && now - c.lastIo >= this.o.silentTimeoutMs) {
        c.failed(new TransportError(`no answer from ${this.o.peer} within ${this.o.silentTimeoutMs} ms`));
        c.socket.destroy();
      }
    }
  }
}
