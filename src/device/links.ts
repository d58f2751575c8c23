/**
 * The device ends of the transports, started at each boot from the config and closed at reboot:
 * - HTTP + WebSocket on `http.listen_addr` (when `http.enable`; `/rpc` answers per `rpc.http_enable`,
 *   WS upgrades per `rpc.ws.enable`); HTTPS when `http.ssl_cert` + `http.ssl_key` name files in the FS
 *   root, with client certificates required when `http.ssl_ca_cert` is set too.
 * - UART on the `serial` path (`rpc.uart.baud_rate`, `rpc.max_frame_size`); the console goes there too.
 * - MQTT when `mqtt.enable` (`mqtt.server`, TLS from the files `mqtt.ssl_cert`/`ssl_key`/`ssl_ca_cert` name
 *   in the FS root, `rpc.mqtt.*` topics, reconnect backoff `mqtt.reconnect_timeout_min/max` seconds), and the
 *   console published to `debug.stdout_topic` / `debug.stderr_topic`.
 * With `rpc.enable` false no channel is served (the links still start, so logs still flow).
 * Transport modules are imported only when used, so a fleet without HTTP loads no HTTP code.
 */
import { readFile } from "node:fs/promises";
import { errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel } from "../rpc/channel.js";
import type { HttpDigestAuthority } from "../rpc/digest.js";
import type { DeviceConfig } from "./config/schema.js";
import { type DeviceConsole, LL_ERROR, LL_INFO, mqttLogPayload } from "./console.js";
import type { FsRoot } from "./fsroot.js";

export interface LinkDeps {
  config(): DeviceConfig;
  fsRoot: FsRoot;
  console: DeviceConsole;
  httpAuthority: HttpDigestAuthority | undefined;
  serial?: string;
  /** Overrides http.listen_addr; "" or "off" = no listener. */
  httpListen?: string;
  onChannel(channel: Channel): void;
  /** Fail when HTTP or UART cannot start (the first boot); otherwise log and go on. */
  strict?: boolean;
}

