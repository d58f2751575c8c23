/**
 * The byte-level framing of the UART RPC channel (spec §2.1), pure: no I/O, no timers.
 *
 * - `ClientFrameParser`: how mos reads a device (`MOS:common/mgrpc/codec/stream.go frameFromRxBuf`): a
 *   delimiter (`"""` or `\n`) starts a frame only when followed by `{` or 0x04; the frame ends at the next
 *   delimiter; bytes outside frames are the device console. XON/XOFF are removed and reported.
 * - `DeviceFrameReceiver` (serial-device-framing.ts): how the firmware reads the host.
 * - Encoders for both directions, the handshake bytes and CRC-32 (IEEE, as zlib / Go crc32).
 *
 * Both parsers are incremental state machines over the chunks as they arrive: no per-byte allocation
 * and no re-scan or concatenation of the whole buffer per chunk.
 */

export const EOF_CHAR = 0x04;
export const XON = 0x11;
export const XOFF = 0x13;
export const NL = 0x0a;
const QUOTE = 0x22;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;

/** What mos writes until the device answers: `"""` 0x04 `"""` `\n` `\n`. */
export const HANDSHAKE = Buffer.from('"""\x04"""\n\n', "latin1");
/** What the client writes once the device answered the handshake. */
export const HANDSHAKE_ACK = Buffer.from('"""', "latin1");
/** The firmware's answer to the single-byte frame 0x04. */
export const EOF_REPLY = Buffer.from('"""\x04"""', "latin1");

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, zlib) of `buf[start, end)`. */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

const HEX_DIGITS = Buffer.from("0123456789abcdef", "latin1");

/** Write `"""` at `o`; returns the offset after it. */
function putDelimiter(out: Buffer, o: number): number {
  out[o] = QUOTE;
  out[o + 1] = QUOTE;
  out[o + 2] = QUOTE;
  return o + 3;
}

/**
 * One frame on the wire. `json` must already be pure ASCII (`toAscii`). The client always sends
 * `\n"""<json><crc>"""\n`, as mos does; the device end passes its sticky modes. Built byte by byte into one
 * Buffer: the CRC's hex digits come from a table (Number#toString(16) of a uint32 above 2^31 goes through
 * V8's floating-point radix conversion, the largest single cost of a frame).
 */
export function encodeSerialFrame(json: string, mode: { delim1: boolean; crc: boolean }): Buffer {
  const body = json.length;
  const size = 2 + (mode.delim1 ? 6 : 0) + body + (mode.crc ? 8 : 0);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  out[o++] = NL;
  if (mode.delim1) o = putDelimiter(out, o);
  const jsonStart = o;
  if (body < 256) for (let i = 0; i < body; i++) out[o++] = json.charCodeAt(i);
  else o += out.write(json, o, "latin1");
  if (mode.crc) {
    const crc = crc32(out, jsonStart, jsonStart + body);
    for (let shift = 28; shift >= 0; shift -= 4) out[o++] = HEX_DIGITS[(crc >>> shift) & 15];
  }
  if (mode.delim1) o = putDelimiter(out, o);
  out[o++] = NL;
  return out;
}

/** What the client sends for one frame: `\n"""<json><crc32 %08x>"""\n`. */
export function encodeClientFrame(json: string): Buffer {
  return encodeSerialFrame(json, { delim1: true, crc: true });
}

export interface ClientParserEvents {
  /** A frame's JSON text (CRC, when present, verified and removed). */
  frame(json: string): void;
  /** The single-byte frame 0x04: the device's answer to the handshake. */
  eof(): void;
  /** A frame was dropped: CRC mismatch, bad metadata, too big. */
  drop(reason: string, sample: string): void;
  /** Bytes outside frames (the device console). */
  console?(data: Buffer): void;
  /** XOFF (true) / XON (false) seen; both are removed from the stream. */
  flow?(paused: boolean): void;
}

