/**
 * File transfers over FS.Put / FS.Get with the chunk pump (transfer.ts): windowed, retried per chunk,
 * resumable, and checked end to end (size + SHA-256). Uploads read their bytes by range from a ByteSource
 * (byte-source.ts), so a local file is streamed from disk, never loaded whole.
 *
 * put: the first call writes at offset 0 (FS.Put opens "wb", truncating) — with a window only its first 3
 *   bytes, so the window opens after a short round trip — then every further chunk carries its explicit
 *   `offset` (the device opens "r+" and seeks, so chunks may complete in any order). What is sent is hashed
 *   in offset order on the way. Resume: `FS.Sha256` of what is on the device is compared with the same
 *   prefix of the local data; a match resumes there (else the longest matching chunk-aligned prefix).
 *   Verify: `FS.Sha256` of the result, or a read-back.
 * get: the first `FS.Get` tells the size (`data.length + left`); with a window, the rest of the first window
 *   is asked for at the same time, and the device's FS.Sha256 as soon as the size is known. The rest is
 *   fetched in parallel by offset/len into a sink (memory, a file that may be resumed, or a stream written
 *   in order).
 */
import { createHash } from "node:crypto";
import { DeviceError, RemosError, TransportError, VerifyError } from "../errors.js";
import { debug } from "../log.js";
import { type ByteSource, hashPrefix, isByteSource, memorySource } from "./byte-source.js";
import { defaultChunkSize, defaultWindow } from "./capabilities.js";
import type { DeviceCore } from "./core.js";
import { CompareSink, type GetSink, InOrder } from "./sinks.js";
import { Base64Text } from "../rpc/frame.js";
import {
  type Chunk,
  MAX_AUTO_WINDOW,
  type TransferTuning,
  WINDOWED_CHUNK_SIZE,
  WINDOW_BYTES,
  chunksOf,
  fromBase64,
  pumpChunks,
  withAttempts,
} from "./transfer.js";

/** The result of the remos method `FS.Sha256 {filename, offset?, len?}`. */
export interface FsSha256Result {
  /** Lowercase hex SHA-256 of bytes [offset, offset+len) of the file. */
  sha256: string;
  /** Size of the whole file in bytes. */
  size: number;
  offset?: number;
  /** Bytes hashed (clamped at the end of the file). */
  len?: number;
}

export type VerifyMode = "auto" | "readback" | "none";

/** With a window, the first FS.Put (which truncates the file) carries this many bytes; see putFile. */
const FIRST_PUT_BYTES = 3;

export interface PutOptions extends TransferTuning {
  /** Resume a partial upload when the device can prove what it holds (FS.Sha256). Default true. */
  resume?: boolean;
  /** "auto" (default): FS.Sha256 when offered, else read the file back; "readback"; "none". */
  verify?: VerifyMode;
}

export interface GetOptions extends TransferTuning {
  /** "auto" (default): compare with FS.Sha256 when offered (else the size only); "none". */
  verify?: VerifyMode;
}

export interface TransferResult {
  /** Bytes of the whole file. */
  size: number;
  /** Lowercase hex SHA-256 of the whole file. */
  sha256: string;
  /** Bytes that were already in place (resume) and not transferred again. */
  resumedFrom: number;
  chunkSize: number;
  window: number;
  /** How the result was checked: "sha256" (device checksum), "readback", "size" or "none". */
  verified: "sha256" | "readback" | "size" | "none";
}

export type { GetSink } from "./sinks.js";
export { MemorySink } from "./sinks.js";

interface Resolved {
  chunkSize: number;
  window: number;
  attempts: number;
  timeout: number;
  fsSha256: boolean;
  remos: boolean;
}

