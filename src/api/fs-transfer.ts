/**
 * File transfers over FS.Put / FS.Get with the chunk pump (transfer.ts): windowed, retried per chunk,
 * resumable, and checked end to end (size + SHA-256).
 *
 * put: the first chunk is written at offset 0 (FS.Put opens "wb", truncating), then the window opens and
 *   every further chunk carries its explicit `offset` (the device opens "r+" and seeks, so chunks may
 *   complete in any order). Resume: `FS.Sha256` of what is on the device is compared with the same prefix
 *   of the local data; a match resumes there. Verify: `FS.Sha256` of the result, or a read-back.
 * get: the first `FS.Get` tells the size (`data.length + left`); the rest is fetched in parallel by
 *   offset/len into a sink (memory, a file that may be resumed, or a stream written in order).
 */
import { createHash } from "node:crypto";
import { DeviceError, RemosError, TransportError, VerifyError } from "../errors.js";
import { debug } from "../log.js";
import { defaultChunkSize, defaultWindow } from "./capabilities.js";
import type { DeviceCore } from "./core.js";
import { type TransferTuning, chunksOf, fromBase64, pumpChunks, toBase64, withAttempts } from "./transfer.js";

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

/** Where FS.Get data goes. `start` is how much is already there (resume). */
export interface GetSink {
  readonly start: number;
  write(offset: number, data: Buffer): Promise<void>;
  /** Throw away what is there and start from 0 (the partial file did not belong to this file). */
  restart(): Promise<void>;
  /** All bytes received (and resumed) are in place; `size` is the file's size. */
  finish(size: number): Promise<void>;
  /** SHA-256 (hex) of the whole content, after finish. */
  sha256(): Promise<string>;
  /** Called once the content is verified (a file sink moves it into place). */
  commit?(): Promise<void>;
}

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
  return {
    chunkSize: o.chunkSize ?? defaultChunkSize(caps, core.channelInfo, filename.length),
    window: o.window ?? defaultWindow(caps, core.channelInfo),
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
 * How much of `data` is already on the device as `filename` (0 when nothing provably is): by FS.Sha256
 * when the device has it; else, on a remos agent (fast big-chunk reads), by reading the file back and
 * taking the longest prefix identical to `data`. Real firmware without a checksum: 0 (start over).
 */
async function resumePoint(core: DeviceCore, filename: string, data: Uint8Array, t: Resolved, signal?: AbortSignal): Promise<number> {
  if (t.fsSha256) return resumeBySha(core, filename, data, t, signal);
  if (!t.remos) return 0;
  let size: number;
  try {
    const first = await getChunk(core, filename, 0, 1, { timeout: t.timeout, signal });
    size = first.data.length + first.left;
  } catch (e) {
    if (e instanceof DeviceError) return 0;
    throw e;
  }
  if (size === 0 || size > data.length) return 0;
  const sink = new MemorySink();
  await getInto(core, filename, sink, { chunkSize: t.chunkSize, window: t.window, attempts: t.attempts, timeoutMs: t.timeout, signal, verify: "none" });
  const have = sink.buffer();
  let same = 0;
  const n = Math.min(have.length, data.length);
  while (same < n && have[same] === data[same]) same++;
  return same;
}

async function resumeBySha(core: DeviceCore, filename: string, data: Uint8Array, t: Resolved, signal?: AbortSignal): Promise<number> {
  let whole: FsSha256Result;
  try {
    whole = await fsSha256(core, filename, {}, { timeout: t.timeout, signal });
  } catch (e) {
    if (e instanceof DeviceError) return 0; // no such file (400 failed to open) or similar
    throw e;
  }
  if (whole.size === 0 || whole.size > data.length) return 0;
  if (sha256Hex(data.subarray(0, whole.size)) === whole.sha256) return whole.size;
  // An interrupted windowed upload may have holes in its last window: try the prefix before it.
  const candidate = Math.floor(whole.size / t.chunkSize) * t.chunkSize - t.window * t.chunkSize;
  if (candidate <= 0) return 0;
  const prefix = await fsSha256(core, filename, { offset: 0, len: candidate }, { timeout: t.timeout, signal });
  return sha256Hex(data.subarray(0, candidate)) === prefix.sha256 ? candidate : 0;
}

/** Upload bytes to `filename` on the device. */
export async function putFile(core: DeviceCore, filename: string, data: Uint8Array, o: PutOptions = {}): Promise<TransferResult> {
  const t = await resolveTuning(core, filename, o);
  const size = data.length;
  const sha = sha256Hex(data);
  const callOpts = { timeout: t.timeout, signal: o.signal };
  const putChunk = (offset: number, length: number): Promise<unknown> => {
    const params: Record<string, unknown> = { filename, offset, data: toBase64(data.subarray(offset, offset + length)) };
    if (offset > 0) params.append = true; // as mos; with offset > 0 the firmware opens "r+" and seeks anyway
    else params.append = false;
    return core.call("FS.Put", params, callOpts);
  };

  let start = 0;
  if (o.resume !== false && size > 0) start = await resumePoint(core, filename, data, t, o.signal);
  if (start > 0) debug("transfer", "put: resuming", { filename, from: start, size });
  const resumedFrom = start;
  if (start === 0) {
    // The first chunk truncates the file; only then may chunks at offset > 0 ("r+") go out, in any order.
    const first = Math.min(t.chunkSize, size);
    await withAttempts("chunk at offset 0", t.attempts, o.signal, () => putChunk(0, first));
    start = first;
  }
  await pumpChunks(
    chunksOf(start, size, t.chunkSize),
    { window: t.window, attempts: t.attempts, signal: o.signal, phase: "put", total: size, already: start, onProgress: o.onProgress },
    (c) => putChunk(c.offset, c.length).then(() => undefined),
  );

  const verify = o.verify ?? "auto";
  let verified: TransferResult["verified"] = "none";
  if (verify !== "none") {
    try {
      if (verify === "auto" && t.fsSha256) {
        const r = await fsSha256(core, filename, {}, callOpts);
        checkSame(r.size, r.sha256, size, sha, "on the device", "sent");
        verified = "sha256";
      } else {
        const sink = new MemorySink();
        await getInto(core, filename, sink, { ...o, verify: "none", onProgress: o.onProgress ? (p) => o.onProgress?.({ ...p, phase: "verify" }) : undefined });
        const back = sink.buffer();
        checkSame(back.length, sha256Hex(back), size, sha, "read back", "sent");
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
  data: Buffer;
  left: number;
}

async function getChunk(core: DeviceCore, filename: string, offset: number, len: number, opts: { timeout: number; signal?: AbortSignal }): Promise<GetChunkResult> {
  const r = await core.call<{ data?: unknown; left?: unknown }>("FS.Get", { filename, offset, len }, opts);
  if (!r || typeof r !== "object") throw new TransportError("FS.Get: malformed result");
  const data = fromBase64(r.data, "FS.Get");
  const left = typeof r.left === "number" && r.left >= 0 ? r.left : 0;
  return { data, left };
}

/** Download `filename` into a sink; returns the size and SHA-256. */
export async function getInto(core: DeviceCore, filename: string, sink: GetSink, o: GetOptions = {}): Promise<TransferResult> {
  const t = await resolveTuning(core, filename, o);
  const callOpts = { timeout: t.timeout, signal: o.signal };
  let start = sink.start;
  let first: GetChunkResult;
  try {
    first = await withAttempts(`chunk at offset ${start}`, t.attempts, o.signal, () => getChunk(core, filename, start, t.chunkSize, callOpts));
    if (start > 0 && first.data.length === 0) throw new VerifyError("the local partial file is longer than the device's file");
  } catch (e) {
    if (start === 0 || !(e instanceof DeviceError || e instanceof VerifyError)) throw e;
    debug("transfer", "get: cannot resume; starting over", { filename, from: start, error: (e as Error).message });
    await sink.restart();
    start = 0;
    first = await withAttempts("chunk at offset 0", t.attempts, o.signal, () => getChunk(core, filename, 0, t.chunkSize, callOpts));
  }
  const resumedFrom = start;
  const size = start + first.data.length + first.left;
  await sink.write(start, first.data);
  await pumpChunks(
    chunksOf(start + first.data.length, size, t.chunkSize),
    { window: t.window, attempts: t.attempts, signal: o.signal, phase: "get", total: size, already: start + first.data.length, onProgress: o.onProgress },
    async (c) => {
      const r = await getChunk(core, filename, c.offset, c.length, callOpts);
      if (r.data.length !== c.length) throw new VerifyError(`got ${r.data.length} bytes, expected ${c.length}: the file changed during the transfer`);
      await sink.write(c.offset, r.data);
    },
  );
  await sink.finish(size);
  const sha = await sink.sha256();
  let verified: TransferResult["verified"] = "size";
  if ((o.verify ?? "auto") !== "none" && t.fsSha256) {
    try {
      const r = await fsSha256(core, filename, {}, callOpts);
      checkSame(size, sha, r.size, r.sha256, "received", "on the device");
      verified = "sha256";
    } catch (e) {
      throw e instanceof RemosError ? e.inStep("verify") : e;
    }
  } else if (o.verify === "none") verified = "none";
  await sink.commit?.();
  return { size, sha256: sha, resumedFrom, chunkSize: t.chunkSize, window: t.window, verified };
}

/** Collects a download in memory. */
export class MemorySink implements GetSink {
  readonly start = 0;
  private parts = new Map<number, Buffer>();
  private size = 0;
  private out: Buffer | undefined;

  async write(offset: number, data: Buffer): Promise<void> {
    this.parts.set(offset, data);
  }
  async restart(): Promise<void> {
    this.parts.clear();
  }
  async finish(size: number): Promise<void> {
    this.size = size;
    const out = Buffer.alloc(size);
    for (const [off, d] of this.parts) d.copy(out, off);
    this.parts.clear();
    this.out = out;
  }
  buffer(): Buffer {
    return this.out ?? Buffer.alloc(this.size);
  }
  async sha256(): Promise<string> {
    return sha256Hex(this.buffer());
  }
}