export interface Links {
  httpAddress?: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * `http.listen_addr` forms: `8080`, `:8080` (all interfaces), `HOST:PORT`, `[v6]:PORT`. Returns undefined
 * for "" / "off".
 */
export function parseListenAddr(addr: string): { host: string; port: number } | undefined {
  const a = addr.trim();
  if (a === "" || a === "off") return undefined;
  let host = "0.0.0.0";
  let portText = a;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(a);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if (a.includes(":")) {
    const i = a.lastIndexOf(":");
    host = a.slice(0, i) || "0.0.0.0";
    portText = a.slice(i + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`invalid listen address "${addr}"`);
  return { host, port };
}

async function fsFile(root: FsRoot, name: string): Promise<Buffer | undefined> {
  if (!name) return undefined;
  return readFile(await root.resolve(name));
}

export async function startLinks(deps: LinkDeps): Promise<Links> {
  const cfg = deps.config();
  const closers: (() => Promise<void>)[] = [];
  const links: Links = {
    async close() {
      for (const c of closers.reverse()) await c().catch((e: unknown) => debug("device", "link close failed", { error: errorMessage(e) }));
    },
  };
  const serve = (ch: Channel): void => {
    if (deps.config().rpc.enable) deps.onChannel(ch);
    else void ch.close();
  };
  try {
    // At the first boot a listener that cannot start is an error for the caller; at a reboot the device
    // comes up without it (and logs why) rather than not at all.
    await startHttp(deps, cfg, serve, links, closers).catch((e: unknown) => {
      if (deps.strict) throw e;
      deps.console.log(LL_ERROR, `HTTP not started: ${errorMessage(e)}`);
    });
    if (deps.serial) {
      await startSerial(deps, cfg, serve, closers).catch((e: unknown) => {
        if (deps.strict) throw e;
        deps.console.log(LL_ERROR, `UART not started: ${errorMessage(e)}`);
      });
    }
    if (cfg.mqtt.enable) {
      // A bad MQTT setting must not keep the device from booting (it could then never be fixed remotely).
      await startMqtt(deps, cfg, serve, closers).catch((e: unknown) => deps.console.log(LL_ERROR, `MQTT not started: ${errorMessage(e)}`));
    }
  } catch (e) {
    await links.close();
    throw e;
  }
  return links;
}

async function startHttp(deps: LinkDeps, cfg: DeviceConfig, serve: (ch: Channel) => void, links: Links, closers: (() => Promise<void>)[]): Promise<void> {
  if (!cfg.http.enable) return;
  const addr = parseListenAddr(deps.httpListen ?? cfg.http.listen_addr);
  if (!addr) return;
  const { listenHttp } = await import("../transport/http-device.js");
  let tls: { cert: Buffer; key: Buffer; ca?: Buffer; requestCert?: boolean } | undefined;
  if (cfg.http.ssl_cert && cfg.http.ssl_key) {
    const [cert, key, ca] = await Promise.all([fsFile(deps.fsRoot, cfg.http.ssl_cert), fsFile(deps.fsRoot, cfg.http.ssl_key), fsFile(deps.fsRoot, cfg.http.ssl_ca_cert)]);
    if (cert && key) tls = ca ? { cert, key, ca, requestCert: true } : { cert, key };
  }
  const server = await listenHttp({
    host: addr.host,
    port: addr.port,
    tls,
    onChannel: serve,
    httpAuth: deps.httpAuthority,
    isHttpEnabled: () => deps.config().rpc.enable && deps.config().rpc.http_enable,
    // WS lives on the /rpc endpoint, which the firmware registers only with rpc.http_enable
    isWsEnabled: () => deps.config().rpc.enable && deps.config().rpc.http_enable && deps.config().rpc.ws.enable,
    allowOrigin: (origin) => allowBrowserOrigin(origin, deps.config().rpc),
    maxConnections: Math.max(1, cfg.rpc.max_non_persistent_channels * 4),
  });
  links.httpAddress = { host: server.host, port: server.port };
  closers.push(() => server.close());
  deps.console.log(LL_INFO, `HTTP${tls ? "S" : ""} /rpc listening on ${server.host}:${server.port}`);
}

async function startSerial(deps: LinkDeps, cfg: DeviceConfig, serve: (ch: Channel) => void, closers: (() => Promise<void>)[]): Promise<void> {
  const { serveSerial } = await import("../transport/serial.js");
  const end = await serveSerial({ path: deps.serial as string, baudRate: cfg.rpc.uart.baud_rate, maxFrameSize: cfg.rpc.max_frame_size });
  const offConsole = deps.console.addSink((_fd, text) => end.writeConsole(text + "\n"));
  serve(end.channel);
  closers.push(async () => {
    offConsole();
    await end.close();
  });
  deps.console.log(LL_INFO, `RPC on UART ${deps.serial} at ${cfg.rpc.uart.baud_rate} baud`);
}

async function startMqtt(deps: LinkDeps, cfg: DeviceConfig, serve: (ch: Channel) => void, closers: (() => Promise<void>)[]): Promise<void> {
  const m = cfg.mqtt;
  let tls: { cert?: Buffer; key?: Buffer; ca?: Buffer } | undefined;
  try {
    if (m.ssl_ca_cert || m.ssl_cert) {
      const [cert, key, ca] = await Promise.all([fsFile(deps.fsRoot, m.ssl_cert), fsFile(deps.fsRoot, m.ssl_key), fsFile(deps.fsRoot, m.ssl_ca_cert)]);
      tls = { cert, key, ca };
    }
  } catch (e) {
    deps.console.log(LL_ERROR, `MQTT disabled: cannot read its TLS files: ${errorMessage(e)}`);
    return;
  }
  const { startMqttDevice } = await import("../transport/mqtt-device.js");
  const qos = cfg.rpc.mqtt.qos === 0 || cfg.rpc.mqtt.qos === 2 ? cfg.rpc.mqtt.qos : 1;
  const link = await startMqttDevice({
    server: m.server,
    tls,
    clientId: m.client_id || cfg.device.id,
    deviceId: cfg.device.id,
    user: m.user || undefined,
    pass: m.pass || undefined,
    subTopic: cfg.rpc.mqtt.sub_topic,
    pubTopic: cfg.rpc.mqtt.pub_topic,
    subWildcard: cfg.rpc.mqtt.sub_wc,
    qos,
    keepAliveSec: m.keep_alive,
    cleanSession: m.clean_session,
    will: m.will_topic ? { topic: m.will_topic, payload: m.will_message, retain: m.will_retain } : undefined,
    reconnect: { minMs: Math.max(100, m.reconnect_timeout_min * 1000), maxMs: Math.max(100, m.reconnect_timeout_max * 1000) },
    retryInitial: true,
    onChannel: (ch) => {
      if (cfg.rpc.mqtt.enable) serve(ch);
    },
  });
  let seq = 0;
  const offConsole = deps.console.addSink((fd, text) => {
    const topic = fd === 2 ? deps.config().debug.stderr_topic : deps.config().debug.stdout_topic;
    if (!topic) return;
    const payload = mqttLogPayload(deps.config().device.id, seq++, Date.now(), fd, text);
    link.publish(topic, payload, 0).catch((e: unknown) => debug("device", "console line not published", { topic, error: errorMessage(e) }));
  });
  closers.push(async () => {
    offConsole();
    await link.close();
  });
  deps.console.log(LL_INFO, `MQTT to ${m.server} as ${m.client_id || cfg.device.id}`);
}

/** The Origin the Go mos tool sends on its WebSocket upgrade. */
const MOS_ORIGIN = /^https:\/\/api\.cesanta\.com\/?$/;

/**
 * Browser requests to an open device: a web page the operator visits must not drive a device that has
 * no ACL (it would be unauthenticated RPC from any site, e.g. to ws://127.0.0.1:8080/rpc). With an ACL the
 * device's own auth decides, as on the firmware; mos's own Origin is always let through.
 */
export function allowBrowserOrigin(origin: string, rpc: { acl: string; acl_file: string }): boolean {
  if (MOS_ORIGIN.test(origin)) return true;
  return Boolean(rpc.acl || rpc.acl_file);
}
