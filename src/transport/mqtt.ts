/**
 * The MQTT transport, client end (what `mos --port mqtt://...` uses), wire-compatible with the Go mos
 * (spec §2.4). The device end is in mqtt-device.ts (not re-exported: `mos call` does not load it).
 *
 * Port URL forms:
 * - `mqtt://[user:pass@]host[:port]/DEVICE_ID`   MQTT over TCP, default port 1883
 * - `mqtts://[user:pass@]host[:port]/DEVICE_ID`  MQTT over TLS, default port 8883; on port 443 ALPN
 *   `x-amzn-mqtt-ca` is offered automatically (AWS IoT's MQTT-on-443), unless `tls.alpn` says otherwise
 * - `mqtt+wss://[user:pass@]host[:port]/DEVICE_ID[?ws_path=/mqtt]`  MQTT over secure WebSocket, default
 *   port 443, WebSocket path `/mqtt` (mosquitto, AWS IoT with SigV4 aside, EMQX, HiveMQ all use it);
 *   for networks that only let 443 out. `mqtt+ws://` is the same without TLS (default port 80).
 *
 * On the wire, exactly as mos: client id `mos-<random int31>` (or `options.clientId`, or the CN of a remos
 * operator certificate, which the remos broker requires); every frame sent
 * gets `dst = DEVICE_ID` and `src = DEVICE_ID/rpc-resp/<clientId>`; `<src>/rpc` is subscribed (QoS 1)
 * once, when connecting, so before the first publish; frames are published to `DEVICE_ID/rpc` with QoS 1,
 * retain false; MQTT 3.1.1; clean session. The device answers on `DEVICE_ID/rpc-resp/<clientId>/rpc`.
 *
 * TLS: `options.tls` certFile/keyFile/caFile (or PEM contents). UNLIKE mos, the server certificate is
 * always verified: against the given CA, else the system roots; `insecure` turns that off (the CLI warns).
 * Failures are typed: TlsError names the cause (unknown CA, expired, host name mismatch, no/refused
 * client certificate), TransportError the refusal (connection refused, the broker's CONNACK return code).
 *
 * maxFrameSize: 256 KiB (MQTT_MAX_FRAME_SIZE) for remos peers. Real firmware only accepts incoming
 * messages up to `mqtt.recv_mbuf_limit` (3072 bytes by default, 8192 on esp32/cc3220 with the aws lib):
 * callers that talk to real devices keep frames small (mos's 512-byte FS chunks give ~800-byte frames).
 *
 * `--verbose` (debug area "mqtt") traces the topics subscribed and published to.
 */
import { ChannelClosedError, TransportError, UsageError, errorMessage } from "../errors.js";
import { debug, debugEnabled } from "../log.js";
import { type Frame, encodeFrame, encodeFrameBytes } from "../rpc/frame.js";
import { BaseChannel } from "./base.js";
import { MQTT_MAX_FRAME_SIZE, type MqttTls, endClient, openMqtt, peerTls, readPem, tlsClientOptions, withTimeout } from "./mqtt-common.js";
import type { MqttSession, MqttSessionOptions } from "./mqtt-session.js";
import { SUBACK_FAILURE } from "./mqtt-wire.js";
import type { ConnectOptions, TlsFileOptions } from "./options.js";

export { MQTT_MAX_FRAME_SIZE } from "./mqtt-common.js";


export const MQTT_SCHEMES = ["mqtt", "mqtts", "mqtt+ws", "mqtt+wss"];

/** The parts of an MQTT port URL. */
export interface MqttPort {
  /** The URL the MQTT session connects to: `mqtt://h:p`, `mqtts://h:p`, `ws://h:p/path`, `wss://h:p/path`. */
  brokerUrl: string;
  /** The broker without credentials, for messages and `info.peer`. */
  peer: string;
  host: string;
  port: number;
  secure: boolean;
  deviceId: string;
  username?: string;
  password?: string;
}