const OUTSIDE = 0;
const IN_FRAME = 1;
const SKIP = 2;

/**
 * The host-side (mos) receive parser. A frame may arrive split over any number of chunks.
 *
 * Console output: bytes outside frames go to `console`. The frame's own delimiters are not console:
 * the `\n` before a `"""{` start and the `\n` after a closing `"""` are swallowed, and so are the empty
 * `\n` frames the firmware sends before a reply when the console is at the start of a line. A `\n` or
 * `"` at the very end of a chunk is held until the next byte shows whether it starts a frame.
 */
export class ClientFrameParser {
  private readonly ev: ClientParserEvents;
  private readonly frameBuf: Buffer;
  private mode = OUTSIDE;
  private flen = 0;
  private fquotes = 0;
  /** Pending possible delimiter outside frames: `pendNl` newlines followed by `pendQ` quotes. */
  private pendNl = 0;
  private pendQ = 0;
  /** Pending newlines that are framing, never console: a closing `"""`'s trailing `\n`, the handshake's. */
  private pendSilent = 0;
  /** How many newlines after the frame that just ended are framing (1 after `"""`, all after 0x04). */
  private silentAfter = 0;
  private consoleMidLine = false;
  private consoleParts: Buffer[] = [];

  /** `maxFrameSize`: the largest frame (JSON plus metadata) accepted; bigger ones are dropped. */
  constructor(events: ClientParserEvents, maxFrameSize: number) {
    this.ev = events;
    this.frameBuf = Buffer.allocUnsafe(maxFrameSize + 16);
  }

