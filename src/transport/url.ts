/**
 * `--port` URL → transport. Each scheme maps to a loader that imports its transport module only when
 * used, so a command loads just the transport it talks over (CLI cold start).
 *
 * Port forms (spec §5.2): `/dev/ttyUSB0`, `COM3`, `serial:///dev/ttyUSB0`, `http(s)://IP/rpc`,
 * `ws(s)://IP/rpc`, `mqtt(s)://[user:pass@]host[:port]/DEVICE_ID`, and `loopback://NAME` (in-process).
 */
import { UnsupportedPortError, UsageError } from "../errors.js";
import type { Channel } from "../rpc/channel.js";
import type { ConnectOptions } from "./options.js";

export type { ConnectOptions, TlsFileOptions } from "./options.js";

export type TransportConnect = (url: URL, options: ConnectOptions) => Promise<Channel>;

const loaders = new Map<string, () => Promise<TransportConnect>>();

/** Register a transport for URL schemes (without the colon). Later registration wins. */
export function registerTransport(schemes: string[], loader: () => Promise<TransportConnect>): void {
  for (const s of schemes) loaders.set(s.toLowerCase(), loader);
}

export function registeredSchemes(): string[] {
  return [...loaders.keys()].sort();
}

registerTransport(["loopback"], async () => {
  const { connectLoopback } = await import("./loopback.js");
  return async (url) => connectLoopback(url.host || url.pathname.replace(/^\/+/, ""));
});
registerTransport(["http", "https"], async () => (await import("./http.js")).connect);
registerTransport(["ws", "wss"], async () => (await import("./ws.js")).connect);
registerTransport(["mqtt", "mqtts", "mqtt+ws", "mqtt+wss"], async () => (await import("./mqtt.js")).connect);
registerTransport(["serial"], async () => (await import("./serial.js")).connect);

/** Turn a `--port` value into a URL: bare device paths and COM ports become `serial:` URLs. */
export function parsePort(port: string): URL {
  const p = port.trim();
  if (!p) throw new UsageError("--port is empty");
  if (p.startsWith("/") || /^COM\d+$/i.test(p)) return new URL("serial://" + (p.startsWith("/") ? p : "/" + p));
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    throw new UsageError(`--port "${port}" is not a device path or URL (e.g. /dev/ttyUSB0, http://IP/rpc, mqtt://HOST/DEVICE_ID)`);
  }
  try {
    return new URL(p);
  } catch {
    throw new UsageError(`--port "${port}" is not a valid URL`);
  }
}

/** Open a channel to the device named by a `--port` value. */
export async function openChannel(port: string, options: ConnectOptions = {}): Promise<Channel> {
  const url = parsePort(port);
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  const loader = loaders.get(scheme);
  if (!loader) {
    throw new UnsupportedPortError(`no transport for "${scheme}://" (supported: ${registeredSchemes().join(", ")})`);
  }
  const connect = await loader();
  return connect(url, options);
}
