/**
 * BaseChannel: the plumbing every transport shares — listener sets, the size check on send, decoding of
 * received text with malformed input dropped (and logged, never thrown at the peer), and close semantics.
 * A transport extends it and implements `sendText` and `closeLink`.
 */
import { ChannelClosedError, FrameTooLargeError, errorMessage } from "../errors.js";
import { debug, debugEnabled, frameForLog } from "../log.js";
import type { Channel, ChannelInfo, CloseListener, FrameListener } from "../rpc/channel.js";
import { type DecodedFrame, type Frame, decodeFrameText, encodeFrame, encodeFrameBytes, frameText, isBigAsciiFrame } from "../rpc/frame.js";

export abstract class BaseChannel implements Channel {
  readonly info: ChannelInfo;
  private readonly frameListeners = new Set<FrameListener>();
  private readonly closeListeners = new Set<CloseListener>();
  private isClosed = false;
  /**
   * Largest frame accepted on receive; defaults to `info.maxFrameSize` (the send limit). A transport whose
   * peer may send bigger frames than it accepts itself (UART: replies above the firmware's 4 KB receive
   * buffer) sets it higher.
   */
  protected receiveLimit: number;

  protected constructor(info: ChannelInfo) {
    this.info = info;
    this.receiveLimit = info.maxFrameSize;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Encode a frame to the text this transport carries (serial overrides it to escape to ASCII). */
  protected encode(frame: Frame): string {
    return encodeFrame(frame);
  }

  /**
   * The frame as bytes when it carries a Base64Text (see sendBytes), else undefined. A transport that
   * rewrites frames in `encode` rewrites them here too.
   */
  protected encodeBytes(frame: Frame): Buffer | undefined {
    return encodeFrameBytes(frame);
  }

  /** Put encoded frame text on the wire. */
  protected abstract sendText(text: string, frame: Frame): Promise<void>;

  /**
   * Put a frame's UTF-8 bytes on the wire. A transport that carries bytes as they are implements it; frames
   * with a Base64Text (transfer chunks) are then built straight into one Buffer (encodeFrameBytes) instead
   * of one big string that is flattened and re-encoded on the way out.
   */
  protected sendBytes?(bytes: Buffer, frame: Frame): Promise<void>;

  /** Tear the link down (called once). */
  protected abstract closeLink(): Promise<void>;

  /** Not `async`: the transport's own promise is returned as it is (one promise and one turn less per frame). */
  send(frame: Frame): Promise<void> {
    try {
      if (this.isClosed) throw new ChannelClosedError(`${this.info.type} channel to ${this.info.peer} is closed`);
      const bytes = this.sendBytes ? this.encodeBytes(frame) : undefined;
      if (bytes && this.sendBytes) {
        if (bytes.length > this.info.maxFrameSize) throw new FrameTooLargeError(bytes.length, this.info.maxFrameSize, this.info.type);
        if (debugEnabled(this.area)) debug(this.area, "send", { peer: this.info.peer, frame: frameForLog(bytes.toString("utf8")) });
        return this.sendBytes(bytes, frame);
      }
      const text = this.encode(frame);
      // text.length <= UTF-8 bytes <= 3 * text.length: count bytes only when the limit is within reach
      const size = text.length * 3 <= this.info.maxFrameSize ? 0 : Buffer.byteLength(text, "utf8");
      if (size > this.info.maxFrameSize) throw new FrameTooLargeError(size, this.info.maxFrameSize, this.info.type);
      if (debugEnabled(this.area)) debug(this.area, "send", { peer: this.info.peer, frame: frameForLog(text) });
      return this.sendText(text, frame);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  onFrame(listener: FrameListener): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  onClose(listener: CloseListener): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.markClosed();
    await this.closeLink();
  }

  /** The debug-log area: the transport name in lower case. */
  protected get area(): string {
    return this.info.type === "WS_in" || this.info.type === "WS_out" || this.info.type === "WSS_out"
      ? "ws"
      : this.info.type === "UART"
        ? "serial"
        : this.info.type.toLowerCase();
  }

  /**
   * Hand received text to the listeners. Oversized or malformed input is dropped and logged; it never
   * throws, so a bad peer cannot crash this end.
   */
  protected receiveText(text: string): void {
    if (this.isClosed) return;
    // text.length <= UTF-8 bytes, so the cheap check settles most frames without counting bytes
    if (text.length > this.receiveLimit || (text.length * 3 > this.receiveLimit && Buffer.byteLength(text, "utf8") > this.receiveLimit)) {
      this.droppedTooBig(Buffer.byteLength(text, "utf8"));
      return;
    }
    this.decodeAndEmit(text, false);
  }

  /**
   * Hand received bytes (one frame, UTF-8) to the listeners, as receiveText(bytes.toString("utf8")) would,
   * with the size checked in bytes and a frame carrying file data marked when its bytes are ASCII
   * (rpc/frame.ts decodeFrameBytes, knownAscii).
   */
  protected receiveBytes(bytes: Buffer): void {
    if (this.isClosed) return;
    if (bytes.length > this.receiveLimit) {
      this.droppedTooBig(bytes.length);
      return;
    }
    const ascii = isBigAsciiFrame(bytes);
    this.decodeAndEmit(frameText(bytes, ascii), ascii);
  }

  private droppedTooBig(size: number): void {
    debug(this.area, "incoming frame too big: dropped", { peer: this.info.peer, size, limit: this.receiveLimit });
  }

  /** Decode and hand to the listeners; malformed input is dropped and logged, never thrown. */
  private decodeAndEmit(text: string, asciiBytes: boolean): void {
    let decoded;
    try {
      decoded = decodeFrameText(text, asciiBytes);
    } catch (e) {
      debug(this.area, "malformed frame dropped", {
        peer: this.info.peer,
        reason: errorMessage(e),
        sample: frameForLog(text, 80),
      });
      return;
    }
    if (debugEnabled(this.area)) debug(this.area, "recv", { peer: this.info.peer, frame: frameForLog(text) });
    this.emitFrame(decoded);
  }

  /**
   * Hand a frame the transport has already decoded (and size-checked) to the listeners, so it is not
   * parsed twice (the HTTP device end decodes the body to choose how to answer).
   */
  protected receiveDecoded(decoded: DecodedFrame): void {
    if (this.isClosed) return;
    if (debugEnabled(this.area)) debug(this.area, "recv", { peer: this.info.peer, frame: frameForLog(JSON.stringify(decoded.frame)) });
    this.emitFrame(decoded);
  }

  private emitFrame(decoded: DecodedFrame): void {
    for (const l of this.frameListeners) {
      try {
        l(decoded);
      } catch (e) {
        debug(this.area, "frame listener threw", { error: errorMessage(e) });
      }
    }
  }

  /** Mark closed and tell the close listeners (idempotent). Transports call it when the link drops. */
  protected markClosed(reason?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const l of [...this.closeListeners]) {
      try {
        l(reason);
      } catch (e) {
        debug(this.area, "close listener threw", { error: errorMessage(e) });
      }
    }
  }
}
