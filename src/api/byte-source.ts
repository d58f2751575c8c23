/**
 * Where uploaded bytes come from (file put, OTA): bytes in memory, or a local file read chunk by chunk at
 * its offset from an open file handle, so a 200 MB firmware is never held in memory at once. Also the
 * streamed SHA-256 of a source's prefix, with the hashes of every `step`-byte boundary on the way (what a
 * resumed upload compares with the device's `FS.Sha256` of the same prefixes).
 */
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { AbortedError, IoError } from "../errors.js";

/** Bytes to upload, read by range. */
export interface ByteSource {
  /** Total bytes. */
  readonly size: number;
  /** Bytes [offset, offset+length) (clamped at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A source holding a resource (an open file) until closed. */
export interface ClosableByteSource extends ByteSource {
  close(): Promise<void>;
}

/** How much a streamed hash reads at once. */
const HASH_READ_SIZE = 1024 * 1024;

/** Bytes already in memory. */
export function memorySource(data: Uint8Array): ByteSource {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, Math.min(data.length, offset + length)),
  };
}

export function isByteSource(v: unknown): v is ByteSource {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array) && typeof (v as ByteSource).read === "function";
}

/** A local file, read at each chunk's offset. Its size is taken at open; a file that shrinks meanwhile is an IoError. */
export async function openFileSource(path: string): Promise<ClosableByteSource> {
  let fh: FileHandle;
  let size: number;
  try {
    fh = await open(path, "r");
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new Error("not a regular file");
    }
    size = st.size;
  } catch (e) {
    throw new IoError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let closed = false;
  return {
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.alloc(n);
      let got = 0;
      try {
        while (got < n) {
          const { bytesRead } = await fh.read(buf, got, n - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
      } catch (e) {
        throw new IoError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
      }
      if (got !== n) throw new IoError(`cannot read ${path}: it shrank while being sent (${got} of ${n} bytes at offset ${offset})`);
      return buf;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close().catch(() => undefined);
    },
  };
}

export interface PrefixHashes {
  /** SHA-256 (hex) of the first `len` bytes. */
  sha256: string;
  /** SHA-256 (hex) of the first k·step bytes for every 0 < k·step < len (only when a step was given). */
  at: Map<number, string>;
}

/** Streamed SHA-256 of the first `len` bytes of a source; with `step`, also every step boundary's prefix hash. */
export async function hashPrefix(src: ByteSource, len: number, options: { step?: number; signal?: AbortSignal } = {}): Promise<PrefixHashes> {
  const h = createHash("sha256");
  const at = new Map<number, string>();
  const step = options.step && options.step > 0 ? options.step : 0;
  let done = 0;
  while (done < len) {
    if (options.signal?.aborted) throw new AbortedError("hashing the local file: aborted");
    let next = Math.min(len, done + HASH_READ_SIZE);
    if (step) next = Math.min(next, (Math.floor(done / step) + 1) * step);
    const piece = await src.read(done, next - done);
    if (piece.length !== next - done) throw new IoError(`the source has ${done + piece.length} bytes, expected ${len}`);
    h.update(piece);
    done = next;
    if (step && done % step === 0 && done < len) at.set(done, h.copy().digest("hex"));
  }
  return { sha256: h.digest("hex"), at };
}
