/**
 * The generic chunk pump behind file put/get and OTA: a byte range cut into chunks, a WINDOW of chunks in
 * flight, per-chunk retry (each attempt a new call, so a new id, each with its own timeout), progress
 * callbacks and cancellation. It knows nothing of FS or OTA: callers give it a `send(chunk, attempt)`
 * function. Also here: how big a chunk may be on a channel (frame limit, base64 4/3, envelope room).
 */
import { AbortedError, DeviceError, RemosError, TimeoutError, TransportError, UsageError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { ChannelInfo } from "../rpc/channel.js";

/** Chunk size of real Mongoose OS firmware and of mos (spec §5.3): ~800-byte frames fit every channel. */
export const LEGACY_CHUNK_SIZE = 512;
/**
 * The largest chunk remos uses by default even on channels that carry bigger frames (HTTP/WS: 1 MiB). Each
 * chunk costs the device a stat (its file handle is kept between chunks) and both sides a frame round trip:
 * 256 KiB chunks halve the time of a 16 MB transfer against 48 KiB ones on loopback and more than triple
 * the rate at 50 ms RTT, while a window of 8 still keeps a 1 MB file in 4 chunks and a device's memory per
 * request small.
 */
export const MAX_AUTO_CHUNK_SIZE = 256 * 1024;
/**
 * The chunk size of windowed file transfers (FS put/get to a remos agent), when the caller gives none and
 * the channel allows more: its frame text stays under 128 KiB. V8 puts strings above 128 KiB in its
 * large-object space, where making, flattening and converting them costs 2-3x more per byte (measured on
 * the send path, base64 + frame text + UTF-8 bytes: ~1 ms/MB with 72-90 KiB chunks, ~3 ms/MB with 128 KiB
 * and more), and each chunk passes through several such strings on both ends. base64 of 90 KiB is 120 KiB,
 * leaving room for the envelope and a long file name. OTA keeps MAX_AUTO_CHUNK_SIZE (window 1).
 */
export const WINDOWED_CHUNK_SIZE = 90 * 1024;
/**
 * The bytes a windowed transfer keeps in flight (8 chunks of 256 KiB, as before WINDOWED_CHUNK_SIZE): the
 * default window grows as chunks shrink, so a long round trip is filled as well (at 50 ms RTT, 90 KiB
 * chunks with a window of 8 halve the rate; with 23 they match 256 KiB x 8), up to MAX_AUTO_WINDOW.
 */
export const WINDOW_BYTES = 2 * 1024 * 1024;
export const MAX_AUTO_WINDOW = 32;

/** Room for the frame around the base64 data: ids, src (long on MQTT), method, params keys, an auth object. */
export const FRAME_ENVELOPE_BYTES = 640;

/** Tuning of one transfer; every field has a default chosen from the channel and the device. */
export interface TransferTuning {
  /** Raw bytes per chunk (before base64). Default: from the channel's frame limit (see chunkSizeFor). */
  chunkSize?: number;
  /** Chunks in flight at once. Default 8 (remos devices), 1 for real firmware and OTA. */
  window?: number;
  /** Attempts per chunk (mos `--fs-op-attempts`, default 3). */
  attempts?: number;
  /** Timeout of each call in ms (mos `--timeout`); default: the Device's. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called as bytes complete (`done` counts completed chunks' bytes, in any order). */
  onProgress?: (progress: TransferProgress) => void;
}

export interface TransferProgress {
  /** What is happening: "put", "get", "verify", "ota"... */
  phase: string;
  done: number;
  total: number;
}

export interface Chunk {
  /** Byte offset of the chunk in the whole transfer. */
  offset: number;
  length: number;
  /** 0-based index of the chunk. */
  index: number;
}

/**
 * The largest raw chunk whose base64 frame fits the channel: `(maxFrameSize - envelope) * 3/4`, rounded
 * down to a multiple of 3 (so base64 has no padding mid-file), capped at MAX_AUTO_CHUNK_SIZE.
 */
export function chunkSizeFor(info: Pick<ChannelInfo, "maxFrameSize">, nameLength = 0): number {
  const room = info.maxFrameSize - FRAME_ENVELOPE_BYTES - 2 * nameLength;
  const raw = Math.floor(room / 4) * 3;
  if (raw < 48) return 48;
  return Math.min(raw, MAX_AUTO_CHUNK_SIZE);
}

/** Cut `[start, end)` into chunks of `size` bytes; chunk offsets are absolute. */
export function chunksOf(start: number, end: number, size: number): Chunk[] {
  if (!Number.isInteger(size) || size <= 0) throw new UsageError(`chunk size must be a positive integer, got ${size}`);
  const out: Chunk[] = [];
  for (let off = start, i = 0; off < end; off += size, i++) out.push({ offset: off, length: Math.min(size, end - off), index: i });
  return out;
}

/**
 * Worth another attempt? Timeouts, broken links of per-request transports, and device errors that may be
 * transient (5xx, 418 while rebooting, 429 queue full, firmware's negative codes). Not: 400/401/403/404
 * (retrying cannot fix them), a closed channel, a frame too large, an abort, auth failures.
 */
export function isRetryable(e: unknown): boolean {
  if (e instanceof TimeoutError || e instanceof TransportError) return true;
  if (e instanceof DeviceError) {
    const c = e.rpcCode;
    return c >= 500 || c === 418 || c === 429 || c < 0;
  }
  return false;
}

/**
 * Run `send` for one chunk up to `attempts` times (a retryable failure is logged and retried; the last
 * failure is thrown with the step `chunk at offset N`).
 */
export async function withAttempts<T>(
  step: string,
  attempts: number,
  signal: AbortSignal | undefined,
  send: (attempt: number) => Promise<T>,
): Promise<T> {
  const max = Math.max(1, attempts);
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new AbortedError(`${step}: aborted`);
    try {
      return await send(attempt);
    } catch (e) {
      if (attempt >= max || !isRetryable(e) || signal?.aborted) {
        throw e instanceof RemosError ? e.inStep(step) : new TransportError(errorMessage(e), { cause: e, step });
      }
      debug("transfer", "chunk attempt failed; retrying", { step, attempt, error: errorMessage(e) });
    }
  }
}

