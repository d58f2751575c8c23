/**
 * The WebSocket transport (spec §2.3), client end and the device's outbound link:
 *
 * - `connect(url, options)` for `--port ws://IP/rpc` / `wss://IP/rpc`: subprotocol `clubby.cesanta.com`,
 *   `Origin: https://api.cesanta.com/` as mos sends; one TEXT message per frame; TEXT or BINARY accepted.
 *   The subprotocol header is sent by hand and the server's echo is neither required nor checked (older
 *   mongoose omits it; the `ws` library would refuse both the omission and an unrequested echo).
 * - `connectWsOut(opts)`: the device → cloud link (`WS_out`/`WSS_out`, subprotocol `json-rpc`,
 *   `Origin: https://mongoose-os.com`), kept up by the reconnect decorator (transport/reconnect.ts) with
 *   jittered exponential backoff.
 * - `WsChannel`: the Channel over one open `ws` WebSocket, shared with the device's inbound end
 *   (ws-device.ts).
 *
 * wss verifies the server against the given CA (else the system roots) with the server name taken from
 * the URL (mos forgets it, spec §10); TLS failures are TlsErrors naming the cause.
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Writable } from "node:stream";
import WebSocket from "ws";
import { AbortedError, ChannelClosedError, TransportError, UsageError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel, ChannelInfo, FrameListener } from "../rpc/channel.js";
import { BaseChannel } from "./base.js";
import { coalesceWrites } from "./coalesce.js";
import { type ReconnectingChannel, reconnecting } from "./reconnect.js";
import { clientTlsOptions, hasClientCert, linkError, refusedAfterHandshake, tlsPeerInfo } from "./tls-client.js";
import type { ConnectOptions, TlsFileOptions } from "./options.js";

/**
 * Largest frame over WebSocket: 1 MiB (also the `maxPayload` of both ends; a bigger message closes the
 * connection with 1009). Firmware WS buffers are far smaller: the transfer code picks chunk sizes per device.
 */
export const WS_MAX_FRAME_SIZE = 1024 * 1024;

/** The subprotocol mos offers (`codec.WSProtocol`). */
export const WS_SUBPROTOCOL = "clubby.cesanta.com";
/** The subprotocol the device's outbound channel offers (RPCWS). */
export const WS_OUT_SUBPROTOCOL = "json-rpc";

const CLOSE_WAIT_MS = 2000;

const SEND_OPTIONS = { binary: false };
const SENT: Promise<void> = Promise.resolve();

/** Messages kept for a channel nobody listens to yet (see WsChannel); more are dropped and logged. */
const BACKLOG_LIMIT = 256;

/** The bytes of a message, without copying a Buffer; invalid UTF-8 reads as U+FFFD (the firmware checks none). */
function messageBytes(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/**
 * A Channel over one open WebSocket: one frame per message. Messages that arrive before the first frame
 * listener is attached (a peer may send right after the handshake, even in the same TCP segment as the
 * 101 response) are kept and delivered, in order, in a microtask after the first listener is attached.
 */
export class WsChannel extends BaseChannel {
  private readonly ws: WebSocket;
  /** Called before each send: coalesces the frames of a tick (coalesce.ts); none without the socket. */
  private readonly beforeWrite: ((bytes: number) => void) | undefined;
  private backlog: string[] | undefined;
  private draining = false;

  /**
   * `early`: messages already received on `ws` before this channel was made (see openSocket). `socket`:
   * the connection under `ws`; when given, the first frame of a tick is written at once and the socket is
   * corked at the second until the microtask queue drains, so a burst of frames (the answers to one read)
   * leaves in two writes instead of one each, and a lone frame waits for nothing; a big frame (a transfer
   * chunk) is never held back (coalesce.ts).
   */
  constructor(ws: WebSocket, info: ChannelInfo, early: string[] = [], socket?: Writable) {
    super(info);
    this.ws = ws;
    this.beforeWrite = socket ? coalesceWrites(socket, queueMicrotask) : undefined;
    this.backlog = early;
    ws.on("message", (data: WebSocket.RawData) => {
      if (!this.backlog) this.receiveBytes(messageBytes(data));
      else if (this.backlog.length < BACKLOG_LIMIT) this.backlog.push(messageBytes(data).toString("utf8"));
      else debug(this.area, "message before any listener dropped: backlog full", { peer: this.info.peer });
    });
    ws.on("error", (e: Error & { code?: string }) => {
      if (e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        debug(this.area, "incoming frame too big: dropped, connection closed", { peer: this.info.peer, limit: this.info.maxFrameSize });
      } else {
        debug(this.area, "websocket error", { peer: this.info.peer, error: e.message });
      }
    });
    ws.on("close", (code: number, reason: Buffer) => {
      const normal = code === 1000 || code === 1001;
      this.markClosed(
        normal ? undefined : new TransportError(`WebSocket to ${this.info.peer} closed (code ${code}${reason.length ? `: ${reason.toString("utf8")}` : ""})`),
      );
    });
  }

  /** The first listener gets the backlog in a microtask, so set-up done right after it (onNotification...) sees it too. */
  override onFrame(listener: FrameListener): () => void {
    const off = super.onFrame(listener);
    if (this.backlog && !this.draining) {
      this.draining = true;
      queueMicrotask(() => {
        const backlog = this.backlog ?? [];
        this.backlog = undefined;
        for (const text of backlog) this.receiveText(text);
      });
    }
    return off;
  }

  /**
   * Hand the message to `ws` and resolve at once: a write that fails later closes the socket, and the
   * close fails every pending call (no promise and callback per message).
   */
  protected sendText(text: string | Buffer): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new ChannelClosedError(`WebSocket to ${this.info.peer} is not open`));
    this.beforeWrite?.(text.length);
    try {
      this.ws.send(text, SEND_OPTIONS);
    } catch (e) {
      return Promise.reject(linkError(e instanceof Error ? e : new Error(String(e)), this.info.peer));
    }
    return SENT;
  }

  /** A frame built as bytes goes out as the same TEXT message. */
  protected override sendBytes(bytes: Buffer): Promise<void> {
    return this.sendText(bytes);
  }

  /**
   * Start the closing handshake and return at once (pending calls have already failed); a peer that does
   * not finish the handshake within CLOSE_WAIT_MS has its socket destroyed.
   */
  protected async closeLink(): Promise<void> {
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
    timer.unref();
    ws.once("close", () => clearTimeout(timer));
    try {
      ws.close(1000);
    } catch {
      ws.terminate();
    }
  }
}

