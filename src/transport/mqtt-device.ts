/**
 * The MQTT transport, device end: what a Mongoose OS device's rpc-mqtt library does (spec §2.4), for the
 * remos agent and for fleets of simulated devices.
 *
 * - Subscribes (QoS 1) to `sub_topic` formatted with the device id (default `<id>/rpc`) and, with
 *   `subWildcard` (default true), to `<that>/#`.
 * - A message on `<id>/rpc` is a whole frame; on `<id>/rpc/<Method>` the method is taken from the topic
 *   suffix (id, src and params still come from the payload).
 * - Requests with an id but no src are dropped ("Drop frame without src", debug-logged): there is no
 *   topic to answer on. A request whose src and id equal one of the last 8 received (within 2 s) is dropped
 *   as a duplicate delivery (brokers that deliver once per matching subscription; mos never reuses ids).
 * - Frames sent (replies, device requests, notifications) are published to `pub_topic` formatted with the
 *   frame's `dst` (default `<dst>/rpc`), QoS `qos` (default 1), never retained. A frame without `dst`
 *   (remos decision; the firmware would publish to "/rpc") goes to the `src` of the last request this
 *   device received, and fails with a TransportError if it has received none.
 * - The channel type is "MQTT", its peer the broker address (`mqtt://host:port`, `mqtts://...`).
 * - Reconnect: one Channel object for the device's whole life, made by the reconnect decorator
 *   (transport/reconnect.ts) around one MQTT connection at a time; after a drop it reconnects with jittered
 *   backoff (default 2 s .. 60 s, as the firmware's mqtt.reconnect_timeout_min/max) and subscribes again.
 *   The first connection must succeed (startMqttDevice rejects with a typed error naming the cause) unless
 *   `retryInitial` is set, in which case it resolves at once and keeps trying in the background.
 *
 * Scale (10,000 device ends in one process): TLS secure contexts are shared between devices with the same
 * certificates, there is no timer per device beyond the keepalive timer while connected (and one backoff
 * timer while disconnected), and each connection is a few small objects.
 */
import { ChannelClosedError, TransportError, UsageError, errorMessage } from "../errors.js";
import { debug, debugEnabled, frameForLog } from "../log.js";
import type { Channel } from "../rpc/channel.js";
import { type DecodedFrame, type Frame, decodeFrameBytes, fromObject } from "../rpc/frame.js";
import { BaseChannel } from "./base.js";
import { MQTT_MAX_FRAME_SIZE, type MqttTls, endClient, formatTopic, openMqtt, peerTls, tlsClientOptions, withTimeout } from "./mqtt-common.js";
import type { MqttSession, MqttSessionOptions } from "./mqtt-session.js";
import { SUBACK_FAILURE } from "./mqtt-wire.js";
import { type ReconnectingChannel, reconnecting } from "./reconnect.js";

export interface MqttDeviceOptions {
  /** Broker: `host:port` as in the firmware's `mqtt.server` (TLS when `tls` is given), or a URL (`mqtt://`, `mqtts://`, `ws://`, `wss://`). */
  server: string;
  tls?: { cert?: string | Buffer; key?: string | Buffer; ca?: string | Buffer; insecure?: boolean; servername?: string };
  clientId: string;
  deviceId: string;
  user?: string;
  pass?: string;
  /** Default `"%.*s/rpc"` (the device id goes in place of `%.*s`). */
  subTopic?: string;
  /** Default `"%.*s/rpc"` (the frame's dst goes in place of `%.*s`). */
  pubTopic?: string;
  /** Also subscribe `<sub topic>/#` (method from the topic suffix). Default true. */
  subWildcard?: boolean;
  /** QoS of publishes. Default 1. */
  qos?: 0 | 1 | 2;
  /** MQTT keepalive in seconds. Default 60. */
  keepAliveSec?: number;
  /** Default true (the firmware's `mqtt.clean_session`). */
  cleanSession?: boolean;
  /** Backoff between reconnect attempts. Default { minMs: 2000, maxMs: 60000 }. */
  reconnect?: { minMs: number; maxMs: number };
  will?: { topic: string; payload: string; retain?: boolean };
  /** Called once, before startMqttDevice resolves, with the device's channel (the same object for life). */
  onChannel(channel: Channel): void;
  /** Bound on one connection attempt (TCP + TLS + CONNACK + SUBACK), in ms. Default 30000. */
  connectTimeoutMs?: number;
  /** Keep retrying when the very first connection fails, and resolve at once. Default false. */
  retryInitial?: boolean;
  /** How long a send waits for a down link, in ms (see reconnect.ts). Default 5000. */
  sendWaitMs?: number;
}