export interface PumpOptions {
  window: number;
  attempts: number;
  signal?: AbortSignal;
  phase: string;
  /** Total bytes of the whole transfer (for progress), and bytes already done before this run (resume). */
  total: number;
  already?: number;
  onProgress?: (progress: TransferProgress) => void;
}

/**
 * Send every chunk, at most `window` at a time, each with `attempts` tries. The first chunk that fails for
 * good stops new chunks from starting; chunks already in flight are awaited, then that error is thrown.
 */
export async function pumpChunks(
  chunks: Chunk[],
  options: PumpOptions,
  send: (chunk: Chunk, attempt: number) => Promise<void>,
): Promise<void> {
  const window = Math.max(1, Math.floor(options.window));
  let next = 0;
  let done = options.already ?? 0;
  let failure: unknown;
  const report = (): void => options.onProgress?.({ phase: options.phase, done, total: options.total });
  report();
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < chunks.length) {
      const chunk = chunks[next++];
      try {
        await withAttempts(`chunk at offset ${chunk.offset}`, options.attempts, options.signal, (attempt) => send(chunk, attempt));
        done += chunk.length;
        report();
      } catch (e) {
        if (failure === undefined) failure = e;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.min(window, chunks.length); i++) workers.push(worker());
  await Promise.all(workers);
  if (failure !== undefined) throw failure;
}

/** Bytes to base64 (standard alphabet, `=` padding, as frozen's b64enc). */
export function toBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

/** Strict-enough base64 decoding of device data; a non-string is a protocol error. */
export function fromBase64(data: unknown, what: string): Buffer {
  if (typeof data !== "string") throw new TransportError(`${what}: the device sent no data field`);
  return Buffer.from(data, "base64");
}
