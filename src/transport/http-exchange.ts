/**
 * One HTTP exchange on the device's `/rpc` endpoint (used by http-device.ts): the response helpers with
 * the firmware's headers (JSON, CORS, `Connection` as asked), the bounded body reader (413 past the
 * limit), the Mode B query-string args, and the one-shot Channel whose first sent frame is the response.
 */
import type http from "node:http";
import { debug } from "../log.js";
import type { ChannelInfo } from "../rpc/channel.js";
import type { DecodedFrame, Frame } from "../rpc/frame.js";
import { BaseChannel } from "./base.js";

export const CORS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "*",
};

/** Connection header as firmware does: keep-alive only when the client asked for it. */
export function connectionHeader(req: http.IncomingMessage): string {
  const c = req.headers.connection;
  if (c === "keep-alive") return c;
  return /keep-alive/i.test(c ?? "") ? "keep-alive" : "close";
}

/** Answer with `body` (text, or bytes sent as they are). */
export function reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string | Buffer, extra?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "Access-Control-Allow-Origin": CORS["Access-Control-Allow-Origin"],
    "Access-Control-Allow-Headers": CORS["Access-Control-Allow-Headers"],
    "Content-Length": String(typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length),
    Connection: connectionHeader(req),
  };
  if (extra) Object.assign(headers, extra);
  res.writeHead(status, headers);
  if (typeof body === "string") res.end(body, "utf8");
  else res.end(body);
}

const CRLF = Buffer.from("\r\n");

/** A frame's text or bytes followed by the "\r\n" the firmware ends its answers with. */
export function withCrlf(frame: string | Buffer): string | Buffer {
  return typeof frame === "string" ? frame + "\r\n" : Buffer.concat([frame, CRLF]);
}

export function errorBody(code: number, message: string): string {
  return JSON.stringify({ code, message }) + "\r\n";
}

/** One HTTP request as a Channel: the first frame sent on it is the response, then it is closed. */
export class HttpRequestChannel extends BaseChannel {
  private answered = false;
  private readonly respond: (text: string | Buffer, frame: Frame) => boolean;
  private readonly onGiveUp: () => void;

  /** `respond` returns false when it does not take this frame as the answer (Mode B skips requests). */
  constructor(info: ChannelInfo, respond: (text: string | Buffer, frame: Frame) => boolean, onGiveUp: () => void) {
    super(info);
    this.respond = respond;
    this.onGiveUp = onGiveUp;
  }

  deliver(text: string): void {
    this.receiveText(text);
  }

  /** Deliver a request the HTTP end has already decoded (see BaseChannel.receiveDecoded). */
  deliverDecoded(decoded: DecodedFrame): void {
    this.receiveDecoded(decoded);
  }

  /** The request has been answered another way (or its client left): no frame can go out any more. */
  finish(reason?: Error): void {
    this.answered = true;
    this.markClosed(reason);
  }

  /** A frame built as bytes (a transfer chunk) is answered as it is. */
  protected override sendBytes(bytes: Buffer, frame: Frame): Promise<void> {
    return this.sendText(bytes, frame);
  }

  protected async sendText(text: string | Buffer, frame: Frame): Promise<void> {
    if (this.answered) {
      debug("http", "frame after the HTTP response dropped", { peer: this.info.peer, method: frame.method });
      return;
    }
    if (!this.respond(text, frame)) {
      debug("http", "frame that is not the answer dropped", { peer: this.info.peer, method: frame.method });
      return;
    }
    this.finish();
  }

  protected async closeLink(): Promise<void> {
    if (!this.answered) {
      this.answered = true;
      this.onGiveUp();
    }
  }
}

/** Read the body up to `limit` bytes; undefined when it was too big (413 already sent) or the client left. */
export function readBody(req: http.IncomingMessage, res: http.ServerResponse, limit: number, peer: string): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const tooBig = (): void => {
      done = true;
      debug("http", "request body too big: refused", { peer, size, limit });
      reply(req, res, 413, errorBody(413, `request body exceeds ${limit} bytes`), { Connection: "close" });
      req.pause();
      res.once("finish", () => req.socket.destroySoon());
      resolve(undefined);
    };
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      size = declared;
      tooBig();
      return;
    }
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) tooBig();
      else chunks.push(c);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on("error", () => {
      if (!done) {
        done = true;
        resolve(undefined);
      }
    });
    req.on("close", () => {
      if (!done) {
        done = true;
        resolve(undefined);
      }
    });
  });
}

/** Mode B args from a query string with raw (unquoted) values; undefined if they are not JSON. */
export function queryArgs(search: string): unknown {
  const parts: string[] = [];
  for (const [k, v] of new URLSearchParams(search)) parts.push(`${JSON.stringify(k)}:${v}`);
  try {
    return JSON.parse(`{${parts.join(",")}}`) as unknown;
  } catch {
    return undefined;
  }
}
