/**
 * The HTTP transport, client end (`--port http://IP/rpc`, `https://IP/rpc`; spec §2.2 Mode A and §4.4):
 * every frame is one `POST <url>` with `Content-Type: application/json`, and the response body is the
 * answer frame. A keep-alive agent carries many calls in flight over a pool of sockets.
 *
 * - `send` resolves once the answer has been delivered to the frame listeners; a non-200 status rejects it
 *   with a TransportError naming the status, so the call fails at once (as mos does).
 * - HTTP Digest: a 401 with `WWW-Authenticate: Digest ...` is answered once with `Authorization`
 *   (HA2 = H("POST:" + path)); a second 401 is an AuthError, as is a 401 without credentials.
 * - https: server verification against `caFile`/`ca` (else the system roots), client certificate for
 *   mutual TLS, `insecure` to skip verification; TLS failures are TlsErrors naming the cause.
 * - The link is opened lazily by the first frame (HTTP has no session); `timeoutMs` bounds opening each
 *   new socket (TCP + TLS handshake).
 *
 * The device end (`listenHttp`) is in http-device.ts.
 */
import http from "node:http";
import type * as HttpsModule from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  AbortedError,
  AuthError,
  ChannelClosedError,
  FrameTooLargeError,
  TransportError,
  UsageError,
} from "../errors.js";
import { debug } from "../log.js";
import type { Channel } from "../rpc/channel.js";
import { httpDigestAuthorization } from "../rpc/digest.js";
import { type Frame, isBlank } from "../rpc/frame.js";
import { Slots } from "../rpc/slots.js";
import { BaseChannel } from "./base.js";
import type * as TlsClientModule from "./tls-client.js";
import { hasClientCert, linkError, refusedAfterHandshake } from "./tls-errors.js";
import type { ConnectOptions } from "./options.js";

/**
 * Largest frame the HTTP channel carries: 1 MiB, for remos devices (whose HTTP end takes 1 MiB bodies).
 * Real Mongoose OS firmware is built with `MG_MAX_HTTP_REQUEST_SIZE: 3072` (spec §2.2), so a request to
 * it must stay around 3 KB: the transfer code picks chunk sizes per device, not from this limit.
 */
export const HTTP_MAX_FRAME_SIZE = 1024 * 1024;

/** Sockets the keep-alive agent opens to one device at most; further calls queue for a free socket. */
export const HTTP_MAX_SOCKETS = 32;

/**
 * A request whose socket stays silent this long is abandoned (TransportError): it bounds what a device
 * that never answers (e.g. a frame it dropped for a wrong `dst`) can hold. Longer than any RPC timeout.
 */
export const HTTP_IDLE_TIMEOUT_MS = 10 * 60_000;

/**
 * node:https and tls-client.ts (and with them node:tls) are imported by `connect` for the first https://
 * URL only, so a plain http:// call never loads TLS (CLI cold start). Channels are only made by `connect`,
 * after that import.
 */
let https: typeof HttpsModule;
let tlsClient: typeof TlsClientModule;

interface HttpAnswer {
  status: number;
  statusMessage: string;
  /** `WWW-Authenticate` of a 401 (the only header the channel reads after the body). */
  challenge: string | undefined;
  body: Buffer;
}

class HttpClientChannel extends BaseChannel {
  private readonly agent: http.Agent;
  /** Requests not yet answered, destroyed by close() (Slots: no hash-table churn per request). */
  private readonly inflight = new Slots<http.ClientRequest>();
  /** Requests that opened a new TLS socket whose handshake completed (see refusedAfterHandshake). */
  private readonly freshTls = new WeakSet<http.ClientRequest>();
  private readonly isTls: boolean;
  private readonly hostname: string;
  private readonly port: number;
  private readonly path: string;
  private readonly href: string;