interface OpenOptions {
  url: URL;
  subprotocol: string;
  origin: string;
  tls?: TlsFileOptions;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Open a WebSocket and resolve once it is open (rejecting with a typed error otherwise). */
interface OpenSocket {
  ws: WebSocket;
  socket?: Writable;
  tls?: TLSSocket;
  /** Messages received from the 'open' event on; call `stopEarly()` when the WsChannel takes over. */
  early: string[];
  stopEarly(): void;
}

function openSocket(o: OpenOptions): Promise<OpenSocket> {
  const secure = o.url.protocol === "wss:";
  const peer = `${o.url.hostname}:${o.url.port || (secure ? 443 : 80)}`;
  if (o.signal?.aborted) return Promise.reject(new AbortedError("connect aborted"));
  // No userinfo in the URL we hand to `ws` (it would send Basic auth); mos sends Bearer, devices ignore it.
  const target = `${o.url.protocol}//${o.url.host}${o.url.pathname}${o.url.search}`;
  let handshakeDone = false;
  const ws = new WebSocket(target, {
    headers: { "Sec-WebSocket-Protocol": o.subprotocol },
    origin: o.origin,
    perMessageDeflate: false,
    maxPayload: WS_MAX_FRAME_SIZE,
    // as the firmware, no UTF-8 check that closes the link: the frame decoder judges the text
    skipUTF8Validation: true,
    ...(o.timeoutMs && o.timeoutMs > 0 ? { handshakeTimeout: o.timeoutMs } : {}),
    ...(secure ? clientTlsOptions(o.tls, o.url.hostname) : {}),
    finishRequest: (req) => {
      req.on("socket", (s) => s.once("secureConnect", () => (handshakeDone = true)));
      req.end();
    },
  });
  // The server may echo our subprotocol or not (spec §2.3); since `ws` did not offer it itself it would
  // refuse an echo, so take the header off the response before `ws` looks at it (the 'upgrade' event is
  // emitted before that check).
  let tlsSocket: TLSSocket | undefined;
  let socket: Writable | undefined;
  // The peer may send right behind the 101: its first messages are emitted before the promise below
  // resolves, so catch them from the start and hand them to the WsChannel.
  const early: string[] = [];
  const onEarly = (data: WebSocket.RawData): void => {
    if (early.length < BACKLOG_LIMIT) early.push(messageBytes(data).toString("utf8"));
  };
  ws.on("message", onEarly);
  const stopEarly = (): void => {
    ws.off("message", onEarly);
  };
  ws.on("upgrade", (res: IncomingMessage) => {
    delete res.headers["sec-websocket-protocol"];
    socket = res.socket;
    if (secure) tlsSocket = res.socket as TLSSocket;
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener("abort", onAbort);
      ws.off("error", onError);
      ws.off("unexpected-response", onUnexpected);
      if (e) {
        ws.on("error", () => undefined);
        ws.terminate();
        reject(e);
      } else {
        resolve(tlsSocket ? { ws, socket, tls: tlsSocket, early, stopEarly } : { ws, socket, early, stopEarly });
      }
    };
    const onAbort = (): void => finish(new AbortedError("connect aborted"));
    const onError = (e: Error): void => {
      const msg = e.message ?? "";
      if (/Opening handshake has timed out/.test(msg)) finish(new TransportError(`cannot connect to ${peer} within ${o.timeoutMs} ms`, { cause: e }));
      else finish(refusedAfterHandshake(e, peer, handshakeDone && !tlsSocket, hasClientCert(o.tls)) ?? linkError(e, peer));
    };
    const onUnexpected = (_req: unknown, res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        if (size < 512) chunks.push(c);
        size += c.length;
      });
      const report = (): void => {
        const body = Buffer.concat(chunks).toString("utf8").trim().slice(0, 200);
        finish(new TransportError(`WebSocket upgrade to ${target} refused: HTTP ${res.statusCode} ${res.statusMessage ?? ""}${body ? `: ${body}` : ""}`.trim()));
      };
      res.on("end", report);
      res.on("error", report);
      res.on("close", report);
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    ws.on("error", onError);
    ws.on("unexpected-response", onUnexpected);
    ws.once("open", () => finish());
  });
}

