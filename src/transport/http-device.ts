/**
 * The HTTP transport, device end (spec §2.2, §4.4): the device's `/rpc` endpoint over HTTP or HTTPS, plus
 * the WebSocket upgrades on the same endpoint (ws-device.ts).
 *
 * - Mode A, `/rpc` and `/rpc/`: the body is a whole frame. Each request becomes a one-shot Channel (type
 *   `HTTP`) handed to `onChannel`; the first frame sent on it is the response (200, JSON, CORS headers,
 *   frame + "\r\n"). A notification (no id) or a frame without method gets an empty 200 at once.
 *   A body that is not a frame is dropped, logged, and answered 400 (`{"code":400,"message":...}`);
 *   an empty body on a device with `httpAuth` and no valid `Authorization` gets the 401 challenge
 *   instead (curl --digest probes with an empty POST first).
 * - Mode B (REST), `/rpc/<Method>`: the body is the args JSON; without a body the query string becomes
 *   the args with raw values (`?pin=2&value=1` → `{"pin":2,"value":1}`). The answer is the bare result
 *   (200) or the error object with status 403, 404 or 500. Args that are not JSON → 400.
 * - `OPTIONS` on either → 200 with the CORS headers, empty (browser preflight).
 * - A 401 reply when `httpAuth` is set → raw `HTTP/1.1 401` with `WWW-Authenticate: Digest ...` (§4.4).
 *   A valid `Authorization` header puts its user on the channel (`info.user`).
 * - Limits: bodies above `maxBodySize` (default 1 MiB) → 413 without reading them (also before a
 *   `100-continue`); headers must arrive within 10 s and the whole request within 30 s; a handler that
 *   has not answered in `responseTimeoutMs` (default 60 s) → 504; at most `maxConnections` sockets.
 * - `isHttpEnabled() === false` → 404 for plain requests (the endpoint is not registered, as firmware).
 */
import { randomInt } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { TransportError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel, ChannelInfo } from "../rpc/channel.js";
import type { HttpDigestAuthority } from "../rpc/digest.js";
import { type DecodedFrame, type Frame, decodeFrameBytes, encodeFrame, isBlank } from "../rpc/frame.js";
import { HttpRequestChannel, errorBody, queryArgs, readBody, reply, withCrlf } from "./http-exchange.js";
import { formatPeer, tlsPeerInfo } from "./tls-client.js";
import { attachWsDevice } from "./ws-device.js";

/** Default request body limit (and maxFrameSize of the device's HTTP and WS channels): 1 MiB. */
export const HTTP_DEVICE_MAX_BODY = 1024 * 1024;

export interface HttpDeviceOptions {
  host: string;
  /** 0 picks a free port (see HttpDeviceServer.port). */
  port: number;
  /** Serve HTTPS. `requestCert` asks for a client certificate and refuses clients without a valid one. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
  maxBodySize?: number;
  onChannel(channel: Channel): void;
  httpAuth?: HttpDigestAuthority;
  isWsEnabled?: () => boolean;
  isHttpEnabled?: () => boolean;
  /**
   * Whether a request carrying this browser `Origin` header may reach RPC (HTTP and WS). Absent: all
   * may, as the firmware. A refused one gets 403 and never reaches a handler.
   */
  allowOrigin?: (origin: string) => boolean;
  /** A request whose handler has not answered within this many ms gets 504 (default 60000; 0 = never). */
  responseTimeoutMs?: number;
  /** Most sockets open at once (default 256). */
  maxConnections?: number;
  /** The whole request (headers and body) must arrive within this many ms (default 30000). */
  requestTimeoutMs?: number;
  /** The request headers must arrive within this many ms (default 10000). */
  headersTimeoutMs?: number;
}

export interface HttpDeviceServer {
  host: string;
  /** The bound port (the real one when 0 was asked). */
  port: number;
  close(): Promise<void>;
}


