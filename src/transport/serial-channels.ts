/**
 * The two channels of the UART transport (spec §2.1) over any ByteLink: `SerialClientChannel` (the host,
 * as mos talks to a device: handshake, pacing, XON/XOFF) and `SerialDeviceChannel` (the firmware's
 * rules: sticky `"""`/CRC modes, empty-frame and EOF answers, console text only between frames).
 * Framing bytes come from `serial-framing.ts` and `serial-device-framing.ts`; opening ports and the
 * entry points are in `serial.ts`, whose header documents the decisions (handshake once, pacing at
 * 115200 only, CRC mismatch drops the frame, send limit 4092 / receive limit 64 KiB).
 */
import { AbortedError, ChannelClosedError, TransportError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { ChannelInfo } from "../rpc/channel.js";
import { type Frame, encodeFrame, toAscii } from "../rpc/frame.js";
import { BaseChannel } from "./base.js";
import { DeviceFrameReceiver } from "./serial-device-framing.js";
import {
  ClientFrameParser,
  EOF_REPLY,
  HANDSHAKE,
  HANDSHAKE_ACK,
  encodeClientFrame,
  encodeSerialFrame,
} from "./serial-framing.js";

/** The firmware's default `rpc.max_frame_size`. */
export const SERIAL_MAX_FRAME_SIZE = 4096;
/** Largest JSON the client sends: 4096 + 6 slack - 8 CRC chars - 2 quotes of a partial delimiter. */
export const SERIAL_SEND_LIMIT = SERIAL_MAX_FRAME_SIZE + 6 - 8 - 2;
/** Largest frame either end accepts from the other (devices send frames bigger than 4 KB). */
export const SERIAL_RECEIVE_LIMIT = 64 * 1024;
export const DEFAULT_BAUD_RATE = 115200;
const HANDSHAKE_INTERVAL_MS = 200;
const PACING_CHUNK = 16;
const PACING_DELAY_MS = 5;
const NL_BYTE = Buffer.from("\n");

/** A raw byte pipe. The channel sets `onData` / `onEnd`; the link calls them. */
export interface ByteLink {
  write(data: Buffer): Promise<void>;
  close(): Promise<void>;
  onData?: (data: Buffer) => void;
  onEnd?: (reason?: Error) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Frames queued behind the write in flight; they go out together, in one write, when it completes. */
interface TxBatch {
  parts: Buffer[];
  waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
}

/** Shared by both ends: ASCII encoding, serialised writes, and a receive limit above the send limit. */
abstract class SerialChannel extends BaseChannel {
  protected readonly link: ByteLink;
  private tx: Promise<void> = Promise.resolve();

  protected constructor(info: ChannelInfo, link: ByteLink) {
    super(info);
    this.receiveLimit = SERIAL_RECEIVE_LIMIT;
    this.link = link;
    link.onEnd = (reason) => {
      this.linkEnded();
      this.markClosed(reason ? new TransportError(`serial link ${info.peer} failed: ${reason.message}`, { cause: reason }) : undefined);
    };
  }

  protected linkEnded(): void {}

  /** The UART firmware discards its buffer on any byte >= 0x80: everything goes out as \uXXXX. */
  protected override encode(frame: Frame): string {
    return toAscii(encodeFrame(frame));
  }

  /** Run write jobs one after another, so frames never interleave. */
  protected enqueue(job: () => Promise<void>): Promise<void> {
    const p = this.tx.then(() => {
      if (this.closed) throw new ChannelClosedError(`UART channel to ${this.info.peer} is closed`);
      return job();
    });
    this.tx = p.catch(() => undefined);
    return p;
  }

  protected dropped(reason: string, sample: string): void {
    debug(this.area, `input dropped: ${reason}`, { peer: this.info.peer, sample });
  }

  /**
   * Release the port first, then mark the channel closed (failing pending calls): callers that await
   * close() see the rejections right after it returns, and may reopen the port at once.
   */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.linkEnded();
    await this.link.close().catch((e: unknown) => debug(this.area, "closing the link failed", { peer: this.info.peer, error: errorMessage(e) }));
    await super.close();
  }

  protected async closeLink(): Promise<void> {
    this.linkEnded();
    await this.link.close();
  }
}

export interface SerialClientOptions {
  pacing: boolean;
  onConsole?: (data: Buffer) => void;
}

/** The host end, as mos talks to a device. */
export class SerialClientChannel extends SerialChannel {
  private readonly parser: ClientFrameParser;
  private readonly pacing: boolean;
  private paused = false;
  private waitingXon: Array<() => void> = [];
  private handshaken = false;
  private handshakeDone: (() => void) | undefined;
  /** The batch whose write job has not started yet: new frames join it (cleared when that job starts). */
  private batch: TxBatch | undefined;

  constructor(link: ByteLink, path: string, options: SerialClientOptions) {
    super({ type: "UART", peer: path, maxFrameSize: SERIAL_SEND_LIMIT }, link);
    this.pacing = options.pacing;
    const onConsole = options.onConsole;
    this.parser = new ClientFrameParser(
      {
        frame: (json) => this.receiveText(json),
        eof: () => this.gotEof(),
        drop: (reason, sample) => this.dropped(reason, sample),
        flow: (paused) => this.setPaused(paused),
        console: onConsole
          ? (data) => {
              try {
                onConsole(data);
              } catch (e) {
                debug("serial", "console sink threw", { error: errorMessage(e) });
              }
            }
          : undefined,
      },
      SERIAL_RECEIVE_LIMIT,
    );
    link.onData = (data) => this.parser.push(data);
  }

  /** Send the handshake every 200 ms until the device answers, the time runs out or the signal fires. */
  async handshake(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const t0 = Date.now();
    let tries = 0;
    const answered = new Promise<void>((resolve) => (this.handshakeDone = resolve));
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((resolve) => {
      onAbort = () => resolve();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      while (!this.handshaken) {
        if (signal?.aborted) throw new AbortedError(`serial handshake on ${this.info.peer} aborted`);
        if (this.closed) throw new ChannelClosedError(`serial port ${this.info.peer} closed during the handshake`);
        const left = timeoutMs - (Date.now() - t0);
        if (left <= 0) {
          throw new TransportError(
            `no response to handshake on ${this.info.peer} within ${timeoutMs} ms (${tries} tries): is it the right port? is rpc-uart enabled?`,
          );
        }
        await this.enqueueControl(() => this.writeBytes(HANDSHAKE, false));
        tries++;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([answered, aborted, new Promise<void>((r) => (timer = setTimeout(r, Math.min(HANDSHAKE_INTERVAL_MS, left))))]);
        clearTimeout(timer);
      }
    } finally {
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
    debug("serial", "handshake complete", { peer: this.info.peer, tries, ms: Date.now() - t0 });
  }

  private gotEof(): void {
    if (this.handshaken) return;
    this.handshaken = true;
    this.paused = false; // start unblocked: we just synchronised
    this.enqueueControl(() => this.writeBytes(HANDSHAKE_ACK, false)).catch((e: unknown) => debug("serial", "handshake ack failed", { error: errorMessage(e) }));
    this.handshakeDone?.();
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    if (!paused) this.releaseWriters();
  }

  private releaseWriters(): void {
    const w = this.waitingXon;
    this.waitingXon = [];
    for (const r of w) r();
  }

  private async waitXon(): Promise<void> {
    while (this.paused && !this.closed) await new Promise<void>((r) => this.waitingXon.push(r));
  }

  /** Write `bytes` (paced: 16-byte chunks 5 ms apart); `written(n)` reports the first n bytes are out. */
  private async writeBytes(bytes: Buffer, obeyFlow = true, written?: (n: number) => void): Promise<void> {
    if (!this.pacing) {
      if (obeyFlow) await this.waitXon();
      await this.link.write(bytes);
      written?.(bytes.length);
      return;
    }
    for (let i = 0; i < bytes.length; i += PACING_CHUNK) {
      if (obeyFlow) await this.waitXon();
      if (this.closed) throw new ChannelClosedError(`UART channel to ${this.info.peer} is closed`);
      await this.link.write(bytes.subarray(i, i + PACING_CHUNK));
      await sleep(PACING_DELAY_MS);
      written?.(Math.min(i + PACING_CHUNK, bytes.length));
    }
  }

  /** A write that is not a frame (handshake, its ack): frames sent after it never overtake it. */
  private enqueueControl(job: () => Promise<void>): Promise<void> {
    this.batch = undefined;
    return this.enqueue(job);
  }

  /**
   * Frames are coalesced: one write job at a time is queued, and every frame sent before it starts joins
   * it, so while a write is in flight the next frames wait and then go out in one buffer (one port write,
   * not one per frame). Each send still resolves once its own bytes are written (paced: its last chunk).
   */
  protected sendText(text: string): Promise<void> {
    const bytes = encodeClientFrame(text);
    let batch = this.batch;
    if (!batch) {
      const b: TxBatch = { parts: [], waiters: [] };
      this.enqueue(() => {
        if (this.batch === b) this.batch = undefined;
        return this.writeBatch(b);
      }).catch((e: unknown) => {
        for (const w of b.waiters) w.reject(e); // no-op for the frames already written
      });
      this.batch = batch = b;
    }
    const joined = batch;
    return new Promise<void>((resolve, reject) => {
      joined.parts.push(bytes);
      joined.waiters.push({ resolve, reject });
    });
  }

  private async writeBatch(b: TxBatch): Promise<void> {
    const data = b.parts.length === 1 ? b.parts[0] : Buffer.concat(b.parts);
    let next = 0;
    let end = b.parts[0].length;
    await this.writeBytes(data, true, (n) => {
      while (next < b.parts.length && end <= n) {
        b.waiters[next++].resolve();
        if (next < b.parts.length) end += b.parts[next].length;
      }
    });
  }

  protected override linkEnded(): void {
    this.releaseWriters();
  }
}

/** The device end, with the firmware's receive rules and sticky modes. */
export class SerialDeviceChannel extends SerialChannel {
  readonly receiver: DeviceFrameReceiver;
  /**
   * The firmware's send buffer: empty-frame answers (`\n`) wait here for the next output, the EOF answer
   * and frames are appended in order and flushed. Console text is written outside it, between flushes.
   */
  private out: Buffer[] = [];
  private framesQueued = 0;
  /** The flush job queued behind the write in flight, not yet started. */
  private flushQueued: Promise<void> | undefined;
  private consoleQueue: Buffer[] = [];
  /** Frames parsed from the chunk being read, delivered once it is fully parsed. */
  private parsed: string[] = [];

  constructor(link: ByteLink, maxFrameSize = SERIAL_MAX_FRAME_SIZE, peer = "UART0") {
    super({ type: "UART", peer, maxFrameSize: SERIAL_RECEIVE_LIMIT }, link);
    this.receiver = new DeviceFrameReceiver(
      {
        // Held until the whole chunk is parsed: an empty frame right behind this one queues its "\n" answer
        // first, so it goes out ahead of the reply even when the handler answers synchronously.
        frame: (json) => this.parsed.push(json),
        eof: () => {
          this.out.push(EOF_REPLY);
          this.flushOut().catch(() => undefined);
        },
        empty: () => {
          this.out.push(NL_BYTE);
        },
        drop: (reason, sample) => this.dropped(reason, sample),
      },
      maxFrameSize,
    );
    link.onData = (data) => {
      this.receiver.push(data);
      if (this.parsed.length === 0) return;
      const frames = this.parsed;
      this.parsed = [];
      for (const json of frames) this.receiveText(json);
    };
  }

  /**
   * Queue one write of everything in `out`. While a flush is queued and not yet started, further frames
   * join it instead of queueing their own: while a write is in flight the next frames collect in `out`
   * and go out together in one write when it completes; each caller's promise settles with that write.
   */
  private flushOut(): Promise<void> {
    if (this.flushQueued) return this.flushQueued;
    const p = this.enqueue(async () => {
      if (this.flushQueued === p) this.flushQueued = undefined;
      if (this.out.length === 0) return;
      const data = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
      this.out = [];
      await this.link.write(data);
    });
    this.flushQueued = p;
    const clear = (): void => {
      if (this.flushQueued === p) this.flushQueued = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  protected sendText(text: string): Promise<void> {
    this.out.push(encodeSerialFrame(text, { delim1: this.receiver.delim1Used, crc: this.receiver.crcUsed }));
    this.framesQueued++;
    return this.flushOut().finally(() => {
      if (--this.framesQueued === 0) this.flushConsole();
    });
  }

  /** Console text goes straight out between frames; while frames are queued it waits (firmware: suspended). */
  writeConsole(text: string): void {
    if (this.closed || text.length === 0) return;
    this.consoleQueue.push(Buffer.from(text, "utf8"));
    if (this.framesQueued === 0) this.flushConsole();
  }

  private flushConsole(): void {
    if (this.consoleQueue.length === 0 || this.closed) return;
    const data = Buffer.concat(this.consoleQueue);
    this.consoleQueue = [];
    this.enqueue(() => this.link.write(data)).catch(() => undefined);
  }
}
