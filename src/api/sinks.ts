/**
 * Destinations for downloads (GetSink, used by fs-transfer.ts): memory, a local file that survives
 * interruption and is resumed, a stream (stdout) fed strictly in order although chunks arrive out of order,
 * and a comparison with the bytes that were uploaded (read-back verify and resume, without keeping a copy).
 * InOrder hashes chunks in offset order as they arrive (also used by uploads).
 *
 * FileSink writes to `<path>.part` and renames it over `<path>` only when complete (after fsync), so a
 * partial download never looks like the real file; the next download of the same path resumes from the
 * `.part` file's size. It hashes what it writes in offset order too: only a resumed `.part` file's prefix
 * is read back (once, at open), never the whole download at its end.
 */
import { constants } from "node:buffer";
import { type FileHandle, open, rename, stat, unlink } from "node:fs/promises";
import type { Writable } from "node:stream";
import { IoError } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { Sha256Stream } from "../sha256-stream.js";

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
  /** Optional: the file's size, told once it is known (before the first chunk is written). */
  expectSize?(size: number): void;
  /** Called once the content is verified (a file sink moves it into place). */
  commit?(): Promise<void>;
  /**
   * Optional: take a chunk as the device's base64 text and decode it in place; returns the bytes decoded
   * (at most `length`). `size` is the whole file's size, known before the first chunk is delivered.
   */
  writeBase64?(offset: number, text: string, length: number, size: number): Promise<number>;
}

function ioError(what: string, e: unknown): IoError {
  return new IoError(`${what}: ${(e as Error).message}`, { cause: e });
}

/** Reads a resumed file's first `length` bytes into `order` (1 MiB at a time); stops early at its end. */
async function hashResumedPrefix(handle: FileHandle, length: number, order: InOrder): Promise<void> {
  const piece = Buffer.allocUnsafe(Math.min(length, 1024 * 1024));
  while (order.next < length) {
    const { bytesRead } = await handle.read(piece, 0, Math.min(piece.length, length - order.next), order.next);
    if (bytesRead === 0) return;
    order.add(order.next, piece.subarray(0, bytesRead)); // in order, so hashed at once (not held)
  }
}

/** What the sinks share: what arrives is hashed in offset order (InOrder), big transfers on the hashing thread. */
abstract class HashedSink {
  protected order: InOrder;

  constructor(order = new InOrder()) {
    this.order = order;
  }

  expectSize(size: number): void {
    this.order.expect(size);
  }

  async sha256(): Promise<string> {
    return this.order.sha256();
  }
}

export class FileSink extends HashedSink implements GetSink {
  readonly path: string;
  readonly partPath: string;
  private handle: FileHandle;
  private startAt: number;

  /** `order`: what is written, hashed in offset order from 0 (a resumed prefix first). */
  private constructor(path: string, handle: FileHandle, start: number, order: InOrder) {
    super(order);
    this.path = path;
    this.partPath = path + ".part";
    this.handle = handle;
    this.startAt = start;
  }

  /** Open `<path>.part`; with `resume` (default true) keep what it holds and continue after it. */
  static async open(path: string, options: { resume?: boolean } = {}): Promise<FileSink> {
    const part = path + ".part";
    let start = 0;
    let handle: FileHandle;
    try {
      if (options.resume !== false) {
        const st = await stat(part).catch(() => undefined);
        if (st?.isFile()) start = st.size;
      }
      handle = await open(part, start > 0 ? "r+" : "w");
    } catch (e) {
      throw ioError(`cannot write ${part}`, e);
    }
    const order = new InOrder();
    try {
      if (start > 0) await hashResumedPrefix(handle, start, order);
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw ioError(`cannot read ${part}`, e);
    }
    return new FileSink(path, handle, order.next, order);
  }

  get start(): number {
    return this.startAt;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
    } catch (e) {
      throw ioError(`cannot write ${this.partPath}`, e);
    }
    this.order.add(offset, data);
  }

  async restart(): Promise<void> {
    this.startAt = 0;
    this.order = new InOrder();
    await this.handle.truncate(0).catch((e: unknown) => {
      throw ioError(`cannot truncate ${this.partPath}`, e);
    });
  }

  async finish(size: number): Promise<void> {
    if (!this.order.complete(size)) throw new IoError(`wrote ${this.order.next} of ${size} bytes in order to ${this.partPath}`);
    try {
      await this.handle.truncate(size);
      await this.handle.sync();
      await this.handle.close();
    } catch (e) {
      throw ioError(`cannot complete ${this.partPath}`, e);
    }
  }

  /** Verified: move `<path>.part` over `<path>`. */
  async commit(): Promise<void> {
    try {
      await rename(this.partPath, this.path);
    } catch (e) {
      throw ioError(`cannot rename ${this.partPath} to ${this.path}`, e);
    }
  }

  /** Close without completing (the `.part` file stays for a later resume). */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }

  /** Remove a leftover `.part` file. */
  static async discard(path: string): Promise<void> {
    await unlink(path + ".part").catch(() => undefined);
  }
}

