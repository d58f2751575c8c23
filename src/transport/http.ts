/**
 * The HTTP transport, client end (`--port http://IP/rpc`, `https://IP/rpc`; spec §2.2 Mode A and §4.4):
 * every frame is one `POST <url>` with `Content-Type: application/json`, and the response body is the
 * answer frame. A pool of keep-alive HTTP/1.1 connections (http-connection.ts) carries many calls in flight.
 *
 * - `send` resolves once the answer has been delivered to the frame listeners; a non-200 status rejects it
 *   with a TransportError naming the status, so the call fails at once (as mos does).
 * - HTTP Digest: a 401 with `WWW-Authenticate: Digest ...` is answered once with `Authorization`
 *   (HA2 = H("POST:" + path)); a second 401 is an AuthError, as is a 401 without credentials.
 * - https: server verification against `caFile`/`ca` (else the system roots), client certificate for
 *   mutual TLS, `insecure` to skip verification; TLS failures are TlsErrors naming the cause.
 * - The link is opened lazily by the first frame (HTTP has no session); `timeoutMs` bounds opening each
 *   new connection (TCP + TLS handshake).
 *
 * The device end (`listenHttp`) is in http-device.ts.
 */
import type { TLSSocket } from "node:tls";
import { AbortedError, AuthError, ChannelClosedError, TransportError, UsageError } from "../errors.js";
import { debug } from "../log.js";
import type { Channel } from "../rpc/channel.js";
import { httpDigestAuthorization } from "../rpc/digest.js";
import { type Frame, isBlank } from "../rpc/frame.js";
import { BaseChannel } from "./base.js";
import { HttpConnectionPool } from "./http-connection.js";
import type { HttpResponse } from "./http-response.js";
import type * as TlsClientModule from "./tls-client.js";
import { hasClientCert } from "./tls-errors.js";
import type { ConnectOptions } from "./options.js";

/**
 * Largest frame the HTTP channel carries: 1 MiB, for remos devices (whose HTTP end takes 1 MiB bodies).
 * Real Mongoose OS firmware is built with `MG_MAX_HTTP_REQUEST_SIZE: 3072` (spec §2.2), so a request to
 * it must stay around 3 KB: the transfer code picks chunk sizes per device, not from this limit.
 */
export const HTTP_MAX_FRAME_SIZE = 1024 * 1024;

/** Connections the client opens to one device at most; further calls queue for a free one. */
export const HTTP_MAX_SOCKETS = 32;

/**
 * A request whose connection stays silent this long is abandoned (TransportError): it bounds what a device
 * that never answers (e.g. a frame it dropped for a wrong `dst`) can hold. Longer than any RPC timeout.
 */
export const HTTP_IDLE_TIMEOUT_MS = 10 * 60_000;

/**
 * tls-client.ts (and with it node:tls) is imported by `connect` for the first https:// URL only, so a
 * plain http:// call never loads TLS (CLI cold start). Channels are only made by `connect`, after that import.
 */
let tlsClient: typeof TlsClientModule;

class HttpClientChannel extends BaseChannel {
  private readonly pool: HttpConnectionPool;
  /** The request head up to the Content-Length value. */
  private readonly headPrefix: string;
  private readonly path: string;
  private readonly href: string;

  constructor(
    url: URL,
    private readonly options: ConnectOptions,
  ) {
    const isTls = url.protocol === "https:";
    const port = url.port ? Number(url.port) : isTls ? 443 : 80;
    super({ type: "HTTP", peer: `${url.hostname}:${port}`, maxFrameSize: HTTP_MAX_FRAME_SIZE });
    this.path = (url.pathname || "/") + url.search;
    // Never put userinfo in a log or a Basic header: the URL we report is without it.
    this.href = `${url.protocol}//${url.host}${this.path}`;
    this.headPrefix = `POST ${this.path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nContent-Length: `;
    this.pool = new HttpConnectionPool({
      host: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
      port,
      peer: this.info.peer,
      tls: isTls ? tlsClient.clientTlsOptions(options.tls, url.hostname) : undefined,
      sentClientCert: isTls && hasClientCert(options.tls),
      maxSockets: HTTP_MAX_SOCKETS,
      maxBody: this.info.maxFrameSize + 2, // the device appends "\r\n"
      connectTimeoutMs: options.timeoutMs,
      silentTimeoutMs: HTTP_IDLE_TIMEOUT_MS,
      onSecureConnect: (socket: TLSSocket) => {
        this.info.tls = tlsClient.tlsPeerInfo(socket);
      },
    });
  }

  /** The common case (a 200) is handled in one `then`; a 401 goes through the digest retry. */
  protected sendText(text: string | Buffer, frame: Frame): Promise<void> {
    return this.post(text, undefined).then((answer) => (answer.status === 401 ? this.retryWithDigest(text, frame, answer) : this.accept(answer, frame)));
  }

  /** A frame built as bytes (a transfer chunk) is the POST body as it is. */
  protected override sendBytes(bytes: Buffer, frame: Frame): Promise<void> {
    return this.sendText(bytes, frame);
  }

  private async retryWithDigest(text: string | Buffer, frame: Frame, first: HttpResponse): Promise<void> {
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
  private accept(answer: HttpResponse, frame: Frame): void {
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
  private post(text: string | Buffer, authorization: string | undefined): Promise<HttpResponse> {
    if (this.closed) return Promise.reject(new ChannelClosedError(`HTTP channel to ${this.info.peer} is closed`));
    const body = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    // a header line carries Latin-1 and no line breaks: anything else would garble or split the request
    if (authorization !== undefined && /[^\x20-\x7e\x80-\xff\t]/.test(authorization)) {
      return Promise.reject(new UsageError("the credentials hold characters an HTTP header cannot carry (line breaks, control or non-Latin-1 characters)"));
    }
    const head = authorization
      ? `${this.headPrefix}${body.length}\r\nAuthorization: ${authorization}\r\n\r\n`
      : `${this.headPrefix}${body.length}\r\n\r\n`;
    return this.pool.request(head, body);
  }

  protected async closeLink(): Promise<void> {
    this.pool.close(new ChannelClosedError(`HTTP channel to ${this.info.peer} is closed`));
    debug("http", "channel closed", { peer: this.info.peer });
  }
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
  if (url.protocol === "https:") tlsClient = await import("./tls-client.js");
  return new HttpClientChannel(url, options);
}
