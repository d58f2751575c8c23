/**
 * One MQTT 3.1.1 client connection (the lean replacement for mqtt.js on remos's paths): TCP (`mqtt://`),
 * TLS (`mqtts://`: SNI, ALPN, CA/cert/key from the caller's options; verification is the caller's
 * choice and on by default in Node) or WebSocket (`ws://`, `wss://`, subprotocol `mqtt`; the `ws` library
 * is loaded only for those). It connects and waits for CONNACK, keeps the link alive with PINGREQ and
 * declares the broker dead when a PINGRESP does not come within one keepalive period, subscribes
 * (resolving with the granted QoS), publishes QoS 0/1/2 (QoS 1/2 resolve on PUBACK/PUBCOMP, reject when
 * the connection closes), delivers incoming PUBLISH as ("message", topic, payload) and acknowledges
 * QoS 1/2, and ends with DISCONNECT. No reconnect: that is transport/reconnect.ts's job.
 *
 * Writes are coalesced: the packets written in one tick go out in one syscall (socket corked until the
 * next tick; one WebSocket message for WebSocket links). Errors are raw (Node socket/TLS errors,
 * `ConnackError`, `MqttProtocolError`); mqtt-common.ts maps them to typed remos errors.
 */
import { EventEmitter } from "node:events";
import { type Socket, connect as netConnect } from "node:net";
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from "node:tls";
import { debug } from "../log.js";
import { MqttParser } from "./mqtt-parser.js";
import { type ConnectPacket, MqttProtocolError, type OversizedPublish, type Packet, type QoS, connackMessage, encodePacket, encodePublish } from "./mqtt-wire.js";

/** The broker refused the connection in its CONNACK. */
export class ConnackError extends Error {
  constructor(readonly returnCode: number) {
    super(`connection refused by the broker: ${connackMessage(returnCode)} (return code ${returnCode})`);
    this.name = "ConnackError";
  }
}

export interface MqttSessionOptions {
  /** `mqtt://host:port`, `mqtts://host:port`, `ws://host:port/path` or `wss://host:port/path`. */
  url: string;
  clientId: string;
  /** Default true. */
  clean?: boolean;
  /** Seconds; default 60; 0 turns keepalive off. */
  keepalive?: number;
  username?: string;
  password?: string | Buffer;
  will?: { topic: string; payload: Buffer; qos: QoS; retain: boolean };
  /** TLS for mqtts and wss (secureContext, rejectUnauthorized, servername, ALPNProtocols...). */
  tls?: ConnectionOptions;
  /** Largest incoming packet (remaining length); default 1 MiB. Bigger ones close the connection. */
  maxPacketSize?: number;
}

export interface MqttSessionEvents {
  message: [topic: string, payload: Buffer];
  error: [error: Error];
  close: [];
}

/** The byte link under a session: a TCP/TLS socket or a WebSocket. */
interface Link {
  write(buf: Buffer, done?: (e?: Error | null) => void): void;
  end(): void;
  destroy(): void;
  readonly socket: Socket | undefined;
}

interface Pending {
  resolve(v: number[]): void;
  reject(e: Error): void;
}

const DEFAULT_MAX_PACKET = 1024 * 1024;

export class MqttSession extends EventEmitter<MqttSessionEvents> {
  private link: Link | undefined;
  private readonly parser: MqttParser;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private state: "connecting" | "connected" | "ending" | "closed" = "connecting";
  private firstError: Error | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pingOutstanding = false;
  private corked = false;
  private onConnack: ((e?: Error) => void) | undefined;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  private constructor(private readonly o: MqttSessionOptions) {
    super();
    this.parser = new MqttParser(o.maxPacketSize ?? DEFAULT_MAX_PACKET);
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
    // An "error" without listeners would throw: errors are also reported through close and rejections.
    this.on("error", () => undefined);
  }

