/**
 * `device.fs`: the FS.* service (spec §3.3) — list, remove, rename, mkdir — and chunked, verified
 * transfers (put/get of bytes, upload/download of local files) through the chunk pump.
 */
import type { Writable } from "node:stream";
import { TransportError, VerifyError } from "../errors.js";
import { type ByteSource, openFileSource } from "./byte-source.js";
import type { CallOpts, DeviceCore } from "./core.js";
import {
  type FsSha256Result,
  type GetOptions,
  MemorySink,
  type PutOptions,
  type TransferResult,
  fsSha256,
  getInto,
  putFile,
} from "./fs-transfer.js";
import { FileSink, OrderedStreamSink } from "./sinks.js";

export interface FsEntry {
  name: string;
  size: number;
}

export class FsApi {
  private readonly core: DeviceCore;

  constructor(core: DeviceCore) {
    this.core = core;
  }

  /** `FS.List {path}` → file names (unsorted, as the device sends them). */
  async list(path = "/", opts: CallOpts = {}): Promise<string[]> {
    const r = await this.core.call<unknown>("FS.List", { path }, opts);
    if (!Array.isArray(r)) throw new TransportError("FS.List: the device did not answer with a list");
    return r.filter((n): n is string => typeof n === "string");
  }

  /** `FS.ListExt {path}` → names with sizes. */
  async listExt(path = "/", opts: CallOpts = {}): Promise<FsEntry[]> {
    const r = await this.core.call<unknown>("FS.ListExt", { path }, opts);
    if (!Array.isArray(r)) throw new TransportError("FS.ListExt: the device did not answer with a list");
    return r
      .filter((e): e is { name: string; size?: unknown } => typeof e === "object" && e !== null && typeof (e as { name?: unknown }).name === "string")
      .map((e) => ({ name: e.name, size: typeof e.size === "number" ? e.size : 0 }));
  }

  /** `FS.Remove {filename}`. */
  async remove(filename: string, opts: CallOpts = {}): Promise<void> {
    await this.core.call("FS.Remove", { filename }, opts);
  }

  /** `FS.Rename {src, dst}`. */
  async rename(src: string, dst: string, opts: CallOpts = {}): Promise<void> {
    await this.core.call("FS.Rename", { src, dst }, opts);
  }

  /** `FS.Mkdir {path}` — served by the remos agent; real firmware has no such method (404). */
  async mkdir(path: string, opts: CallOpts = {}): Promise<void> {
    await this.core.call("FS.Mkdir", { path }, opts);
  }

  /** `FS.Sha256 {filename, offset?, len?}` (remos agent): checksum of a file or a range of it. */
  sha256(filename: string, range: { offset?: number; len?: number } = {}, opts: CallOpts = {}): Promise<FsSha256Result> {
    return fsSha256(this.core, filename, range, opts);
  }

  /**
   * Upload bytes (or a ByteSource, e.g. `openFileSource(path)`, read chunk by chunk) as `filename`
   * (windowed, retried, resumable, verified; see PutOptions).
   */
  put(filename: string, data: Uint8Array | string | ByteSource, options: PutOptions = {}): Promise<TransferResult> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    return putFile(this.core, filename, bytes, options);
  }

  /** Download `filename` into memory. */
  async get(filename: string, options: GetOptions = {}): Promise<Buffer> {
    const sink = new MemorySink();
    await getInto(this.core, filename, sink, options);
    return sink.buffer();
  }

  /** Upload a local file as `filename`, read from disk chunk by chunk at each chunk's offset (never whole). */
  async upload(localPath: string, filename: string, options: PutOptions = {}): Promise<TransferResult> {
    const src = await openFileSource(localPath);
    try {
      return await putFile(this.core, filename, src, options);
    } finally {
      await src.close();
    }
  }

  /**
   * Download `filename` to a local file. It is written as `<localPath>.part` and renamed when complete
   * and verified; an interrupted download leaves the `.part` file, which the next call resumes
   * (`resume: false` starts over).
   */
  async download(filename: string, localPath: string, options: GetOptions & { resume?: boolean } = {}): Promise<TransferResult> {
    const sink = await FileSink.open(localPath, { resume: options.resume });
    try {
      return await getInto(this.core, filename, sink, options);
    } catch (e) {
      if (e instanceof VerifyError) await FileSink.discard(localPath); // never resume from bad bytes
      throw e;
    } finally {
      await sink.abandon();
    }
  }

  /** Download `filename` to a stream (e.g. stdout), in order. */
  getToStream(filename: string, out: Writable, options: GetOptions = {}): Promise<TransferResult> {
    return getInto(this.core, filename, new OrderedStreamSink(out), options);
  }
}
