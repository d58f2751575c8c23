/**
 * HTTP/1.1 responses on the wire, pure (no I/O): `HttpResponseParser`, an incremental decoder of the
 * answers a device sends to the client's POSTs (RFC 9112), fed arbitrary byte chunks (a response split
 * anywhere). It knows what an RPC client needs and refuses the rest:
 *
 * - status line `HTTP/1.0` or `HTTP/1.1`; interim 1xx answers (100 Continue) are skipped; 101 is refused;
 * - a body delimited by `Content-Length`, by `Transfer-Encoding: chunked` (extensions and trailers
 *   skipped), or, with neither, by the end of the connection; 204 and 304 have none;
 * - `Connection: close` (or HTTP/1.0 without `keep-alive`) marks the connection as not reusable;
 * - the first `WWW-Authenticate` is kept (the digest challenge of a 401).
 *
 * Lines end with CRLF; empty lines before a status line are skipped (as Node's parser does). Limits: 16 KiB
 * of head, 100 header lines, 64 KiB of everything that is not body in one response (interim answers and
 * trailers included), `maxBody` bytes of body (more is a FrameTooLargeError, checked against the declared
 * length before the body arrives). A `Keep-Alive: timeout=N` hint is passed on (`keepAliveMs`). Anything else that is
 * not HTTP is an HttpParseError (a TransportError): the connection that carried it cannot be trusted any
 * more and is closed by its owner. No input makes it throw anything else.
 */
import { FrameTooLargeError, TransportError } from "../errors.js";

export interface HttpResponse {
  status: number;
  statusMessage: string;
  /** The connection may carry the next request. */
  keepAlive: boolean;
  /** The first `WWW-Authenticate` header. */
  challenge: string | undefined;
  /** How long the server keeps the idle connection, from `Keep-Alive: timeout=N` (undefined: not said). */
  keepAliveMs: number | undefined;
  body: Buffer;
}

/** The bytes a peer sent are not an HTTP/1.x response. */
export class HttpParseError extends TransportError {}

const EMPTY = Buffer.alloc(0);
const MAX_HEAD = 16 * 1024;
const MAX_HEADERS = 100;
/** Bytes of one response that are not body (heads of interim answers, chunk lines, trailers). */
const MAX_OVERHEAD = 64 * 1024;
/** A chunk-size line (hex size and extensions) longer than this is refused. */
const MAX_CHUNK_LINE = 1024;
const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?$/;
const DIGITS = /^[0-9]{1,15}$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

interface Head {
  status: number;
  statusMessage: string;
  keepAlive: boolean;
  challenge: string | undefined;
  keepAliveMs: number | undefined;
  length: number | undefined;
  chunked: boolean;
}

export class HttpResponseParser {
  private state = State.Head;
  /** Bytes received and not consumed yet (a partial head, chunk line or trailer). */
  private pending: Buffer = EMPTY;
  private head: Head | undefined;
  /** Body bytes still expected (Length, ChunkData). */
  private left = 0;
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes of the response being read that are not body (see MAX_OVERHEAD). */
  private overhead = 0;
  private readonly onResponse: (r: HttpResponse) => void;
  private readonly maxBody: number;
  private readonly channel: string;

  /** `channel` names the link in errors ("HTTP"). */
  constructor(maxBody: number, onResponse: (r: HttpResponse) => void, channel = "HTTP") {
    this.maxBody = maxBody;
    this.onResponse = onResponse;
    this.channel = channel;
  }

  /** True between responses (nothing of the next one received). */
  get idle(): boolean {
    return this.state === State.Head && this.pending.length === 0;
  }

  /** Feed received bytes; complete responses go to `onResponse`, in order. Throws HttpParseError or FrameTooLargeError. */
  feed(chunk: Buffer): void {
    const b = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = EMPTY;
    let off = 0;
    while (off < b.length) {
      switch (this.state) {
        case State.Head: {
          // empty lines between answers (a stray CRLF after a body) are skipped, as Node's parser does
          const from = off;
          for (;;) {
            if (b[off] === 0x0a) off++;
            else if (b[off] === 0x0d && b[off + 1] === 0x0a) off += 2;
            else break;
          }
          if (off > from) this.count(off - from);
          if (off >= b.length) break;
          if (b[off] === 0x0d && off + 1 === b.length) {
            this.pending = b.subarray(off); // a CR at the end: its LF may follow
            return;
          }
          const end = this.lineEnd(b, off, HEAD_END, MAX_HEAD, "HTTP response head");
          if (end < 0) return;
          const head = parseHead(b.toString("latin1", off, end));
          off = end + 4;
          if (head.status < 200) {
            if (head.status === 101) throw new HttpParseError("unexpected 101 Switching Protocols");
            continue; // an interim answer (100 Continue, 103): the real one follows
          }
          if (this.begin(head) === State.Head) this.complete(); // no body
          break;
        }
        case State.Length: {
          off += this.takeBody(b, off); // a whole body in one chunk is one slice of it, not a copy
          if (this.left === 0) this.complete();
          break;
        }
        case State.ChunkSize: {
          const eol = this.lineEnd(b, off, CRLF, MAX_CHUNK_LINE, "chunk size line");
          if (eol < 0) return;
          const m = CHUNK_SIZE.exec(b.toString("latin1", off, eol));
          if (!m) throw new HttpParseError("malformed chunk size");
          off = eol + 2;
          const n = parseInt(m[1], 16);
          if (n === 0) {
            this.state = State.Trailers;
            break;
          }
          if (this.size + n > this.maxBody) throw new FrameTooLargeError(this.size + n, this.maxBody, this.channel);
          this.left = n;
          this.state = State.ChunkData;
          break;
        }
        case State.ChunkData: {
          off += this.takeBody(b, off);
          if (this.left === 0) this.state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          if (b.length - off < 2) {
            this.pending = b.subarray(off);
            return;
          }
          if (b[off] !== 0x0d || b[off + 1] !== 0x0a) throw new HttpParseError("chunk data not followed by CRLF");
          off += 2;
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const eol = this.lineEnd(b, off, CRLF, MAX_HEAD, "trailer line");
          if (eol < 0) return;
          const empty = eol === off;
          off = eol + 2;
          if (empty) this.complete(); // trailer fields themselves are ignored
          break;
        }
        case State.UntilClose: {
          const n = b.length - off;
          this.size += n;
          if (this.size > this.maxBody) throw new FrameTooLargeError(this.size, this.maxBody, this.channel);
          this.parts.push(b.subarray(off));
          off = b.length;
          break;
        }
      }
    }
  }