/** Open a WebSocket channel to a device (`ws://IP/rpc`, `wss://IP/rpc`). */
export async function connect(url: URL, options: ConnectOptions = {}): Promise<Channel> {
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new UsageError(`not a ws:// or wss:// URL: ${url.protocol}//${url.host}${url.pathname}`);
  }
  const { ws, socket, tls, early, stopEarly } = await openSocket({
    url,
    subprotocol: WS_SUBPROTOCOL,
    origin: "https://api.cesanta.com/",
    tls: options.tls,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  });
  const port = url.port || (url.protocol === "wss:" ? "443" : "80");
  // From this end the link is outbound: WS_out / WSS_out (the device sees the same link as WS_in).
  const type = url.protocol === "wss:" ? "WSS_out" : "WS_out";
  const info: ChannelInfo = { type, peer: `${url.hostname}:${port}`, maxFrameSize: WS_MAX_FRAME_SIZE };
  if (tls) info.tls = tlsPeerInfo(tls);
  const channel = new WsChannel(ws, info, early, socket);
  stopEarly();
  return channel;
}

export interface WsOutOptions {
  /** `ws://host[:port]/path` or `wss://...` of the cloud end (`rpc.ws.server_address`). */
  url: string;
  /** TLS for wss: CA to verify the server (else system roots), client cert/key, insecure, servername. */
  tls?: TlsFileOptions;
  /** Called once with the (reconnecting) channel; serve it with the device's RpcServer. */
  onChannel(channel: Channel): void;
  /** Backoff between attempts, jittered (see transport/reconnect.ts). */
  reconnect: { minMs: number; maxMs: number };
  /** Time allowed for each connection attempt, in ms (default 10000). */
  timeoutMs?: number;
}

export interface WsOutLink {
  /** The reconnecting channel handed to onChannel (state, whenConnected...). */
  readonly channel: ReconnectingChannel;
  close(): Promise<void>;
}

/**
 * The device's outbound WebSocket (spec §2.3 last bullet): connects to `opts.url` with subprotocol
 * `json-rpc` and keeps reconnecting with jittered backoff until closed. Resolves at once (the first
 * attempt runs in the background; a device must run while its cloud is away); a bad URL rejects.
 */
export async function connectWsOut(opts: WsOutOptions): Promise<WsOutLink> {
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    throw new UsageError(`outbound WebSocket address is not a URL: ${opts.url}`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new UsageError(`outbound WebSocket address must be ws:// or wss://, got ${url.protocol}//`);
  }
  const type = url.protocol === "wss:" ? "WSS_out" : "WS_out";
  const peer = `${url.protocol}//${url.host}${url.pathname}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const channel = reconnecting(
    async (signal) => {
      const { ws, socket, tls, early, stopEarly } = await openSocket({
        url,
        subprotocol: WS_OUT_SUBPROTOCOL,
        origin: "https://mongoose-os.com",
        tls: opts.tls,
        timeoutMs,
        signal,
      });
      const info: ChannelInfo = { type, peer, maxFrameSize: WS_MAX_FRAME_SIZE };
      if (tls) info.tls = tlsPeerInfo(tls);
      const channel = new WsChannel(ws, info, early, socket);
      stopEarly();
      return channel;
    },
    {
      info: { type, peer, maxFrameSize: WS_MAX_FRAME_SIZE },
      minMs: opts.reconnect.minMs,
      maxMs: opts.reconnect.maxMs,
      openTimeoutMs: timeoutMs + 1000,
      area: "ws",
    },
  );
  try {
    opts.onChannel(channel);
  } catch (e) {
    debug("ws", "onChannel threw", { error: errorMessage(e) });
  }
  return {
    channel,
    close: () => channel.close(),
  };
}