export interface MqttDeviceLink {
  channel: Channel;
  /** Publish on any topic over the device's connection (e.g. shadow, logs); waits for a down link like send. */
  publish(topic: string, payload: string | Buffer, qos?: 0 | 1): Promise<void>;
  readonly connected: boolean;
  /** States: "connecting" | "connected" | "waiting" | "closed". */
  onStateChange(l: (s: string) => void): () => void;
  close(): Promise<void>;
}

interface Broker {
  url: string;
  peer: string;
  host: string;
  secure: boolean;
}

/** Parse `mqtt.server`: `host:port` (TLS when tls options are given) or a URL. */
export function parseServer(server: string, tls: boolean): Broker {
  const s = server.trim();
  if (!s) throw new UsageError("MQTT server is empty");
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `${tls ? "mqtts" : "mqtt"}://${s}`);
  } catch {
    throw new UsageError(`MQTT server "${server}" is not host:port or a URL`);
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (!["mqtt", "mqtts", "ws", "wss"].includes(scheme)) throw new UsageError(`MQTT server "${server}": unsupported scheme ${scheme}://`);
  const secure = scheme === "mqtts" || scheme === "wss";
  const ws = scheme.startsWith("ws");
  const port = url.port ? Number(url.port) : ws ? (secure ? 443 : 80) : secure ? 8883 : 1883;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const path = ws ? (url.pathname && url.pathname !== "/" ? url.pathname : "/mqtt") : "";
  const base = `${scheme}://${hostPart}:${port}${path}`;
  return { url: base, peer: base, host, secure };
}

/** What all connections of one device share (survives reconnects). */
interface DeviceState {
  o: MqttDeviceOptions;
  broker: Broker;
  subTopic: string;
  pubTopic: string;
  qos: 0 | 1 | 2;
  /** The src of the last request received: where frames without dst go. */
  lastRequester: string | undefined;
  /** The last few requests, to drop duplicate deliveries. */
  recent: RecentRequests;
}

/**
 * A broker that delivers once per matching subscription (some do, for `<id>/rpc` and `<id>/rpc/#`)
 * would run every request twice. mos never reuses an id (retries get new ones), so a request whose
 * src and id (`key`) match one of the last few (8), within 2 s, is a duplicate delivery.
 */
export class RecentRequests {
  static readonly SIZE = 8;
  static readonly WINDOW_MS = 2000;
  private readonly keys: string[] = [];
  private readonly at: number[] = [];
  private next = 0;

  /** True when `key` came less than WINDOW_MS before `now` (then it is not recorded again). */
  isDuplicate(key: string, now = Date.now()): boolean {
    // every entry: the same key may be in the ring more than once, an old one first
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] === key && now - this.at[i] < RecentRequests.WINDOW_MS) return true;
    }
    this.keys[this.next] = key;
    this.at[this.next] = now;
    this.next = (this.next + 1) % RecentRequests.SIZE;
    return false;
  }
}

/** One MQTT connection of a device end; the reconnect decorator makes the lasting channel out of these. */
class MqttDeviceConnection extends BaseChannel {
  readonly client: MqttSession;
  private readonly state: DeviceState;
  private linkError: Error | undefined;