  push(chunk: Uint8Array): void {
    const wantConsole = this.ev.console !== undefined;
    let conStart = -1;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const b = chunk[i];
      if (b === XON || b === XOFF) {
        if (conStart >= 0) {
          this.consoleRange(chunk, conStart, i, wantConsole);
          conStart = -1;
        }
        this.ev.flow?.(b === XOFF);
        continue;
      }
      if (this.mode === OUTSIDE) {
        if (b === NL) {
          if (conStart >= 0) {
            this.consoleRange(chunk, conStart, i, wantConsole);
            conStart = -1;
          }
          if (this.pendQ > 0) this.flushPending(wantConsole);
          if (this.pendQ === 0 && this.pendNl === this.pendSilent && this.silentAfter > 0) {
            this.pendSilent++;
            this.silentAfter--;
          } else {
            this.silentAfter = 0;
          }
          this.pendNl++;
          continue;
        }
        this.silentAfter = 0;
        if (b === QUOTE) {
          if (conStart >= 0) {
            this.consoleRange(chunk, conStart, i, wantConsole);
            conStart = -1;
          }
          if (this.pendQ === 3) this.flushPending(wantConsole);
          this.pendQ++;
          continue;
        }
        if ((b === LBRACE || b === EOF_CHAR) && (this.pendQ === 3 || (this.pendQ === 0 && this.pendNl > 0))) {
          if (conStart >= 0) {
            this.consoleRange(chunk, conStart, i, wantConsole);
            conStart = -1;
          }
          this.startFrame(wantConsole);
          this.frameBuf[this.flen++] = b;
          continue;
        }
        if (this.pendNl > 0 || this.pendQ > 0) this.flushPending(wantConsole);
        if (conStart < 0) conStart = i;
        continue;
      }
      // IN_FRAME or SKIP: the frame ends at the next `\n` or `"""`.
      if (b === NL) {
        this.endFrame(false);
        continue;
      }
      if (b === QUOTE) {
        if (++this.fquotes === 3) {
          this.flen -= 2;
          this.endFrame(true);
          continue;
        }
      } else {
        this.fquotes = 0;
      }
      if (this.mode === IN_FRAME) {
        if (this.flen === this.frameBuf.length) {
          this.ev.drop("incoming frame too big", this.frameBuf.toString("latin1", 0, 80));
          this.mode = SKIP;
        } else {
          this.frameBuf[this.flen++] = b;
        }
      }
    }
    if (conStart >= 0) this.consoleRange(chunk, conStart, n, wantConsole);
    this.emitConsole();
  }

  /** Hand the console bytes collected so far to the sink (before a frame, so the order is kept). */
  private emitConsole(): void {
    if (this.consoleParts.length === 0) return;
    const parts = this.consoleParts;
    this.consoleParts = [];
    this.ev.console?.(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  private consoleRange(chunk: Uint8Array, start: number, end: number, wantConsole: boolean): void {
    if (end <= start) return;
    this.consoleMidLine = chunk[end - 1] !== NL;
    if (wantConsole) this.consoleParts.push(Buffer.from(chunk.subarray(start, end)));
  }

  /** The pending delimiter bytes turned out not to start a frame: they are console output. */
  private flushPending(wantConsole: boolean): void {
    const nl = this.pendNl - this.pendSilent;
    const q = this.pendQ;
    this.pendNl = 0;
    this.pendQ = 0;
    this.pendSilent = 0;
    if (nl + q === 0) return;
    this.consoleMidLine = q > 0;
    if (wantConsole) {
      const b = Buffer.alloc(nl + q, NL);
      if (q > 0) b.fill(QUOTE, nl);
      this.consoleParts.push(b);
    }
  }

  private startFrame(wantConsole: boolean): void {
    const nl = this.pendNl - this.pendSilent;
    const q = this.pendQ;
    this.pendNl = 0;
    this.pendQ = 0;
    this.pendSilent = 0;
    // The newlines before a frame are its delimiter and the firmware's empty-frame replies; keep one
    // only to end a console line the frame would otherwise run into. Quotes before `"""` are console.
    const keepNl = nl > 0 && this.consoleMidLine ? 1 : 0;
    const extraQ = q > 3 ? q - 3 : 0;
    if (keepNl + extraQ > 0) {
      this.consoleMidLine = extraQ > 0;
      if (wantConsole) {
        const b = Buffer.alloc(keepNl + extraQ, NL);
        if (extraQ > 0) b.fill(QUOTE, keepNl);
        this.consoleParts.push(b);
      }
    }
    this.mode = IN_FRAME;
    this.flen = 0;
    this.fquotes = 0;
  }

  private endFrame(triple: boolean): void {
    const wasSkipping = this.mode === SKIP;
    this.mode = OUTSIDE;
    this.silentAfter = triple ? 1 : 0;
    this.fquotes = 0;
    if (wasSkipping) return;
    this.emitConsole();
    const f = this.frameBuf;
    let end = this.flen;
    if (end === 1 && f[0] === EOF_CHAR) {
      // The firmware answers the handshake's `\n\n` (empty frames) with newlines: framing too.
      this.silentAfter = Number.MAX_SAFE_INTEGER;
      this.ev.eof();
      return;
    }
    while (end > 0 && isSpace(f[end - 1])) end--;
    let close = end;
    while (close > 0 && f[close - 1] !== RBRACE) close--;
    if (close > 0 && close < end) {
      const meta = f.toString("latin1", close, end);
      const crcField = meta.split(",", 1)[0];
      if (!/^[0-9a-fA-F]{1,8}$/.test(crcField)) {
        this.ev.drop("malformed frame metadata", meta.slice(0, 40));
        return;
      }
      const want = parseInt(crcField, 16);
      const got = crc32(f, 0, close);
      if (want !== got) {
        this.ev.drop(`CRC mismatch: expected ${hex8(want)}, got ${hex8(got)}`, f.toString("latin1", 0, Math.min(close, 80)));
        return;
      }
      end = close;
    }
    this.ev.frame(f.toString("utf8", 0, end));
  }
}

/** ASCII whitespace as the firmware's isspace(): space, \t, \n, \v, \f, \r. */
export function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}
