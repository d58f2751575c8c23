/**
 * One MQTT 3.1.1 client connection (the lean replacement for mqtt.js on remos's paths): TCP (`mqtt://`),
 * TLS (`mqtts://`: SNI, ALPN, CA/cert/key from the caller's options; verification is the caller's
 * choice and on by default in Node) or WebSocket (`ws://`, `wss://`, subprotocol `mqtt`; the `ws` library
 * is loaded only for those). It connects and waits for CONNACK, keeps the link alive with PINGREQ and
 * declares the broker dead when a PINGRESP does not come within one keepalive period, subscribes
 * (resolving with the granted QoS), publishes QoS 0/1/2 (QoS 1/2 resolve on PUBACK/PUBCOMP, reject when
 * the connection closes), delivers incoming PUBLISH as ("message", topic, payload, retain) and acknowledges
 * QoS 1/2 (QoS 2 delivered on PUBLISH, once per connection: a resend before PUBREL is not delivered
 * again), and ends with DISCONNECT. No reconnect: that is transport/reconnect.ts's job.
 *
 * The link itself (socket or WebSocket, writes coalesced per tick) is mqtt-link.ts. Connection errors
 * are raw (Node socket/TLS errors, `ConnackError`, `MqttProtocolError`); mqtt-common.ts maps them to
 * typed remos errors. Publishes, subscribes and unsubscribes reject with typed errors: ChannelClosedError
 * when the connection is closed (or closes without an error), MqttProtocolError, else a TransportError
 * naming the link's error.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { ConnectionOptions, TLSSocket } from "node:tls";
import { ChannelClosedError, RemosError, TransportError } from "../errors.js";
import { debug } from "../log.js";
import { type Link, type LinkEvents, openSocketLink, openWebSocketLink } from "./mqtt-link.js";
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
  /**
   * Bytes the link may hold unsent (a broker that does not read): beyond them a publish rejects with a
   * TransportError instead of buffering without bound. Default 8 MiB.
   */
  maxUnsentBytes?: number;
}

export interface MqttSessionEvents {
  /** An incoming PUBLISH; `retain` is set when the broker sends a retained message (on subscribing). */
  message: [topic: string, payload: Buffer, retain: boolean];
  error: [error: Error];
  close: [];
}

interface Pending {
  resolve(v: number[]): void;
  reject(e: Error): void;
  /** The packet that completes it: PUBACK (QoS 1), PUBCOMP (QoS 2), SUBACK, UNSUBACK. */
  ack: "puback" | "pubcomp" | "suback" | "unsuback";
  /** SUBACK: the number of topics subscribed (one return code each). */
  count: number;
}

const DEFAULT_MAX_PACKET = 1024 * 1024;
const DEFAULT_MAX_UNSENT = 8 * 1024 * 1024;
const PINGREQ = encodePacket({ type: "pingreq" });

export class MqttSession extends EventEmitter<MqttSessionEvents> {
  private link: Link | undefined;
  private readonly parser: MqttParser;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private state: "connecting" | "connected" | "ending" | "closed" = "connecting";
  private firstError: Error | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pingOutstanding = false;
  /** DISCONNECT sent and the link ended: nothing more may be written. */
  private linkEnded = false;
  private present = false;
  /** Ids of incoming QoS 2 messages delivered and awaiting PUBREL (made on the first one). */
  private awaitingRel: Set<number> | undefined;
  /** Called when the last pending acknowledgement settles (end() waits on it). */
  private onIdle: (() => void) | undefined;
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

  /** The CONNACK's session-present flag: the broker kept a session (subscriptions) from before. */
  get sessionPresent(): boolean {
    return this.present;
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
    const on: LinkEvents = {
      open: () => this.sendConnect(),
      data: (d) => this.onData(d),
      error: (e) => this.fail(e),
      close: () => this.onLinkClosed(),
    };
    this.link = u.protocol === "ws:" || u.protocol === "wss:" ? await openWebSocketLink(u, this.o.tls, on, () => this.isClosed()) : openSocketLink(u, this.o.tls, on);
    if (this.state === "closed") this.link.destroy();
  }