/** Writes chunks to a stream in offset order (holding back early ones), hashing as it goes. */
export class OrderedStreamSink extends HashedSink implements GetSink {
  readonly start = 0;
  private readonly out: Writable;

  constructor(out: Writable) {
    super();
    this.out = out;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    for (const d of this.order.add(offset, data)) {
      if (!this.out.write(d)) await new Promise<void>((resolve) => this.out.once("drain", resolve));
    }
  }

  async restart(): Promise<void> {
    throw new IoError("cannot restart a download to a stream");
  }

  async finish(size: number): Promise<void> {
    if (!this.order.complete(size)) throw new IoError(`stream got ${this.order.next} of ${size} bytes in order`);
  }
}

/**
 * Compares a download with a source as chunks arrive (in any order) without keeping a copy: the first
 * differing offset, and the SHA-256 of what arrived (fed in order; early chunks wait, at most a window).
 */
export class CompareSink extends HashedSink implements GetSink {
  readonly start = 0;
  private readonly src: ByteSource;
  private firstDiff = Infinity;
  private size = 0;

  constructor(src: ByteSource) {
    super();
    this.src = src;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const local = await this.src.read(offset, data.length);
    let i = 0;
    const n = Math.min(local.length, data.length);
    while (i < n && local[i] === data[i]) i++;
    if (i < data.length) this.firstDiff = Math.min(this.firstDiff, offset + i);
    this.order.add(offset, data);
  }

  async restart(): Promise<void> {
    this.firstDiff = Infinity;
    this.order = new InOrder();
  }

  async finish(size: number): Promise<void> {
    this.size = size;
    if (!this.order.complete(size)) throw new IoError(`compared ${this.order.next} of ${size} bytes in order`);
  }

  /** How many leading bytes of the download equal the source's. */
  identicalPrefix(): number {
    return Math.min(this.firstDiff, this.size, this.src.size);
  }
}

/**
 * Collects a download in memory, hashing the chunks in offset order as they arrive (so the SHA-256 is ready
 * when the last chunk is, with no second pass over the whole buffer).
 */
export class MemorySink extends HashedSink implements GetSink {
  readonly start = 0;
  private parts = new Map<number, Buffer>();
  private size = 0;
  private out: Buffer | undefined;

  async write(offset: number, data: Buffer): Promise<void> {
    this.parts.set(offset, data);
    this.order.add(offset, data);
  }
  /** Decodes straight into the one buffer of the whole file (allocated at the first chunk). */
  async writeBase64(offset: number, text: string, length: number, size: number): Promise<number> {
    if (this.out === undefined) {
      if (size > constants.MAX_LENGTH) throw new IoError(`a ${size}-byte file does not fit in memory`);
      this.out = Buffer.allocUnsafe(size);
    }
    if (offset + length > this.out.length) throw new IoError(`a chunk at ${offset} ends past the ${this.out.length}-byte file`);
    const n = this.out.write(text, offset, length, "base64");
    this.order.add(offset, this.out.subarray(offset, offset + n));
    return n;
  }
  async restart(): Promise<void> {
    this.parts.clear();
    this.order = new InOrder();
    this.out = undefined;
  }
  async finish(size: number): Promise<void> {
    if (!this.order.complete(size)) throw new IoError(`received ${this.order.next} of ${size} bytes in order`);
    this.size = size;
    if (this.out === undefined || this.out.length !== size) {
      const out = Buffer.allocUnsafe(size);
      this.out?.copy(out, 0, 0, Math.min(size, this.out.length));
      this.out = out;
    }
    for (const [off, d] of this.parts) d.copy(this.out, off);
    this.parts.clear();
  }
  buffer(): Buffer {
    return this.out ?? Buffer.alloc(this.size);
  }
}

/**
 * Chunks that arrive in any order, released and hashed in offset order: early chunks wait (at most a
 * window of them) until the gap before them is filled. A chunk at an offset already passed is ignored
 * (a chunk sent again after a retry).
 */
export class InOrder {
  next = 0;
  private readonly held = new Map<number, Buffer>();
  private hash: Sha256Stream;

  /** `expectedSize`: the whole stream's size when known (a big one is hashed on a worker thread). */
  constructor(expectedSize = 0) {
    this.hash = new Sha256Stream(expectedSize);
  }

  /** The size became known before anything was hashed: let it decide where the hashing runs. */
  expect(size: number): void {
    if (this.next === 0 && this.held.size === 0) this.hash = new Sha256Stream(size);
  }

  /** Take a chunk; returns the chunks now in order (possibly none), already hashed. */
  add(offset: number, data: Buffer): Buffer[] {
    if (offset < this.next) return [];
    this.held.set(offset, data);
    const ready: Buffer[] = [];
    let d: Buffer | undefined;
    while ((d = this.held.get(this.next)) !== undefined) {
      this.held.delete(this.next);
      this.hash.update(d);
      this.next += d.length;
      ready.push(d);
      if (d.length === 0) break;
    }
    return ready;
  }

  complete(size: number): boolean {
    return this.next === size && this.held.size === 0;
  }

  sha256(): Promise<string> {
    return this.hash.digest();
  }
}