/** Parse `mqtt(s)://[user:pass@]host[:port]/DEVICE_ID` and the WebSocket forms (see the header). */
export function parseMqttPort(url: URL): MqttPort {
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (!MQTT_SCHEMES.includes(scheme)) throw new UsageError(`not an MQTT port URL: ${scheme}://`);
  const deviceId = decodeURIComponent(url.pathname.replace(/^\/+/, ""));
  if (!deviceId) throw new UsageError(`MQTT port URL needs the device id as its path: ${scheme}://HOST[:PORT]/DEVICE_ID`);
  if (/[+#\0]/.test(deviceId)) throw new UsageError(`device id "${deviceId}" contains an MQTT wildcard or NUL`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new UsageError(`MQTT port URL has no broker host: ${url.href}`);
  const ws = scheme.startsWith("mqtt+");
  const secure = scheme === "mqtts" || scheme === "mqtt+wss";
  const port = url.port ? Number(url.port) : ws ? (secure ? 443 : 80) : secure ? 8883 : 1883;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  let brokerUrl: string;
  let peer: string;
  if (ws) {
    const wsPath = url.searchParams.get("ws_path") ?? "/mqtt";
    const path = wsPath.startsWith("/") ? wsPath : "/" + wsPath;
    brokerUrl = `${secure ? "wss" : "ws"}://${hostPart}:${port}${path}`;
    peer = `${scheme}://${hostPart}:${port}${path}`;
  } else {
    brokerUrl = `${scheme}://${hostPart}:${port}`;
    peer = brokerUrl;
  }
  const out: MqttPort = { brokerUrl, peer, host, port, secure, deviceId };
  if (url.username) out.username = decodeURIComponent(url.username);
  if (url.password) out.password = decodeURIComponent(url.password);
  return out;
}

/** Resolve TLS file options (paths or contents) to PEM contents. */
export function resolveTls(t: TlsFileOptions | undefined, port: number, ws: boolean): MqttTls {
  const out: MqttTls = {};
  if (!t) return port === 443 && !ws ? { alpn: ["x-amzn-mqtt-ca"] } : out;
  const cert = t.cert ?? (t.certFile ? readPem(t.certFile, "--cert-file") : undefined);
  const key = t.key ?? (t.keyFile ? readPem(t.keyFile, "--key-file") : undefined);
  const ca = t.ca ?? (t.caFile ? readPem(t.caFile, "--ca-cert-file") : undefined);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("a client certificate needs both --cert-file and --key-file");
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (ca !== undefined) out.ca = ca;
  if (t.insecure) out.insecure = true;
  if (t.servername) out.servername = t.servername;
  const alpn = t.alpn ?? (port === 443 && !ws ? ["x-amzn-mqtt-ca"] : undefined);
  if (alpn) out.alpn = alpn;
  return out;
}

/** Session options for TLS over either TCP (mqtts) or WebSocket (wss). */
export function tlsFor(p: MqttPort, tls: MqttTls): Partial<MqttSessionOptions> {
  return p.secure ? { tls: tlsClientOptions(tls, p.host) } : {};
}

/**
 * The CN of a remos operator certificate (subject OU=operator, issued by `mos ca`/`mos iot-setup`): the
 * remos broker requires the client id to equal it, so it is the default client id with such a
 * certificate. Any other certificate (e.g. an AWS IoT device certificate) keeps mos's random id.
 */
function operatorCn(cert: string | Buffer | undefined): string | undefined {
  if (cert === undefined) return undefined;
  try {
    const fields = new (process.getBuiltinModule("node:crypto").X509Certificate)(cert).subject.split("\n");
    if (!fields.includes("OU=operator")) return undefined;
    const cn = fields.find((f) => f.startsWith("CN="))?.slice(3);
    return cn && /^[A-Za-z0-9_.:@-]{1,64}$/.test(cn) ? cn : undefined;
  } catch {
    return undefined;
  }
}

/** The client end of an MQTT RPC channel to one device. */
export class MqttClientChannel extends BaseChannel {
  readonly deviceId: string;
  readonly clientId: string;
  /** The `src` of every frame sent: `DEVICE_ID/rpc-resp/<clientId>`. */
  readonly src: string;
  private readonly client: MqttSession;
  private readonly requestTopic: string;
  private readonly replyTopic: string;
  private linkError: Error | undefined;

  private constructor(client: MqttSession, p: MqttPort, clientId: string) {
    super({ type: "MQTT", peer: p.peer, maxFrameSize: MQTT_MAX_FRAME_SIZE });
    this.client = client;
    this.deviceId = p.deviceId;
    this.clientId = clientId;
    this.src = `${p.deviceId}/rpc-resp/${clientId}`;
    this.requestTopic = `${p.deviceId}/rpc`;
    this.replyTopic = `${this.src}/rpc`;
    const tls = peerTls(client);
    if (tls) this.info.tls = tls;
    client.on("message", (topic, payload) => {
      if (topic !== this.replyTopic) {
        debug("mqtt", "message on an unexpected topic dropped", { topic, bytes: payload.length });
        return;
      }
      if (payload.length > this.info.maxFrameSize) {
        debug("mqtt", "incoming frame too big: dropped", { topic, size: payload.length, limit: this.info.maxFrameSize });
        return;
      }
      debug("mqtt", "message", { topic, bytes: payload.length });
      this.receiveBytes(payload);
    });
    client.on("error", (e) => {
      this.linkError ??= e;
      debug("mqtt", "connection error", { broker: p.peer, error: errorMessage(e) });
    });
    client.on("close", () => {
      const why = this.linkError ? `: ${errorMessage(this.linkError)}` : "";
      this.markClosed(new TransportError(`connection to the MQTT broker ${p.peer} lost${why}`, { cause: this.linkError }));
    });
  }

  /** Connect to the broker and subscribe the reply topic (see the file header). */
  static async open(url: URL, options: ConnectOptions): Promise<MqttClientChannel> {
    const { client, p, clientId, deadline } = await openOperatorClient(url, options);
    const channel = new MqttClientChannel(client, p, clientId);
    try {
      await subscribeOrFail(client, channel.replyTopic, 1, deadline, p.peer);
    } catch (e) {
      await channel.close();
      throw e;
    }
    debug("mqtt", "ready", { broker: p.peer, clientId, publishTo: channel.requestTopic, repliesOn: channel.replyTopic });
    return channel;
  }

  /** Every frame carries the routing of spec §2.4: the device replies to `<src>/rpc`. */
  protected override encode(frame: Frame): string {
    return encodeFrame({ ...frame, src: this.src, dst: this.deviceId });
  }

  protected override encodeBytes(frame: Frame): Buffer | undefined {
    return encodeFrameBytes({ ...frame, src: this.src, dst: this.deviceId });
  }

  protected async sendText(text: string | Buffer): Promise<void> {
    if (debugEnabled("mqtt")) debug("mqtt", "publish", { topic: this.requestTopic, qos: 1, bytes: Buffer.byteLength(text) });
    try {
      await this.client.publish(this.requestTopic, text, 1);
    } catch (e) {
      if (this.closed) throw new ChannelClosedError(`MQTT channel to ${this.info.peer} is closed`, { cause: e });
      throw new TransportError(`publishing to ${this.requestTopic} failed: ${errorMessage(e)}`, { cause: e });
    }
  }

  protected override sendBytes(bytes: Buffer): Promise<void> {
    return this.sendText(bytes);
  }

  /**
   * Sends DISCONNECT (after in-flight publishes, bounded to 1 s) in the background: close() returns as
   * soon as the channel is closed locally, so callers waiting on failed calls are not held up by the wire.
   */
  protected async closeLink(): Promise<void> {
    void endClient(this.client);
  }
}

/**
 * An operator's connection to the broker named by a port URL: client id from the options, else the CN of
 * an operator certificate (the remos broker requires client id = CN), else `mos-<random>` as mos.
 */
export async function openOperatorClient(
  url: URL,
  options: ConnectOptions,
): Promise<{ client: MqttSession; p: MqttPort; clientId: string; deadline: number }> {
  const p = parseMqttPort(url);
  const ws = p.brokerUrl.startsWith("ws");
  const tls = p.secure ? resolveTls(options.tls, p.port, ws) : {};
  // as mos (Go's math/rand): the id only has to differ from other clients'; no crypto loaded for it
  const clientId = options.clientId ?? operatorCn(tls.cert) ?? `mos-${Math.floor(Math.random() * (2 ** 31 - 1))}`;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  const opts: MqttSessionOptions = {
    url: p.brokerUrl,
    clientId,
    clean: true,
    keepalive: 60,
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...tlsFor(p, tls),
  };
  const client = await openMqtt(opts, {
    timeoutMs,
    peer: p.peer,
    tlsUsed: p.secure,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { client, p, clientId, deadline };
}

/** Subscribe before `deadline`; a refused or unanswered SUBSCRIBE is a TransportError naming the topic. */
export async function subscribeOrFail(client: MqttSession, topic: string, qos: 0 | 1, deadline: number, peer: string): Promise<void> {
  debug("mqtt", "subscribe", { topic, qos });
  try {
    const granted = await withTimeout(client.subscribe(topic, qos), Math.max(1, deadline - Date.now()), `${peer}: no SUBACK in time`);
    if (granted.some((g) => g === SUBACK_FAILURE)) throw new TransportError(`${peer}: the broker refused the subscription to ${topic} (not authorized?)`);
  } catch (e) {
    throw e instanceof TransportError ? e : new TransportError(`${peer}: subscribing ${topic} failed: ${errorMessage(e)}`, { cause: e });
  }
}

/** The transport entry point for `--port mqtt://...` (registered in url.ts). */
export async function connect(url: URL, options: ConnectOptions): Promise<MqttClientChannel> {
  return MqttClientChannel.open(url, options);
}