  private send(p: Packet | Buffer, done?: (e?: Error | null) => void): void {
    // After DISCONNECT (e.g. a PUBACK owed for a message still arriving) a write would only fail.
    if (this.linkEnded) return done?.(new ChannelClosedError("MQTT connection is closed"));
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
      this.present = p.sessionPresent;
      this.armKeepalive();
      const cb = this.onConnack;
      this.onConnack = undefined;
      cb?.();
      return;
    }
    switch (p.type) {
      case "publish":
        if (p.qos === 2 && this.receivedQos2(p.messageId ?? 0)) return debug("mqtt", "QoS 2 message received again before PUBREL: not delivered twice", { topic: p.topic });
        try {
          this.emit("message", p.topic, p.payload, p.retain);
        } catch (e) {
          // A listener's failure must not break the connection (or the process through the socket).
          debug("mqtt", "message listener failed; message dropped", { topic: p.topic, error: e instanceof Error ? e.message : String(e) });
        }
        // QoS 1 is acknowledged once the message is handed over (MQTT 3.1.1 §4.3.2), so an answer the
        // listener publishes at once is the tick's first write and leaves before the PUBACK.
        if (p.qos === 1) this.send({ type: "puback", messageId: p.messageId ?? 0 });
        return;
      case "publish-oversized":
        if (p.qos === 1) this.send({ type: "puback", messageId: p.messageId ?? 0 });
        else if (p.qos === 2) this.receivedQos2(p.messageId ?? 0);
        debug("mqtt", "incoming message too big: dropped", { topic: p.topic, size: p.size, limit: this.parser.maxPacketSize });
        return;
      case "pubrel":
        this.awaitingRel?.delete(p.messageId);
        this.send({ type: "pubcomp", messageId: p.messageId });
        return;
      case "pubrec": {
        const w = this.pending.get(p.messageId);
        if (w?.ack === "pubcomp") this.send({ type: "pubrel", messageId: p.messageId });
        else if (w) this.fail(new MqttProtocolError(`PUBREC for packet ${p.messageId}, which awaits a ${w.ack.toUpperCase()}`));
        return;
      }
      case "puback":
      case "pubcomp":
      case "unsuback":
        this.settle(p.type, p.messageId, []);
        return;
      case "suback":
        this.settle(p.type, p.messageId, p.granted);
        return;
      case "pingresp":
        this.pingOutstanding = false;
        return;
      default:
        this.fail(new MqttProtocolError(`unexpected ${p.type} from the broker`));
    }
  }

  /**
   * PUBREC an incoming QoS 2 message; true if its id already awaits PUBREL, i.e. it was delivered (MQTT
   * 3.1.1 §4.3.3, method B: once per connection; a new connection starts with no memory of ids).
   */
  private receivedQos2(id: number): boolean {
    this.send({ type: "pubrec", messageId: id });
    const ids = (this.awaitingRel ??= new Set());
    if (ids.has(id)) return true;
    ids.add(id);
    return false;
  }

  private isClosed(): boolean {
    return this.state === "closed";
  }

  private settle(type: Pending["ack"], id: number, v: number[]): void {
    const w = this.pending.get(id);
    if (!w) return debug("mqtt", "acknowledgement of an unknown packet id ignored", { id });
    // A mismatched acknowledgement would settle the wrong request (a PUBACK "granting" a SUBSCRIBE).
    if (w.ack !== type) return this.fail(new MqttProtocolError(`${type.toUpperCase()} for packet ${id}, which awaits a ${w.ack.toUpperCase()}`));
    if (type === "suback" && v.length !== w.count) return this.fail(new MqttProtocolError(`SUBACK with ${v.length} return codes for ${w.count} topics`));
    this.pending.delete(id);
    w.resolve(v);
    if (this.pending.size === 0) this.onIdle?.();
  }

  private armKeepalive(): void {
    const ms = (this.o.keepalive ?? 60) * 1000;
    if (ms <= 0) return;
    const tick = (): void => {
      if (this.isClosed()) return;
      if (this.pingOutstanding) return this.fail(new TransportError(`no PINGRESP from the broker within ${ms / 1000} s (keepalive): the broker is unreachable`));
      this.pingOutstanding = true;
      this.send(PINGREQ);
    };
    // Timers run before I/O: after an event-loop stall a PINGRESP may be waiting unread, so with a ping
    // outstanding the tick waits for this turn's I/O (setImmediate runs after it).
    this.keepaliveTimer = setInterval(() => (this.pingOutstanding ? setImmediate(tick) : tick()), ms);
    this.keepaliveTimer.unref();
  }

  private allocId(): number {
    for (let n = 0; n < 0xffff; n++) {
      const id = this.nextId;
      this.nextId = id === 0xffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new TransportError("no free MQTT packet id (65535 packets in flight)");
  }

  /** Wait for the acknowledgement of packet `id`, sent by `write`. */
  private expectAck(ack: Pending["ack"], count: number, write: (id: number) => void): Promise<number[]> {
    if (this.state !== "connected") return Promise.reject(this.notOpen());
    return new Promise<number[]>((resolve, reject) => {
      const id = this.allocId();
      this.pending.set(id, { resolve, reject, ack, count });
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
    const unsent = this.link?.unsent ?? 0;
    if (unsent > (this.o.maxUnsentBytes ?? DEFAULT_MAX_UNSENT) && this.state === "connected") {
      return Promise.reject(new TransportError(`the MQTT broker is not keeping up: ${unsent} bytes still unsent, publish refused`));
    }
    if (qos === 0) {
      if (this.state !== "connected") return Promise.reject(this.notOpen());
      return new Promise<void>((resolve, reject) => {
        try {
          this.send(encodePublish(topic, payload, 0, undefined, retain), (e) => (e ? reject(this.lostError(e)) : resolve()));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    }
    return this.expectAck(qos === 1 ? "puback" : "pubcomp", 0, (id) => this.send(encodePublish(topic, payload, qos, id, retain))).then(() => undefined);
  }

  /** Subscribe; resolves with the granted QoS per topic (0x80 = refused). */
  subscribe(topics: string | string[], qos: QoS = 0): Promise<number[]> {
    const list = Array.isArray(topics) ? topics : [topics];
    return this.expectAck("suback", list.length, (id) => this.send({ type: "subscribe", messageId: id, subscriptions: list.map((topic) => ({ topic, qos })) }));
  }

  unsubscribe(topics: string | string[]): Promise<void> {
    const list = Array.isArray(topics) ? topics : [topics];
    return this.expectAck("unsuback", 0, (id) => this.send({ type: "unsubscribe", messageId: id, topics: list })).then(() => undefined);
  }

  /**
   * End politely: wait (up to `graceMs`) for in-flight acknowledgements, send DISCONNECT, end the link;
   * resolves when it is closed (destroyed if it does not close within `graceMs` more).
   */
  async end(graceMs = 1000): Promise<void> {
    if (this.state === "closed" || this.state === "ending") return this.closedPromise;
    if (this.state !== "connected") {
      this.destroy();
      return this.closedPromise;
    }
    this.state = "ending";
    if (this.pending.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.onIdle = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.onIdle = undefined;
    }
    if ((this.state as string) === "closed") return;
    this.send({ type: "disconnect" });
    this.linkEnded = true;
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
    if (this.pending.size > 0) {
      const why = this.lostError();
      for (const w of this.pending.values()) w.reject(why);
      this.pending.clear();
    }
    this.onIdle?.();
    this.resolveClosed();
  }

  /** Why a request cannot be sent: ChannelClosedError (not yet open, or closing/closed). */
  private notOpen(): ChannelClosedError {
    return new ChannelClosedError(`MQTT connection is ${this.state === "connecting" ? "not open yet" : "closed"}`, this.firstError ? { cause: this.firstError } : {});
  }

  /** The typed error for requests cut off by the connection's end: its remos error, or one naming it. */
  private lostError(fallback?: Error): RemosError {
    const e = this.firstError ?? fallback;
    if (e instanceof RemosError) return e;
    if (!e) return new ChannelClosedError("MQTT connection closed");
    return new TransportError(`MQTT connection lost: ${e.message}`, { cause: e });
  }

  /** The error that ended (or is ending) the connection, if any. */
  get error(): Error | undefined {
    return this.firstError;
  }
}