  /**
   * Open the link, send CONNECT, resolve on an accepting CONNACK. Rejects with the first link error, a
   * ConnackError, or an Error when the link closes first. `session` is handed to `onSession` at once so
   * that the caller can `destroy()` it on a timeout or an abort.
   */
  static connect(o: MqttSessionOptions, onSession?: (s: MqttSession) => void): Promise<MqttSession> {
    const s = new MqttSession(o);
    onSession?.(s);
    return new Promise<MqttSession>((resolve, reject) => {
      s.onConnack = (e) => (e ? reject(e) : resolve(s));
      s.open().catch((e: unknown) => s.fail(e instanceof Error ? e : new Error(String(e))));
    });
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  /** Closing or closed: no new packets are accepted. */
  get closing(): boolean {
    return this.state === "ending" || this.state === "closed";
  }

  /** The TCP or TLS socket (for WebSocket links the socket under the WebSocket). */
  get socket(): Socket | TLSSocket | undefined {
    return this.link?.socket;
  }

  /** Resolves once the connection is closed. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  private async open(): Promise<void> {
    const u = new URL(this.o.url);
    const scheme = u.protocol.slice(0, -1);
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    if (scheme === "ws" || scheme === "wss") {
      this.link = await this.openWebSocket(u);
    } else if (scheme === "mqtt" || scheme === "mqtts") {
      const port = Number(u.port || (scheme === "mqtts" ? 8883 : 1883));
      const socket = scheme === "mqtts" ? tlsConnect({ ...this.o.tls, host, port }) : netConnect({ host, port });
      socket.setNoDelay(true);
      this.link = { write: (b, d) => this.writeSocket(socket, b, d), end: () => socket.end(), destroy: () => socket.destroy(), socket };
      socket.on(scheme === "mqtts" ? "secureConnect" : "connect", () => this.sendConnect());
      socket.on("data", (d: Buffer) => this.onData(d));
      socket.on("error", (e) => this.fail(e));
      socket.on("close", () => this.onLinkClosed());
    } else {
      throw new Error(`unsupported MQTT URL scheme ${scheme}://`);
    }
    if (this.state === "closed") this.link.destroy();
  }

  private async openWebSocket(u: URL): Promise<Link> {
    const { WebSocket } = await import("ws");
    if (this.state === "closed") return { write: () => undefined, end: () => undefined, destroy: () => undefined, socket: undefined };
    const ws = new WebSocket(u.href, ["mqtt"], { ...(u.protocol === "wss:" ? this.o.tls : {}), perMessageDeflate: false });
    let queue: Buffer[] = [];
    let callbacks: Array<(e?: Error | null) => void> = [];
    const link: Link = {
      write: (b, done) => {
        queue.push(b);
        if (done) callbacks.push(done);
        if (queue.length > 1) return;
        process.nextTick(() => {
          const data = queue.length === 1 ? (queue[0] as Buffer) : Buffer.concat(queue);
          const cbs = callbacks;
          queue = [];
          callbacks = [];
          if (ws.readyState !== WebSocket.OPEN) return cbs.forEach((cb) => cb(new Error("WebSocket is not open")));
          ws.send(data, { binary: true }, (e) => cbs.forEach((cb) => cb(e ?? null)));
        });
      },
      end: () => ws.close(1000),
      destroy: () => ws.terminate(),
      get socket() {
        return (ws as unknown as { _socket?: Socket })._socket;
      },
    };
    ws.on("open", () => {
      (link.socket as Socket | undefined)?.setNoDelay(true);
      this.sendConnect();
    });
    ws.on("message", (d: Buffer | ArrayBuffer | Buffer[]) => this.onData(Buffer.isBuffer(d) ? d : Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d)));
    ws.on("error", (e) => this.fail(e));
    ws.on("close", () => this.onLinkClosed());
    return link;
  }

  /** Socket writes in one tick go out together: cork on the first, uncork on the next tick. */
  private writeSocket(socket: Socket, buf: Buffer, done?: (e?: Error | null) => void): void {
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(buf, done);
  }

  private send(p: Packet | Buffer, done?: (e?: Error | null) => void): void {
    const buf = Buffer.isBuffer(p) ? p : encodePacket(p);
    this.link?.write(buf, done);
  }

  private sendConnect(): void {
    const o = this.o;
    const p: ConnectPacket = { type: "connect", clientId: o.clientId, clean: o.clean ?? true, keepalive: o.keepalive ?? 60 };
    if (o.username !== undefined) p.username = o.username;
    if (o.password !== undefined) p.password = Buffer.isBuffer(o.password) ? o.password : Buffer.from(o.password, "utf8");
    if (o.will) p.will = o.will;
    try {
      this.send(p);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    let packets: Array<Packet | OversizedPublish>;
    try {
      packets = this.parser.push(chunk);
    } catch (e) {
      debug("mqtt", "bad bytes from the broker: closing", { url: this.o.url, error: e instanceof Error ? e.message : String(e) });
      this.fail(e instanceof MqttProtocolError ? e : new MqttProtocolError(String(e)));
      return;
    }
    for (const p of packets) {
      if (this.isClosed()) return;
      this.onPacket(p);
    }
  }

  private onPacket(p: Packet | OversizedPublish): void {
    if (this.state === "connecting") {
      if (p.type !== "connack") return this.fail(new MqttProtocolError(`${p.type} before CONNACK`));
      if (p.returnCode !== 0) return this.fail(new ConnackError(p.returnCode));
      this.state = "connected";
      this.armKeepalive();
      const cb = this.onConnack;
      this.onConnack = undefined;
      cb?.();
      return;
    }
    switch (p.type) {
      case "publish":
        if (p.qos === 1) this.send({ type: "puback", messageId: p.messageId ?? 0 });
        else if (p.qos === 2) this.send({ type: "pubrec", messageId: p.messageId ?? 0 });
        try {
          this.emit("message", p.topic, p.payload);
        } catch (e) {
          // A listener's failure must not break the connection (or the process through the socket).
          debug("mqtt", "message listener failed; message dropped", { topic: p.topic, error: e instanceof Error ? e.message : String(e) });
        }
        return;
      case "publish-oversized":
        if (p.qos === 1) this.send({ type: "puback", messageId: p.messageId ?? 0 });
        else if (p.qos === 2) this.send({ type: "pubrec", messageId: p.messageId ?? 0 });
        debug("mqtt", "incoming message too big: dropped", { topic: p.topic, size: p.size, limit: this.parser.maxPacketSize });
        return;
      case "pubrel":
        this.send({ type: "pubcomp", messageId: p.messageId });
        return;
      case "pubrec":
        if (this.pending.has(p.messageId)) this.send({ type: "pubrel", messageId: p.messageId });
        return;
      case "puback":
      case "pubcomp":
      case "unsuback":
        this.settle(p.messageId, []);
        return;
      case "suback":
        this.settle(p.messageId, p.granted);
        return;
      case "pingresp":
        this.pingOutstanding = false;
        return;
      default:
        this.fail(new MqttProtocolError(`unexpected ${p.type} from the broker`));
    }
  }

  private isClosed(): boolean {
    return this.state === "closed";
  }

  private settle(id: number, v: number[]): void {
    const w = this.pending.get(id);
    if (!w) return debug("mqtt", "acknowledgement of an unknown packet id ignored", { id });
    this.pending.delete(id);
    w.resolve(v);
  }

  private armKeepalive(): void {
    const ms = (this.o.keepalive ?? 60) * 1000;
    if (ms <= 0) return;
    this.keepaliveTimer = setInterval(() => {
      if (this.pingOutstanding) {
        this.fail(new Error(`no PINGRESP from the broker within ${ms / 1000} s (keepalive): the broker is unreachable`));
        return;
      }
      this.pingOutstanding = true;
      this.send({ type: "pingreq" });
    }, ms);
    this.keepaliveTimer.unref();
  }

  private allocId(): number {
    for (let n = 0; n < 0xffff; n++) {
      const id = this.nextId;
      this.nextId = id === 0xffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new Error("no free MQTT packet id (65535 packets in flight)");
  }

  /** Wait for the acknowledgement of packet `id`, sent by `write`. */
  private expectAck(write: (id: number) => void): Promise<number[]> {
    if (this.state !== "connected") return Promise.reject(new Error(`MQTT connection is ${this.state === "connecting" ? "not open yet" : "closed"}`));
    return new Promise<number[]>((resolve, reject) => {
      const id = this.allocId();
      this.pending.set(id, { resolve, reject });
      try {
        write(id);
      } catch (e) {
        this.pending.delete(id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Publish; QoS 0 resolves once written, QoS 1/2 on PUBACK/PUBCOMP. Rejects when the connection closes. */
  publish(topic: string, payload: string | Buffer, qos: QoS = 0, retain = false): Promise<void> {
    if (qos === 0) {
      if (this.state !== "connected") return Promise.reject(new Error("MQTT connection is closed"));
      return new Promise<void>((resolve, reject) => {
        try {
          this.send(encodePublish(topic, payload, 0, undefined, retain), (e) => (e ? reject(e) : resolve()));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    }
    return this.expectAck((id) => this.send(encodePublish(topic, payload, qos, id, retain))).then(() => undefined);
  }

  /** Subscribe; resolves with the granted QoS per topic (0x80 = refused). */
  subscribe(topics: string | string[], qos: QoS = 0): Promise<number[]> {
    const list = Array.isArray(topics) ? topics : [topics];
    return this.expectAck((id) => this.send({ type: "subscribe", messageId: id, subscriptions: list.map((topic) => ({ topic, qos })) }));
  }

  unsubscribe(topics: string | string[]): Promise<void> {
    const list = Array.isArray(topics) ? topics : [topics];
    return this.expectAck((id) => this.send({ type: "unsubscribe", messageId: id, topics: list })).then(() => undefined);
  }

  /**
   * End politely: wait (up to `graceMs`) for in-flight acknowledgements, send DISCONNECT, end the link;
   * resolves when it is closed (destroyed if it does not close within `graceMs` more).
   */
  async end(graceMs = 1000): Promise<void> {
    if (this.state === "closed") return;
    if (this.state !== "connected") {
      this.destroy();
      return this.closedPromise;
    }
    this.state = "ending";
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline && (this.state as string) !== "closed") await new Promise((r) => setTimeout(r, 5));
    if ((this.state as string) === "closed") return;
    this.send({ type: "disconnect" });
    this.link?.end();
    const t = setTimeout(() => this.destroy(), Math.max(1, graceMs));
    t.unref();
    await this.closedPromise;
    clearTimeout(t);
  }

  /** Close at once (no DISCONNECT: the broker sends the will, if any). */
  destroy(err?: Error): void {
    if (this.state === "closed") return;
    if (err) this.firstError ??= err;
    if (this.link) this.link.destroy();
    else this.onLinkClosed();
  }

  /** A link or protocol error: remember the first, report it, and close. */
  private fail(e: Error): void {
    if (this.state === "closed") return;
    this.firstError ??= e;
    this.emit("error", e);
    this.destroy();
  }

  private onLinkClosed(): void {
    if (this.state === "closed") return;
    const wasConnecting = this.state === "connecting";
    this.state = "closed";
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.link?.destroy();
    const cb = this.onConnack;
    this.onConnack = undefined;
    if (wasConnecting) cb?.(this.firstError ?? new Error("connection closed before the broker accepted it"));
    this.emit("close");
    const why = this.firstError ?? new Error("MQTT connection closed");
    for (const w of this.pending.values()) w.reject(why);
    this.pending.clear();
    this.resolveClosed();
  }

  /** The error that ended (or is ending) the connection, if any. */
  get error(): Error | undefined {
    return this.firstError;
  }
}