  constructor(client: MqttSession, state: DeviceState) {
    super({ type: "MQTT", peer: state.broker.peer, maxFrameSize: MQTT_MAX_FRAME_SIZE });
    this.client = client;
    this.state = state;
    const tls = peerTls(client);
    if (tls) this.info.tls = tls;
    client.on("message", (topic, payload) => {
      // A message listener that throws would take the whole agent down with the connection: whatever
      // arrives, the device drops it and keeps answering.
      try {
        this.onMessage(topic, payload);
      } catch (e) {
        debug("mqtt", "message dropped: it could not be handled", { topic, bytes: payload.length, error: errorMessage(e) });
      }
    });
    client.on("error", (e) => {
      this.linkError ??= e;
    });
    client.on("close", () => {
      const why = this.linkError ? `: ${errorMessage(this.linkError)}` : "";
      this.markClosed(new TransportError(`connection to the MQTT broker ${state.broker.peer} lost${why}`, { cause: this.linkError }));
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const { subTopic } = this.state;
    let method: string | undefined;
    if (topic !== subTopic) {
      if (!topic.startsWith(subTopic + "/") || topic.length === subTopic.length + 1) {
        debug("mqtt", "message on an unexpected topic dropped", { topic, bytes: payload.length });
        return;
      }
      method = topic.slice(subTopic.length + 1);
    }
    if (payload.length > this.info.maxFrameSize) {
      debug("mqtt", "incoming frame too big: dropped", { topic, size: payload.length, limit: this.info.maxFrameSize });
      return;
    }
    const decoded = this.decodeMessage(payload, method, topic);
    if (decoded === undefined) return;
    const f = decoded.frame;
    if (typeof f.method === "string" && f.id !== undefined) {
      if (f.src === undefined || f.src === "") {
        debug("mqtt", "Drop frame without src", { topic, method: f.method });
        return;
      }
      this.state.lastRequester = f.src;
      if (this.state.recent.isDuplicate(`${f.src}\u0000${String(f.id)}`)) {
        debug("mqtt", "duplicate delivery dropped", { topic, method: f.method, id: String(f.id) });
        return;
      }
    }
    debug("mqtt", "message", { topic, bytes: payload.length });
    this.receiveDecoded(decoded);
  }

  /**
   * The frame a payload holds, with the method the topic names (if any) in place of its own; undefined
   * (logged) when it holds none. Decoded once, from the bytes (rpc/frame.ts decodeFrameBytes).
   */
  private decodeMessage(payload: Buffer, method: string | undefined, topic: string): DecodedFrame | undefined {
    try {
      const decoded = decodeFrameBytes(payload);
      if (method !== undefined) decoded.frame.method = method;
      return decoded;
    } catch (e) {
      const text = payload.toString("utf8");
      if (method !== undefined) {
        // the topic's method replaces the payload's own, however malformed that one was
        try {
          const obj: unknown = JSON.parse(text);
          if (obj !== null && typeof obj === "object" && !Array.isArray(obj)) return fromObject({ ...obj, method }, text);
        } catch {
          // not a frame either way: logged below
        }
      }
      debug("mqtt", "malformed frame dropped", { topic, reason: errorMessage(e), sample: frameForLog(text, 80) });
      return undefined;
    }
  }

  protected async sendText(text: string | Buffer, frame: Frame): Promise<void> {
    const dst = frame.dst || this.state.lastRequester;
    if (!dst) throw new TransportError("MQTT: a frame without dst has nowhere to go (no request received yet)");
    const topic = formatTopic(this.state.pubTopic, dst);
    if (debugEnabled("mqtt")) debug("mqtt", "publish", { topic, qos: this.state.qos, bytes: Buffer.byteLength(text) });
    try {
      await this.client.publish(topic, text, this.state.qos);
    } catch (e) {
      if (this.closed || !this.client.connected) {
        throw new ChannelClosedError(`MQTT link to ${this.info.peer} dropped`, { cause: e });
      }
      throw new TransportError(`publishing to ${topic} failed: ${errorMessage(e)}`, { cause: e });
    }
  }

  protected override sendBytes(bytes: Buffer, frame: Frame): Promise<void> {
    return this.sendText(bytes, frame);
  }

  protected async closeLink(): Promise<void> {
    await endClient(this.client);
  }
}

/** Start the device end of MQTT RPC (see the file header). */
export async function startMqttDevice(o: MqttDeviceOptions): Promise<MqttDeviceLink> {
  if (!o.deviceId || /[+#\0]/.test(o.deviceId)) throw new UsageError(`bad MQTT device id "${o.deviceId}"`);
  if (!o.clientId) throw new UsageError("MQTT client id is empty");
  const broker = parseServer(o.server, o.tls !== undefined);
  const state: DeviceState = {
    o,
    broker,
    subTopic: formatTopic(o.subTopic ?? "%.*s/rpc", o.deviceId),
    pubTopic: o.pubTopic ?? "%.*s/rpc",
    qos: o.qos ?? 1,
    lastRequester: undefined,
    recent: new RecentRequests(),
  };
  const timeoutMs = o.connectTimeoutMs ?? 30_000;
  const tls: MqttTls = { ...(o.tls ?? {}) };
  const opts: MqttSessionOptions = {
    url: broker.url,
    clientId: o.clientId,
    clean: o.cleanSession ?? true,
    keepalive: o.keepAliveSec ?? 60,
    ...(o.user !== undefined ? { username: o.user } : {}),
    ...(o.pass !== undefined ? { password: o.pass } : {}),
    ...(o.will ? { will: { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: o.qos ?? 1, retain: o.will.retain ?? false } } : {}),
    ...(broker.secure ? { tls: tlsClientOptions(tls, broker.host) } : {}),
  };
  const topics = [state.subTopic, ...(o.subWildcard === false ? [] : [`${state.subTopic}/#`])];

  const open = async (signal: AbortSignal): Promise<Channel> => {
    const deadline = Date.now() + timeoutMs;
    const client = await openMqtt(opts, { timeoutMs, signal, peer: broker.peer, tlsUsed: broker.secure });
    const conn = new MqttDeviceConnection(client, state);
    try {
      debug("mqtt", "subscribe", { clientId: o.clientId, topics, qos: 1 });
      const left = Math.max(1, deadline - Date.now());
      const granted = await withTimeout(client.subscribe(topics, 1), left, `${broker.peer}: no SUBACK within ${timeoutMs} ms of connecting`);
      const refused = topics.filter((_t, i) => granted[i] === SUBACK_FAILURE);
      if (refused.length) throw new TransportError(`${broker.peer}: the broker refused the subscription to ${refused.join(", ")} (not authorized?)`);
    } catch (e) {
      await conn.close();
      throw e instanceof TransportError ? e : new TransportError(`${broker.peer}: subscribing failed: ${errorMessage(e)}`, { cause: e });
    }
    return conn;
  };

  const channel: ReconnectingChannel = reconnecting(open, {
    info: { type: "MQTT", peer: broker.peer, maxFrameSize: MQTT_MAX_FRAME_SIZE },
    minMs: o.reconnect?.minMs ?? 2000,
    maxMs: o.reconnect?.maxMs ?? 60_000,
    sendWaitMs: o.sendWaitMs ?? 5000,
    area: "mqtt",
    fatal: (_e, i) => !i.everConnected && o.retryInitial !== true,
  });
  o.onChannel(channel);
  if (o.retryInitial !== true) {
    try {
      await channel.whenConnected();
    } catch (e) {
      // Closed by the fatal first failure: surface that failure itself (TlsError, TransportError...).
      throw channel.lastError ?? e;
    }
  }

  return {
    channel,
    async publish(topic, payload, qos = 1) {
      await channel.whenConnected(o.sendWaitMs ?? 5000);
      const link = channel.link as MqttDeviceConnection | undefined;
      if (!link) throw new TransportError(`MQTT link to ${broker.peer} is down`);
      debug("mqtt", "publish", { topic, qos, bytes: Buffer.byteLength(payload) });
      await link.client.publish(topic, payload, qos);
    },
    get connected() {
      return channel.state === "connected";
    },
    onStateChange(l) {
      return channel.onStateChange((s) => l(s));
    },
    close() {
      return channel.close();
    },
  };
}