async function resolveTuning(core: DeviceCore, filename: string, o: TransferTuning): Promise<Resolved> {
  const caps = await core.capabilities({ timeout: o.timeoutMs, signal: o.signal });
  let chunkSize = o.chunkSize ?? defaultChunkSize(caps, core.channelInfo, filename.length);
  let window = o.window ?? defaultWindow(caps, core.channelInfo);
  if (o.chunkSize === undefined && window > 1 && chunkSize > WINDOWED_CHUNK_SIZE) {
    // windowed: chunks whose frames stay regular V8 strings, and a window that keeps as many bytes in flight
    chunkSize = WINDOWED_CHUNK_SIZE;
    if (o.window === undefined) window = Math.min(MAX_AUTO_WINDOW, Math.max(window, Math.ceil(WINDOW_BYTES / chunkSize)));
  }
  return {
    chunkSize,
    window,
    attempts: o.attempts ?? 3,
    timeout: o.timeoutMs ?? core.timeoutMs,
    fsSha256: caps.fsSha256,
    remos: caps.remos,
  };
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `FS.Sha256` (remos devices): checksum of a file or a range of it. */
export async function fsSha256(
  core: DeviceCore,
  filename: string,
  range: { offset?: number; len?: number } = {},
  opts: { timeout?: number; signal?: AbortSignal } = {},
): Promise<FsSha256Result> {
  const params: Record<string, unknown> = { filename };
  if (range.offset !== undefined) params.offset = range.offset;
  if (range.len !== undefined) params.len = range.len;
  const r = await core.call<FsSha256Result>("FS.Sha256", params, opts);
  if (!r || typeof r.sha256 !== "string" || typeof r.size !== "number") throw new TransportError("FS.Sha256: malformed result");
  return r;
}

/**
 * How much of the source is already on the device as `filename` (0 when nothing provably is): by
 * FS.Sha256 when the device has it; else, on a remos agent (fast big-chunk reads), by reading the file back
 * and taking the longest prefix identical to the source. Real firmware without a checksum: 0 (start over).
 */
async function resumePoint(core: DeviceCore, filename: string, src: ByteSource, t: Resolved, signal?: AbortSignal): Promise<number> {
  if (t.fsSha256) return resumeBySha(core, filename, src, t, signal);
  if (!t.remos) return 0;
  let size: number;
  try {
    const first = await getChunk(core, filename, 0, 1, { timeout: t.timeout, signal });
    size = first.length + first.left;
  } catch (e) {
    if (e instanceof DeviceError) return 0;
    throw e;
  }
  if (size === 0 || size > src.size) return 0;
  const sink = new CompareSink(src);
  await getInto(core, filename, sink, { chunkSize: t.chunkSize, window: t.window, attempts: t.attempts, timeoutMs: t.timeout, signal, verify: "none" });
  return sink.identicalPrefix();
}

/**
 * Resume by checksum: the whole device file when it is a prefix of the source; else (an interrupted
 * windowed upload leaves holes in its last window) the longest chunk-aligned prefix whose FS.Sha256 equals
 * the source's. Identical prefixes are monotone (a matching prefix's prefixes match), so after a first guess
 * (the prefix before the last window) a binary search over chunk boundaries finds it in a few calls.
 */
async function resumeBySha(core: DeviceCore, filename: string, src: ByteSource, t: Resolved, signal?: AbortSignal): Promise<number> {
  let whole: FsSha256Result;
  const callOpts = { timeout: t.timeout, signal };
  try {
    whole = await fsSha256(core, filename, {}, callOpts);
  } catch (e) {
    if (e instanceof DeviceError) return 0; // no such file (400 failed to open) or similar
    throw e;
  }
  if (whole.size === 0 || whole.size > src.size) return 0;
  const local = await hashPrefix(src, whole.size, { step: t.chunkSize, signal });
  if (local.sha256 === whole.sha256) return whole.size;
  const matches = async (k: number): Promise<boolean> => {
    const len = k * t.chunkSize;
    const r = await fsSha256(core, filename, { offset: 0, len }, callOpts);
    return r.len === len && r.sha256 === local.at.get(len);
  };
  let lo = 0; // k·chunk bytes known identical
  let hi = Math.ceil(whole.size / t.chunkSize); // known different
  const guess = hi - 1 - t.window;
  if (guess > lo) {
    if (await matches(guess)) lo = guess;
    else hi = guess;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await matches(mid)) lo = mid;
    else hi = mid;
  }
  return lo * t.chunkSize;
}

/**
 * Upload to `filename` on the device: bytes in memory, or a ByteSource (a local file read chunk by chunk,
 * see openFileSource) so a big file is never loaded whole.
 */