  /**
   * The peer closed the connection: a body delimited by the close is complete now. Throws HttpParseError
   * when a response was cut short (the caller may prefer its own "connection closed" error when `idle`).
   */
  end(): void {
    if (this.state === State.UntilClose) {
      this.complete();
      return;
    }
    if (!this.idle) throw new HttpParseError("the connection closed in the middle of a response");
  }

  /** Start the body of a response whose head is parsed; returns the state it starts in (Head: no body). */
  private begin(head: Head): State {
    this.head = head;
    this.parts = [];
    this.size = 0;
    if (head.status === 204 || head.status === 304) this.state = State.Head;
    else if (head.chunked) this.state = State.ChunkSize;
    else if (head.length !== undefined) {
      if (head.length > this.maxBody) throw new FrameTooLargeError(head.length, this.maxBody, this.channel);
      this.left = head.length;
      this.state = head.length === 0 ? State.Head : State.Length;
    } else {
      head.keepAlive = false; // delimited by the close
      this.state = State.UntilClose;
    }
    return this.state;
  }

  /**
   * Where the line (or head) at `off` ends: the index of its `terminator`, counted as framing; -1 when it
   * has not all arrived (the rest is kept for the next feed). Longer than `max` is an HttpParseError.
   */
  private lineEnd(b: Buffer, off: number, terminator: Buffer, max: number, what: string): number {
    const end = b.indexOf(terminator, off);
    if ((end < 0 ? b.length : end) - off > max) throw new HttpParseError(`${what} longer than ${max} bytes`);
    if (end < 0) this.pending = b.subarray(off);
    else this.count(end + terminator.length - off);
    return end;
  }

  /** Take up to `left` body bytes at `off` (a slice, no copy); returns how many. */
  private takeBody(b: Buffer, off: number): number {
    const n = Math.min(this.left, b.length - off);
    this.parts.push(b.subarray(off, off + n));
    this.size += n;
    this.left -= n;
    return n;
  }

  /** Count bytes that are not body; too many in one response and the peer is stalling or flooding. */
  private count(n: number): void {
    this.overhead += n;
    if (this.overhead > MAX_OVERHEAD) throw new HttpParseError(`more than ${MAX_OVERHEAD} bytes of HTTP framing in one response`);
  }

  private complete(): void {
    const head = this.head as Head;
    const parts = this.parts;
    this.head = undefined;
    this.parts = [];
    this.state = State.Head;
    this.overhead = 0;
    const body = parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0] : Buffer.concat(parts, this.size);
    this.size = 0;
    this.onResponse({ status: head.status, statusMessage: head.statusMessage, keepAlive: head.keepAlive, challenge: head.challenge, keepAliveMs: head.keepAliveMs, body });
  }
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const m = STATUS_LINE.exec(lines[0]);
  if (!m) throw new HttpParseError(`not an HTTP/1.x status line: ${JSON.stringify(lines[0].slice(0, 40))}`);
  if (lines.length - 1 > MAX_HEADERS) throw new HttpParseError(`more than ${MAX_HEADERS} header lines`);
  const head: Head = {
    status: Number(m[2]),
    statusMessage: m[3] ?? "",
    keepAlive: false,
    challenge: undefined,
    keepAliveMs: undefined,
    length: undefined,
    chunked: false,
  };
  let close = false;
  let keepAliveAsked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HttpParseError(`malformed header line: ${JSON.stringify(line.slice(0, 40))}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (!DIGITS.test(value)) throw new HttpParseError(`malformed Content-Length: ${JSON.stringify(value.slice(0, 20))}`);
      const n = Number(value);
      if (head.length !== undefined && head.length !== n) throw new HttpParseError("conflicting Content-Length headers");
      head.length = n;
    } else if (name === "transfer-encoding") {
      const codings = value.toLowerCase().split(",").map((s) => s.trim()).filter(Boolean);
      if (codings.length !== 1 || codings[0] !== "chunked") throw new HttpParseError(`unsupported Transfer-Encoding: ${JSON.stringify(value.slice(0, 40))}`);
      head.chunked = true;
    } else if (name === "connection") {
      for (const token of value.toLowerCase().split(",")) {
        const t = token.trim();
        if (t === "close") close = true;
        else if (t === "keep-alive") keepAliveAsked = true;
      }
    } else if (name === "www-authenticate") {
      head.challenge ??= value;
    } else if (name === "keep-alive") {
      const t = /(?:^|[\s,])timeout\s*=\s*([0-9]{1,9})/i.exec(value);
      if (t) head.keepAliveMs = Number(t[1]) * 1000;
    }
  }
  // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when it says keep-alive
  head.keepAlive = !close && (m[1] === "1" || keepAliveAsked);
  // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3); such a message may be an attack: not reused
  if (head.chunked && head.length !== undefined) {
    head.length = undefined;
    head.keepAlive = false;
  }
  return head;
}
