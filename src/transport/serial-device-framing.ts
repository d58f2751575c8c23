/**
 * The device end's receive rules for the UART RPC channel (spec §2.1), pure: how the firmware reads the
 * host (`RPCUART:src/mgos_rpc_channel_uart.c`): buffer, discard all on a byte >= 0x80, split on `"""`
 * (preferred) or `\n`, skip junk before `{`, validate a CRC when >= 8 metadata chars follow the last `}`,
 * drop a partial frame > max+6. The shared bytes, CRC and encoders are in serial-framing.ts.
 */
import { EOF_CHAR, LBRACE, NL, RBRACE, crc32, isSpace } from "./serial-framing.js";

export interface DeviceReceiverEvents {
  /** A frame's JSON text (junk before `{` and metadata removed; CRC verified when given). */
  frame(json: string): void;
  /** The single-byte frame 0x04 (the host's handshake): answer `"""\x04"""`. */
  eof(): void;
  /** An empty or whitespace-only frame: answer `"\n"` (with the next outgoing data). */
  empty(): void;
  /** Input dropped: a byte >= 0x80, a corrupted frame, a partial frame too big. */
  drop(reason: string, sample: string): void;
}

/**
 * The device-side receive rules of the firmware, including its sticky modes: `delim1Used` once a
 * `"""` was seen, `crcUsed` once a frame with a valid CRC arrived (never reset).
 */
export class DeviceFrameReceiver {
  delim1Used = false;
  crcUsed = false;
  private readonly ev: DeviceReceiverEvents;
  private readonly maxFrameSize: number;
  private buf: Buffer;
  private start = 0;
  private len = 0;

  constructor(events: DeviceReceiverEvents, maxFrameSize = 4096) {
    this.ev = events;
    this.maxFrameSize = maxFrameSize;
    this.buf = Buffer.allocUnsafe(Math.max(256, maxFrameSize + 64));
  }

  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] >= 0x80) {
        // "Not allowed by JSON - garbage": the firmware clears its whole buffer, new bytes included.
        this.ev.drop("byte >= 0x80 (garbage): receive buffer discarded", "");
        this.start = this.len = 0;
        return;
      }
    }
    this.append(chunk);
    const b = this.buf;
    let d1 = this.find3(this.start);
    let d2 = -2; // -2: not searched yet
    while (this.len > this.start) {
      let flen: number;
      let next: number;
      if (d1 >= 0) {
        this.delim1Used = true;
        flen = d1 - this.start;
        next = d1 + 3;
      } else {
        if (d2 < this.start) d2 = b.subarray(0, this.len).indexOf(NL, this.start);
        if (d2 < 0) break;
        flen = d2 - this.start;
        next = d2 + 1;
      }
      this.onFrame(this.start, this.start + flen);
      this.start = next;
      if (d1 >= 0 && d1 < next) d1 = this.find3(next);
    }
    if (this.len - this.start > this.maxFrameSize + 6) {
      this.ev.drop("Incoming frame is too big, dropping", b.toString("latin1", this.start, this.start + 60));
      this.start = this.len = 0;
    }
    if (this.start === this.len) this.start = this.len = 0;
  }

  private find3(from: number): number {
    return this.buf.subarray(0, this.len).indexOf('"""', from, "latin1");
  }

  private append(chunk: Uint8Array): void {
    const need = this.len - this.start + chunk.length;
    if (this.start > 0 && (need > this.buf.length - this.start || this.start > this.buf.length / 2)) {
      this.buf.copy(this.buf, 0, this.start, this.len);
      this.len -= this.start;
      this.start = 0;
    }
    if (this.len + chunk.length > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + chunk.length));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
  }

  private onFrame(s: number, e: number): void {
    const b = this.buf;
    let empty = true;
    for (let i = s; i < e; i++) {
      if (!isSpace(b[i])) {
        empty = false;
        break;
      }
    }
    if (empty) {
      this.ev.empty();
      return;
    }
    if (e - s === 1 && b[s] === EOF_CHAR) {
      this.ev.eof();
      return;
    }
    const s0 = s;
    while (s < e && b[s] !== LBRACE) s++; // junk in front
    let close = e;
    while (close > s && b[close - 1] !== RBRACE) close--;
    if (e - close >= 8) {
      const m = /^\s*(?:0[xX])?([0-9a-fA-F]+)/.exec(b.toString("latin1", close, e));
      const want = m ? parseInt(m[1].slice(-8), 16) : -1;
      const got = crc32(b, s, close);
      if (want !== got) {
        this.ev.drop("Corrupted frame", b.toString("latin1", s, Math.min(e, s + 80)));
        return;
      }
      this.crcUsed = true;
    }
    if (close > s) this.ev.frame(b.toString("latin1", s, close));
    else this.ev.drop("junk without a frame", b.toString("latin1", s0, Math.min(e, s0 + 80)));
  }
}
