/**
 * The WebSocket transport, device end (spec §2.3): inbound WebSocket connections on the `/rpc` endpoint of
 * the device's HTTP(S) server (http-device.ts attaches it). Each connection is one Channel of type
 * `WS_in` (peer `ip:port`) handed to `onChannel`.
 *
 * - Upgrades on `/rpc` and `/rpc/...` are accepted; other paths get 404; `isWsEnabled() === false` gets
 *   HTTP 503 "WS is disabled" (`rpc.ws.enable`).
 * - The requested subprotocol (mos: `clubby.cesanta.com`) is echoed, the first one when several are
 *   offered; none is required.
 * - HTTP Digest on the upgrade: when `httpAuth` is set and an `Authorization` header came, a valid digest
 *   puts its user on the channel (`info.user`); an invalid one is ignored (the link is then
 *   unauthenticated and in-frame auth applies; WS_in has no channel-level 401).
 * - Messages above `maxFrameSize` close that connection (1009) and are logged.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import WebSocket, { WebSocketServer } from "ws";
import { errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel, ChannelInfo } from "../rpc/channel.js";
import type { HttpDigestAuthority } from "../rpc/digest.js";
import { formatPeer, tlsPeerInfo } from "./tls-client.js";
import { WS_MAX_FRAME_SIZE, WsChannel } from "./ws.js";

export interface WsDeviceOptions {
  onChannel(channel: Channel): void;
  httpAuth?: HttpDigestAuthority;
  isWsEnabled?: () => boolean;
  /** Whether an upgrade carrying this browser `Origin` may connect (see HttpDeviceOptions.allowOrigin). */
  allowOrigin?: (origin: string) => boolean;
  /** Largest message accepted (default WS_MAX_FRAME_SIZE, 1 MiB). */
  maxFrameSize?: number;
  /** Ping idle connections this often and drop those that do not answer (default 60000 ms; 0 = never). */
  pingIntervalMs?: number;
}

export interface WsDeviceHandle {
  /** Open inbound WebSocket connections. */
  readonly connections: number;
  /** Close every inbound connection and stop accepting upgrades. */
  close(): Promise<void>;
}

function refuse(socket: Duplex, status: number, reason: string, body = ""): void {
  const headers = [
    `HTTP/1.1 ${status} ${reason}`,
    "Content-Type: text/plain",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Access-Control-Allow-Origin: *",
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  if (socket.writable) socket.end(headers + body);
  else socket.destroy();
}

function isRpcPath(url: string | undefined): boolean {
  const path = (url ?? "/").split("?")[0];
  return path === "/rpc" || path.startsWith("/rpc/");
}

/** Accept WebSocket upgrades on `/rpc` of `server`; returns a handle that closes them all. */
export function attachWsDevice(server: Server, opts: WsDeviceOptions): WsDeviceHandle {
  const maxFrameSize = opts.maxFrameSize ?? WS_MAX_FRAME_SIZE;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: maxFrameSize,
    // as the firmware, no UTF-8 check that closes the link: the frame decoder judges the text
    skipUTF8Validation: true,
    // Echo what was asked (spec §2.3: mongoose echoes the request's value); accept when nothing was.
    handleProtocols: (protocols: Set<string>) => {
      const first = protocols.values().next();
      return first.done ? false : first.value;
    },
  });
  const sockets = new Set<WebSocket>();
  let stopped = false;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", (e) => debug("ws", "upgrade socket error", { error: errorMessage(e) }));
    const peer = formatPeer(req.socket.remoteAddress, req.socket.remotePort);
    if (stopped) {
      socket.destroy();
      return;
    }
    if (!isRpcPath(req.url)) {
      debug("ws", "upgrade refused: not /rpc", { peer, url: req.url?.slice(0, 100) });
      refuse(socket, 404, "Not Found");
      return;
    }
    if (opts.isWsEnabled && !opts.isWsEnabled()) {
      debug("ws", "upgrade refused: WS is disabled", { peer });
      refuse(socket, 503, "Service Unavailable", "WS is disabled\r\n");
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && opts.allowOrigin && !opts.allowOrigin(origin)) {
      debug("ws", "upgrade refused: browser origin not allowed", { peer, origin: origin.slice(0, 100) });
      refuse(socket, 403, "Forbidden", "cross-origin connections are refused: set rpc.acl on the device to allow them\r\n");
      return;
    }
    void userOf(req, opts.httpAuth).then((user) => {
      if (stopped || socket.destroyed) {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const info: ChannelInfo = { type: "WS_in", peer, maxFrameSize };
        if (user !== undefined) info.user = user;
        const tls = req.socket as TLSSocket;
        if (typeof tls.getPeerCertificate === "function") info.tls = tlsPeerInfo(tls);
        accept(ws, info, socket);
      });
    });
  };

  const accept = (ws: WebSocket, info: ChannelInfo, socket: Duplex): void => {
    sockets.add(ws);
    let alive = true;
    ws.on("pong", () => {
      alive = true;
    });
    const every = opts.pingIntervalMs ?? 60_000;
    const pinger =
      every > 0
        ? setInterval(() => {
            if (!alive) {
              debug("ws", "peer stopped answering pings: dropped", { peer: info.peer });
              ws.terminate();
              return;
            }
            alive = false;
            ws.ping();
          }, every)
        : undefined;
    pinger?.unref();
    ws.on("close", () => {
      sockets.delete(ws);
      if (pinger) clearInterval(pinger);
    });
    const channel = new WsChannel(ws, info, [], socket);
    debug("ws", "inbound connection", { peer: info.peer, user: info.user, protocol: ws.protocol });
    try {
      opts.onChannel(channel);
    } catch (e) {
      debug("ws", "onChannel threw", { error: errorMessage(e) });
    }
  };

  server.on("upgrade", onUpgrade);

  return {
    get connections() {
      return sockets.size;
    },
    async close() {
      stopped = true;
      server.off("upgrade", onUpgrade);
      const closing = [...sockets].map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const t = setTimeout(() => {
              ws.terminate();
              resolve();
            }, 1000);
            ws.once("close", () => {
              clearTimeout(t);
              resolve();
            });
            ws.close(1001, "device stopping");
          }),
      );
      await Promise.all(closing);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** The digest user of an upgrade request, when `httpAuth` is set and its Authorization header is valid. */
async function userOf(req: IncomingMessage, auth: HttpDigestAuthority | undefined): Promise<string | undefined> {
  const header = req.headers.authorization;
  if (!auth || !header) return undefined;
  try {
    const user = await auth.verify(header, req.method ?? "GET", req.url ?? "/rpc");
    if (user === undefined) debug("ws", "upgrade Authorization not valid: link stays unauthenticated");
    return user;
  } catch (e) {
    debug("ws", "digest check failed", { error: errorMessage(e) });
    return undefined;
  }
}