/** Serve `/rpc` (HTTP Mode A and B, and WebSocket upgrades) on host:port. */
export async function listenHttp(opts: HttpDeviceOptions): Promise<HttpDeviceServer> {
  const maxBody = opts.maxBodySize ?? HTTP_DEVICE_MAX_BODY;
  const responseTimeoutMs = opts.responseTimeoutMs ?? 60_000;
  const serverOptions: http.ServerOptions = {
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    headersTimeout: Math.min(opts.headersTimeoutMs ?? 10_000, opts.requestTimeoutMs ?? 30_000),
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: 1_000,
    maxHeaderSize: 16 * 1024,
  };
  const server: http.Server = opts.tls
    ? https.createServer({
        ...serverOptions,
        cert: opts.tls.cert,
        key: opts.tls.key,
        ...(opts.tls.ca !== undefined ? { ca: opts.tls.ca } : {}),
        requestCert: opts.tls.requestCert === true,
        rejectUnauthorized: opts.tls.requestCert === true,
        handshakeTimeout: 10_000,
      })
    : http.createServer(serverOptions);
  server.maxConnections = opts.maxConnections ?? 256;
  server.maxHeadersCount = 100;

  const peerOf = (req: http.IncomingMessage): string => formatPeer(req.socket.remoteAddress, req.socket.remotePort);

  const channelInfo = (req: http.IncomingMessage, peer: string, user: string | undefined): ChannelInfo => {
    const info: ChannelInfo = { type: "HTTP", peer, maxFrameSize: maxBody };
    if (user !== undefined) info.user = user;
    const tls = req.socket as TLSSocket;
    if (opts.tls && typeof tls.getPeerCertificate === "function") info.tls = tlsPeerInfo(tls);
    return info;
  };

  const userOf = async (req: http.IncomingMessage): Promise<string | undefined> => {
    const header = req.headers.authorization;
    if (!opts.httpAuth || !header) return undefined;
    try {
      const user = await opts.httpAuth.verify(header, req.method ?? "POST", req.url ?? "/rpc");
      if (user === undefined) debug("http", "Authorization not valid: request stays unauthenticated", { peer: peerOf(req) });
      return user;
    } catch (e) {
      debug("http", "digest check failed", { error: errorMessage(e) });
      return undefined;
    }
  };

  const send401 = (req: http.IncomingMessage, res: http.ServerResponse, auth: HttpDigestAuthority): void => {
    reply(req, res, 401, "", { "WWW-Authenticate": auth.challenge(), Connection: "close" });
  };

  /** Run one frame through a one-shot channel; `answer` turns the reply frame into the HTTP response. */
  const runFrame = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    info: ChannelInfo,
    request: string | DecodedFrame,
    answer: (text: string | Buffer, frame: Frame) => boolean,
    answerNow: boolean,
  ): void => {
    let timer: NodeJS.Timeout | undefined;
    const channel = new HttpRequestChannel(
      info,
      (t, f) => {
        if (f.error && f.error.code === 401 && opts.httpAuth) {
          send401(req, res, opts.httpAuth);
          return true;
        }
        return answer(t, f);
      },
      () => reply(req, res, 200, ""),
    );
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
    };
    channel.onClose(cleanup);
    res.on("close", () => {
      cleanup();
      if (!channel.closed) {
        debug("http", "client left before the answer", { peer: info.peer });
        channel.finish(new TransportError(`HTTP client ${info.peer} went away`));
      }
    });
    try {
      opts.onChannel(channel);
    } catch (e) {
      debug("http", "onChannel threw", { error: errorMessage(e) });
    }
    const deliver = (): void => {
      if (typeof request === "string") channel.deliver(request);
      else channel.deliverDecoded(request);
    };
    if (answerNow) {
      reply(req, res, 200, "");
      deliver();
      channel.finish();
      return;
    }
    if (responseTimeoutMs > 0) {
      timer = setTimeout(() => {
        if (channel.closed) return;
        debug("http", "no answer in time: 504", { peer: info.peer, ms: responseTimeoutMs });
        reply(req, res, 504, errorBody(504, `no answer within ${responseTimeoutMs} ms`));
        channel.finish(new TransportError("no answer in time"));
      }, responseTimeoutMs);
    }
    deliver();
  };

  const modeA = (req: http.IncomingMessage, res: http.ServerResponse, peer: string, body: Buffer, user: string | undefined): void => {
    if (isBlank(body) && opts.httpAuth && user === undefined) {
      // An empty probe (curl --digest sends one before the real body) gets the challenge, not a 400.
      send401(req, res, opts.httpAuth);
      return;
    }
    let decoded: DecodedFrame;
    try {
      decoded = decodeFrameBytes(body);
    } catch (e) {
      debug("http", "malformed frame dropped", { peer, reason: errorMessage(e), sample: body.toString("utf8", 0, 80) });
      reply(req, res, 400, errorBody(400, `malformed frame: ${errorMessage(e)}`));
      return;
    }
    const frame = decoded.frame;
    const oneWay = frame.id === undefined || typeof frame.method !== "string";
    runFrame(req, res, channelInfo(req, peer, user), decoded, (text) => {
      reply(req, res, 200, withCrlf(text));
      return true;
    }, oneWay);
  };

  const modeB = (req: http.IncomingMessage, res: http.ServerResponse, peer: string, method: string, url: URL, bytes: Buffer, user: string | undefined): void => {
    const body = bytes.toString("utf8");
    let params: unknown;
    if (body.trim() !== "") {
      try {
        params = JSON.parse(body) as unknown;
      } catch (e) {
        debug("http", "malformed REST args dropped", { peer, method, reason: errorMessage(e), sample: body.slice(0, 80) });
        reply(req, res, 400, errorBody(400, "args are not valid JSON"));
        return;
      }
    } else if (url.search.length > 1) {
      params = queryArgs(url.search);
      if (params === undefined) {
        debug("http", "malformed REST query dropped", { peer, method, sample: url.search.slice(0, 80) });
        reply(req, res, 400, errorBody(400, 'query args are not valid JSON values (quote strings: ?name=%22x%22)'));
        return;
      }
    }
    const frame: Frame = { id: randomInt(1, 2 ** 31), method };
    if (params !== undefined) frame.params = params;
    runFrame(req, res, channelInfo(req, peer, user), encodeFrame(frame), (_text, f) => {
      if (typeof f.method === "string") return false; // a notification pushed on the channel: not the answer
      if (f.error && f.error.code !== 0) {
        const code = f.error.code;
        const status = code === 403 ? 403 : code === 404 ? 404 : 500;
        reply(req, res, status, JSON.stringify({ code, message: f.error.message ?? "" }) + "\r\n");
      } else {
        reply(req, res, 200, JSON.stringify(f.result === undefined ? null : f.result) + "\r\n");
      }
      return true;
    }, false);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const target = req.url ?? "/";
    let url: URL | undefined;
    let path: string;
    if (target === "/rpc" || target === "/rpc/") path = target; // the common case: no URL object
    else {
      try {
        url = new URL(target, "http://device");
      } catch {
        reply(req, res, 400, errorBody(400, "bad request target"));
        return;
      }
      path = url.pathname;
    }
    const isRpc = path === "/rpc" || path.startsWith("/rpc/");
    if (!isRpc || (opts.isHttpEnabled && !opts.isHttpEnabled())) {
      req.resume();
      reply(req, res, 404, errorBody(404, "Not Found"));
      return;
    }
    if (req.method === "OPTIONS") {
      req.resume();
      reply(req, res, 200, "");
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && opts.allowOrigin && !opts.allowOrigin(origin)) {
      req.resume();
      debug("http", "request refused: browser origin not allowed", { peer: peerOf(req), origin: origin.slice(0, 100) });
      reply(req, res, 403, errorBody(403, "cross-origin requests are refused: set rpc.acl on the device to allow them"));
      return;
    }
    const peer = peerOf(req);
    const body = await readBody(req, res, maxBody, peer);
    if (body === undefined) return;
    const user = opts.httpAuth && req.headers.authorization ? await userOf(req) : undefined;
    if (res.destroyed) return;
    if (path === "/rpc" || path === "/rpc/" || url === undefined) {
      modeA(req, res, peer, body, user);
      return;
    }
    let method: string;
    try {
      method = decodeURIComponent(path.slice("/rpc/".length));
    } catch {
      reply(req, res, 400, errorBody(400, "bad method name"));
      return;
    }
    modeB(req, res, peer, method, url, body, user);
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res).catch((e: unknown) => {
      debug("http", "request failed", { error: errorMessage(e) });
      reply(req, res, 500, errorBody(500, "internal error"));
    });
  };
  server.on("request", onRequest);
  // `Expect: 100-continue`: refuse an oversized body before the client sends it.
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBody) {
      debug("http", "request body too big: refused before 100-continue", { peer: peerOf(req), size: declared, limit: maxBody });
      reply(req, res, 413, errorBody(413, `request body exceeds ${maxBody} bytes`), { Connection: "close" });
      return;
    }
    res.writeContinue();
    onRequest(req, res);
  });
  server.on("clientError", (err: Error & { code?: string }, socket) => {
    debug("http", "bad HTTP input refused", { code: err.code, error: err.message });
    if (socket.writable && !socket.destroyed) {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });
  server.on("tlsClientError", (err: Error & { code?: string }) => {
    debug("http", "TLS client refused", { code: err.code, error: err.message });
  });

  const ws = attachWsDevice(server, {
    onChannel: (ch) => opts.onChannel(ch),
    httpAuth: opts.httpAuth,
    isWsEnabled: opts.isWsEnabled,
    allowOrigin: opts.allowOrigin,
    maxFrameSize: maxBody,
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(new TransportError(`cannot listen on ${opts.host}:${opts.port}: ${errorMessage(e)}`, { cause: e }));
    server.once("error", onError);
    server.listen(opts.port, opts.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (e) => debug("http", "server error", { error: errorMessage(e) }));
  const address = server.address();
  const port = address && typeof address === "object" ? address.port : opts.port;
  debug("http", "listening", { host: opts.host, port, tls: !!opts.tls });

  let closing: Promise<void> | undefined;
  return {
    host: opts.host,
    port,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await ws.close();
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