export async function putFile(core: DeviceCore, filename: string, data: Uint8Array | ByteSource, o: PutOptions = {}): Promise<TransferResult> {
  const src = isByteSource(data) ? data : memorySource(data);
  const t = await resolveTuning(core, filename, o);
  const size = src.size;
  const callOpts = { timeout: t.timeout, signal: o.signal };
  // A fresh upload hashes what it sends, in offset order, while chunks are in flight (no second pass).
  let sent: InOrder | undefined;
  const putChunk = async (offset: number, length: number): Promise<unknown> => {
    const bytes = await src.read(offset, length);
    sent?.add(offset, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    // append as mos; with offset > 0 the firmware opens "r+" and seeks anyway. Base64Text: the frame
    // encoder splices the base64 in instead of JSON-escaping a copy of it.
    const params: Record<string, unknown> = { filename, offset, data: Base64Text.of(bytes), append: offset > 0 };
    return core.call("FS.Put", params, callOpts);
  };

  let start = 0;
  if (o.resume !== false && size > 0) start = await resumePoint(core, filename, src, t, o.signal);
  if (start > 0) debug("transfer", "put: resuming", { filename, from: start, size });
  const resumedFrom = start;
  let chunks: Chunk[];
  if (start === 0) {
    sent = new InOrder(size);
    // The first call truncates the file; only then may chunks at offset > 0 ("r+") go out, in any order.
    // With a window, that call carries only the first few bytes (a short round trip instead of a whole
    // chunk's before the window opens); chunk boundaries stay at multiples of the chunk size.
    const head = t.window > 1 && size > t.chunkSize ? FIRST_PUT_BYTES : Math.min(t.chunkSize, size);
    await withAttempts("chunk at offset 0", t.attempts, o.signal, () => putChunk(0, head));
    chunks = head < t.chunkSize && head < size ? [{ offset: head, length: t.chunkSize - head, index: 0 }, ...chunksOf(t.chunkSize, size, t.chunkSize)] : chunksOf(head, size, t.chunkSize);
    start = head;
  } else chunks = chunksOf(start, size, t.chunkSize);
  await pumpChunks(
    chunks,
    { window: t.window, attempts: t.attempts, signal: o.signal, phase: "put", total: size, already: start, onProgress: o.onProgress },
    (c) => putChunk(c.offset, c.length).then(() => undefined),
  );
  const localSha = sent?.complete(size) ? sent.sha256() : hashPrefix(src, size, { signal: o.signal }).then((h) => h.sha256);

  const verify = o.verify ?? "auto";
  const viaDigest = verify === "auto" && t.fsSha256;
  let sha = viaDigest ? "" : await localSha;
  let verified: TransferResult["verified"] = "none";
  if (verify !== "none") {
    try {
      if (viaDigest) {
        // The device's digest is asked for while the last bytes sent are still being hashed here.
        const [r, local] = await Promise.all([fsSha256(core, filename, {}, callOpts), localSha]);
        sha = local;
        checkSame(r.size, r.sha256, size, sha, "on the device", "sent");
        verified = "sha256";
      } else {
        const sink = new CompareSink(src);
        const back = await getInto(core, filename, sink, { ...o, verify: "none", onProgress: o.onProgress ? (p) => o.onProgress?.({ ...p, phase: "verify" }) : undefined });
        checkSame(back.size, back.sha256, size, sha, "read back", "sent");
        if (sink.identicalPrefix() !== size) throw new VerifyError(`read back differs from what was sent at offset ${sink.identicalPrefix()}`);
        verified = "readback";
      }
    } catch (e) {
      throw e instanceof RemosError ? e.inStep("verify") : e;
    }
  }
  return { size, sha256: sha, resumedFrom, chunkSize: t.chunkSize, window: t.window, verified };
}

function checkSame(gotSize: number, gotSha: string, wantSize: number, wantSha: string, got: string, want: string): void {
  if (gotSize !== wantSize) throw new VerifyError(`size mismatch: ${gotSize} bytes ${got}, ${wantSize} bytes ${want}`);
  if (gotSha !== wantSha) throw new VerifyError(`SHA-256 mismatch: ${gotSha} ${got}, ${wantSha} ${want}`);
}

interface GetChunkResult {
  /** The chunk as the device sent it (base64). */
  text: string;
  /** Bytes it holds (from its length and padding). */
  length: number;
  left: number;
}

async function getChunk(core: DeviceCore, filename: string, offset: number, len: number, opts: { timeout: number; signal?: AbortSignal }): Promise<GetChunkResult> {
  const r = await core.call<{ data?: unknown; left?: unknown }>("FS.Get", { filename, offset, len }, opts);
  if (!r || typeof r !== "object") throw new TransportError("FS.Get: malformed result");
  if (typeof r.data !== "string") throw new TransportError("FS.Get: the device sent no data field");
  const left = typeof r.left === "number" && r.left >= 0 ? r.left : 0;
  return { text: r.data, length: Buffer.byteLength(r.data, "base64"), left };
}

/**
 * One FS.Get answer into the sink, which must receive exactly `expected` bytes: decoded in place when the
 * sink can (MemorySink: no Buffer per chunk, no copy), else as a Buffer.
 */
async function deliver(sink: GetSink, offset: number, r: GetChunkResult, expected: number, size: number): Promise<void> {
  const wrong = (n: number): VerifyError => new VerifyError(`got ${n} bytes, expected ${expected}: the file changed during the transfer`);
  if (sink.writeBase64 !== undefined && r.length === expected) {
    const n = await sink.writeBase64(offset, r.text, expected, size);
    if (n !== expected) throw wrong(n);
    return;
  }
  const data = fromBase64(r.text, "FS.Get");
  if (data.length !== expected) throw wrong(data.length);
  await sink.write(offset, data);
}

/** Download `filename` into a sink; returns the size and SHA-256. */
export async function getInto(core: DeviceCore, filename: string, sink: GetSink, o: GetOptions = {}): Promise<TransferResult> {
  const t = await resolveTuning(core, filename, o);
  const callOpts = { timeout: t.timeout, signal: o.signal };
  let start = sink.start;
  if (start > 0 && !t.fsSha256) {
    // Without a device checksum nothing could prove that the local part still matches the device's file
    // (it may have changed since): start over rather than risk a silent mix of old and new bytes.
    debug("transfer", "get: the device has no FS.Sha256; not resuming", { filename, from: start });
    await sink.restart();
    start = 0;
  }
  // With a window, the next chunks (up to 7, so a small file costs at most 7 answers that come back empty
  // and are dropped) are asked for with the first: the file's size is not known before its answer.
  const early = new Map<number, Promise<GetChunkResult>>();
  const speculate = (from: number): void => {
    for (let k = 1; k < Math.min(t.window, 8); k++) {
      const p = getChunk(core, filename, from + k * t.chunkSize, t.chunkSize, callOpts);
      p.catch(() => undefined); // awaited (and its error handled) when its chunk's turn comes, if it has one
      early.set(from + k * t.chunkSize, p);
    }
  };
  let first: GetChunkResult;
  try {
    const p0 = withAttempts(`chunk at offset ${start}`, t.attempts, o.signal, () => getChunk(core, filename, start, t.chunkSize, callOpts));
    speculate(start);
    first = await p0;
    if (start > 0 && first.length === 0) throw new VerifyError("the local partial file is longer than the device's file");
  } catch (e) {
    early.clear();
    if (start === 0 || !(e instanceof DeviceError || e instanceof VerifyError)) throw e;
    debug("transfer", "get: cannot resume; starting over", { filename, from: start, error: (e as Error).message });
    await sink.restart();
    start = 0;
    first = await withAttempts("chunk at offset 0", t.attempts, o.signal, () => getChunk(core, filename, 0, t.chunkSize, callOpts));
  }
  const resumedFrom = start;
  const size = start + first.length + first.left;
  // The device's checksum is asked for now, computed while chunks flow, compared at the end (a file that
  // changes during the download fails the comparison either way).
  const verifySha = (o.verify ?? "auto") !== "none" && t.fsSha256;
  const remote = verifySha ? fsSha256(core, filename, {}, callOpts) : undefined;
  remote?.catch(() => undefined); // awaited below
  sink.expectSize?.(size);
  await deliver(sink, start, first, first.length, size);
  await pumpChunks(
    chunksOf(start + first.length, size, t.chunkSize),
    { window: t.window, attempts: t.attempts, signal: o.signal, phase: "get", total: size, already: start + first.length, onProgress: o.onProgress },
    async (c, attempt) => {
      const asked = attempt === 1 ? early.get(c.offset) : undefined;
      early.delete(c.offset);
      const r = await (asked ?? getChunk(core, filename, c.offset, c.length, callOpts));
      await deliver(sink, c.offset, r, c.length, size);
    },
  );
  await sink.finish(size);
  const sha = await sink.sha256();
  let verified: TransferResult["verified"] = "size";
  if (remote !== undefined) {
    try {
      const r = await remote;
      checkSame(size, sha, r.size, r.sha256, "received", "on the device");
      verified = "sha256";
    } catch (e) {
      throw e instanceof RemosError ? e.inStep("verify") : e;
    }
  } else if (o.verify === "none") verified = "none";
  await sink.commit?.();
  return { size, sha256: sha, resumedFrom, chunkSize: t.chunkSize, window: t.window, verified };
}