  constructor(
    url: URL,
    private readonly options: ConnectOptions,
  ) {
    const isTls = url.protocol === "https:";
    const port = url.port ? Number(url.port) : isTls ? 443 : 80;
    super({ type: "HTTP", peer: `${url.hostname}:${port}`, maxFrameSize: HTTP_MAX_FRAME_SIZE });
    this.isTls = isTls;
    this.hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    this.port = port;
    this.path = (url.pathname || "/") + url.search;
    // Never put userinfo in a log or a Basic header: the URL we report is without it.
    this.href = `${url.protocol}//${url.host}${this.path}`;
    const agentOptions = { keepAlive: true, maxSockets: HTTP_MAX_SOCKETS, maxFreeSockets: HTTP_MAX_SOCKETS };
    this.agent = isTls
      ? new https.Agent({ ...agentOptions, ...tlsClient.clientTlsOptions(options.tls, url.hostname) })
      : new http.Agent(agentOptions);
  }

  /** The common case (a 200) is handled in one `then`; a 401 goes through the digest retry. */
  protected sendText(text: string | Buffer, frame: Frame): Promise<void> {
    return this.post(text, undefined).then((answer) => (answer.status === 401 ? this.retryWithDigest(text, frame, answer) : this.accept(answer, frame)));
  }

  /** A frame built as bytes (a transfer chunk) is the POST body as it is. */
  protected override sendBytes(bytes: Buffer, frame: Frame): Promise<void> {
    return this.sendText(bytes, frame);
  }

  private async retryWithDigest(text: string | Buffer, frame: Frame, first: HttpAnswer): Promise<void> {
    const challenge = first.challenge;
    if (!challenge || !/^\s*digest\s/i.test(challenge)) {
      throw new AuthError(`${this.href} answered 401 without a Digest challenge`);
    }
    const creds = this.options.credentials;
    if (!creds) throw new AuthError(`${this.href} requires authentication: pass --rpc-creds user:pass`);
    const authorization = httpDigestAuthorization(challenge, creds, "POST", this.path);
    if (!authorization) throw new AuthError(`${this.href} sent a Digest challenge remos cannot answer: ${challenge}`);
    const answer = await this.post(text, authorization);
    if (answer.status === 401) throw new AuthError("authentication failed (check --rpc-creds)");
    this.accept(answer, frame);
  }

  /** A 200 answer: its body is the answer frame (or empty for a notification). */
  private accept(answer: HttpAnswer, frame: Frame): void {
    if (answer.status !== 200) {
      const detail = answer.body.toString("utf8", 0, 800).trim().slice(0, 200);
      throw new TransportError(
        `HTTP ${answer.status} ${answer.statusMessage} from POST ${this.href}${detail ? `: ${detail}` : ""}`,
      );
    }
    if (isBlank(answer.body)) {
      // A notification or a response frame gets an empty 200; a request with an id must get an answer.
      if (frame.id !== undefined && typeof frame.method === "string") {
        throw new TransportError(`empty answer to ${frame.method} from POST ${this.href}`);
      }
      return;
    }
    // A frame as devices send it starts with "{"; anything else is trimmed first, as a string.
    if (answer.body[0] === 0x7b) this.receiveBytes(answer.body);
    else this.receiveText(answer.body.toString("utf8").trim());
  }

  /** One POST; resolves with the whole answer (body capped at maxFrameSize). */
  private post(text: string | Buffer, authorization: string | undefined): Promise<HttpAnswer> {
    if (this.closed) return Promise.reject(new ChannelClosedError(`HTTP channel to ${this.info.peer} is closed`));
    const body = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    const headers: http.OutgoingHttpHeaders = {
      "Content-Type": "application/json",
      "Content-Length": body.length,
    };
    if (authorization) headers.Authorization = authorization;
    const limit = this.info.maxFrameSize + 2; // the device appends "\r\n"
    return new Promise<HttpAnswer>((resolve, reject) => {
      const request = this.isTls ? https.request : http.request;
      const req = request({
        host: this.hostname,
        port: this.port,
        path: this.path,
        method: "POST",
        headers,
        agent: this.agent,
      });
      const slot = this.inflight.add(req);
      let settled = false;
      let answered = false;
      const fail = (e: unknown): void => {
        if (settled) return;
        settled = true;
        this.inflight.remove(slot);
        if (this.closed) {
          reject(new ChannelClosedError(`HTTP channel to ${this.info.peer} is closed`));
          return;
        }
        const fresh = this.freshTls.has(req);
        reject(refusedAfterHandshake(e, this.info.peer, fresh && !answered, hasClientCert(this.options.tls)) ?? linkError(e, this.info.peer));
      };
      req.setTimeout(HTTP_IDLE_TIMEOUT_MS, () => {
        req.destroy(new TransportError(`no answer from ${this.href} within ${HTTP_IDLE_TIMEOUT_MS} ms`));
      });
      req.on("socket", (socket) => this.watchSocket(req, socket));
      req.on("error", fail);
      req.on("response", (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        const declared = Number(rawHeader(res.rawHeaders, "content-length"));
        if (Number.isFinite(declared) && declared > limit) {
          res.destroy();
          fail(new FrameTooLargeError(declared, this.info.maxFrameSize, "HTTP"));
          return;
        }
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            res.destroy();
            req.destroy();
            fail(new FrameTooLargeError(size, this.info.maxFrameSize, "HTTP"));
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", fail);
        res.on("end", () => {
          if (settled) return;
          settled = true;
          this.inflight.remove(slot);
          const status = res.statusCode ?? 0;
          resolve({
            status,
            statusMessage: res.statusMessage ?? "",
            challenge: status === 401 ? rawHeader(res.rawHeaders, "www-authenticate") : undefined,
            body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
          });
        });
      });
      req.end(body);
    });
  }

  /** Bound the opening of a new socket by `timeoutMs`, and record the server's TLS details. */
  private watchSocket(req: http.ClientRequest, socket: Socket): void {
    if (!socket.connecting) return; // a kept-alive socket
    const ms = this.options.timeoutMs;
    const ready = this.isTls ? "secureConnect" : "connect";
    let timer: NodeJS.Timeout | undefined;
    if (ms && ms > 0) {
      timer = setTimeout(() => {
        req.destroy(new TransportError(`cannot connect to ${this.info.peer} within ${ms} ms`));
      }, ms);
    }
    const done = (): void => {
      if (timer) clearTimeout(timer);
      socket.off(ready, onReady);
      socket.off("close", done);
    };
    const onReady = (): void => {
      done();
      if (this.isTls) {
        this.info.tls = tlsClient.tlsPeerInfo(socket as TLSSocket);
        this.freshTls.add(req);
      }
    };
    socket.on(ready, onReady);
    socket.on("close", done);
  }

  protected async closeLink(): Promise<void> {
    for (const req of this.inflight.values()) req.destroy(new ChannelClosedError(`HTTP channel to ${this.info.peer} is closed`));
    this.inflight.clear();
    this.agent.destroy();
    debug("http", "channel closed", { peer: this.info.peer });
  }
}

/**
 * A header from `rawHeaders` (name/value pairs), without building `res.headers` (an object per response).
 * The first one wins, as the Content-Length and WWW-Authenticate checks need.
 */
function rawHeader(raw: string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === lowerName.length && raw[i].toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}

/**
 * Open an HTTP(S) channel to a device's `/rpc` URL. No socket is opened until the first frame; reading
 * the TLS files (IoError) and checking the URL (UsageError) happen here.
 */
export async function connect(url: URL, options: ConnectOptions = {}): Promise<Channel> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`not an http:// or https:// URL: ${url.protocol}//${url.host}${url.pathname}`);
  }
  if (options.signal?.aborted) throw new AbortedError("connect aborted");
  if (url.protocol === "https:") [https, tlsClient] = await Promise.all([import("node:https"), import("./tls-client.js")]);
  return new HttpClientChannel(url, options);
}
