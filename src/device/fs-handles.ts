/**
 * Open file handles kept between FS.Put / FS.Get / FS.Sha256 calls on the same file, so a chunked
 * transfer costs one `stat` per chunk instead of a path check (lstat + realpath), an open, an fstat and a
 * close. A kept handle is used again only while the device name still leads to the same file: each use
 * stats the host path and compares device and inode with the handle's (a file removed, renamed over,
 * replaced or swapped for a symlink since is opened afresh, through the full path check). At most
 * `max` handles are kept (least recently used go first); a handle unused for `idleMs` is closed. Handles
 * in use are closed only when their last user is done. Requests that find nothing kept while another one
 * is opening the same file (the first window of a download: up to 8 FS.Get at once) wait for that open and
 * share its handle, instead of each opening, checking and closing the file on its own; if that open fails,
 * each opens the file itself (so each gets its own error).
 */
import { type Stats, fstatSync, statSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { debug } from "../log.js";
import type { FsRoot } from "./fsroot.js";
import { WriteBatcher } from "./write-batcher.js";
import { WriteDigest } from "./write-digest.js";

/** "read": opened read-only; "write": opened read-write ("r+", or "w" when the caller truncated it). */
export type HandleMode = "read" | "write";

interface Entry {
  key: string;
  path: string;
  fh: FileHandle;
  dev: number;
  ino: number;
  users: number;
  lastUsed: number;
  dropped: boolean;
  /** The upload's running SHA-256, for a write handle kept since the FS.Put that truncated the file. */
  digest: WriteDigest | undefined;
  /** Its writes, one in flight at a time (made at the first write). */
  writer: WriteBatcher | undefined;
}

/** A handle lent out by FsHandles.acquire: give it back with release(). */
export interface LentHandle {
  fh: FileHandle;
  /** The file's stat at acquire time (its size for FS.Get / FS.Sha256). */
  stats: Stats;
  /** The host path it was opened as. */
  path: string;
  /** The running SHA-256 of an upload (write handles kept since the truncating FS.Put), else undefined. */
  digest: WriteDigest | undefined;
  /** Write all of `data` at `position` (null: append) through the handle's WriteBatcher. */
  write(data: Buffer, position: number | null): Promise<void>;
  release(): Promise<void>;
}

/** Writes to one file (by device and inode) under way, and the upload digest that describes it, if any. */
interface FileWrites {
  writing: number;
  digest: WriteDigest | undefined;
}

/** A kept handle's key: its mode, the FS root and the name as the root reads it (`./f`, `f` and `d//../f` alike). */
function keyOf(mode: HandleMode, root: FsRoot, name: string): string {
  return `${mode}\u0000${root.root}\u0000${root.parts(name).join("/")}`;
}

/** The file's stat by descriptor, or undefined when fstat fails. */
function fstatOrUndefined(fd: number): Stats | undefined {
  try {
    return fstatSync(fd);
  } catch {
    return undefined;
  }
}

function fileKey(stats: Stats): string {
  return `${stats.dev}:${stats.ino}`;
}

export class FsHandles {
  private readonly entries = new Map<string, Entry>();
  private readonly files = new Map<string, FileWrites>();
  /** Opens under way, by key: resolves with the kept entry, or undefined when that open failed. */
  private readonly opening = new Map<string, Promise<Entry | undefined>>();
  private readonly max: number;
  private readonly idleMs: number;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: { max?: number; idleMs?: number } = {}) {
    this.max = options.max ?? 16;
    this.idleMs = options.idleMs ?? 2000;
  }

  /**
   * A handle on device file `name` under `root`: a kept one when it is still the file the name leads to,
   * else `open()`ed (the caller's open with its flags and errors; the name is checked by root.resolve
   * first). Throws what resolve/open throw; a non-file is refused by `isFile` (false → caller's error).
   */
  async acquire(
    root: FsRoot,
    name: string,
    mode: HandleMode,
    opener: (path: string) => Promise<FileHandle>,
  ): Promise<LentHandle | { notAFile: true }> {
    const key = keyOf(mode, root, name); // refuses bad names even when a handle is kept
    const kept = this.entries.get(key);
    if (kept !== undefined) {
      const st = this.stillLeadsTo(kept);
      if (st !== undefined) return this.lend(kept, st);
      this.drop(kept);
    }
    const shared = this.opening.get(key);
    if (shared !== undefined) {
      const e = await shared;
      const st = e === undefined ? undefined : this.stillLeadsTo(e);
      if (e !== undefined && st !== undefined) return this.lend(e, st);
    }
    let settle: (e: Entry | undefined) => void = () => undefined;
    const mine = new Promise<Entry | undefined>((resolve) => (settle = resolve));
    if (shared === undefined) this.opening.set(key, mine);
    try {
      const path = await root.resolve(name);
      const fh = await opener(path);
      let st: Stats;
      try {
        st = fstatSync(fh.fd);
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw e;
      }
      if (!st.isFile()) {
        await fh.close().catch(() => undefined);
        return { notAFile: true };
      }
      const e = this.keep(key, path, fh, st);
      settle(e);
      return this.lend(e, st);
    } finally {
      settle(undefined); // no effect once settled with the entry
      if (this.opening.get(key) === mine) this.opening.delete(key);
    }
  }

  /**
   * The file's stat when the entry's name still leads to the file its handle has open (not dropped, same
   * device and inode, a regular file), else undefined. Synchronous on purpose: a stat of a local path takes
   * microseconds, a round trip through libuv's thread pool costs more than that in wake-ups (it was the
   * agent's biggest per-chunk cost).
   */
  private stillLeadsTo(e: Entry): Stats | undefined {
    if (e.dropped) return undefined;
    let st: Stats;
    try {
      st = statSync(e.path);
    } catch {
      return undefined;
    }
    return st.ino === e.ino && st.dev === e.dev && st.isFile() ? st : undefined;
  }

  /**
   * Keep a handle the caller opened itself (FS.Put at offset 0 opens "w" to truncate), with its fstat:
   * later writes at offsets of the same file use it, and hash what they write (device/write-digest.ts).
   * Replaces a kept one.
   */
  adopt(root: FsRoot, name: string, path: string, fh: FileHandle, stats: Stats): LentHandle {
    const e = this.keep(keyOf("write", root, name), path, fh, stats);
    const digest = new WriteDigest(stats);
    e.digest = digest;
    const file = this.fileOf(stats);
    file.digest?.giveUp();
    if (file.writing > 0) digest.giveUp(); // writes under way that it will not see
    file.digest = digest;
    return this.lend(e, stats);
  }

  /**
   * The whole-file SHA-256 and size of device file `name` from the running digest of an upload whose write
   * handle is still kept, without opening the file: only while the name still leads to the file that handle
   * has open and the digest provably describes it (no write to it under way). The FS.Sha256 that ends an
   * upload.
   */
  uploadedSha256(root: FsRoot, name: string): { sha256: Promise<string>; size: number } | undefined {
    const e = this.entries.get(keyOf("write", root, name));
    if (e === undefined || e.digest === undefined) return undefined;
    const st = this.stillLeadsTo(e);
    if (st === undefined) return undefined;
    const file = this.files.get(fileKey(st));
    if (file === undefined || file.digest !== e.digest || file.writing > 0) return undefined;
    const sha256 = e.digest.sha256(st);
    return sha256 === undefined ? undefined : { sha256, size: st.size };
  }

  /**
   * Every FS.Put write through a lent handle goes between writeStarting() and the function it returns,
   * called with the bytes written in full at `offset` (undefined: the write failed or was short). A write
   * that does not go through the file's running digest (another name for the file, a whole-file FS.Put, an
   * old handle) gives it up; one that does is hashed by it.
   */
  writeStarting(lent: LentHandle): (offset: number, written: Buffer | undefined) => void {
    const { stats, digest, fh } = lent;
    const key = fileKey(stats);
    const file = this.fileOf(stats);
    if (file.digest !== undefined && file.digest !== digest) {
      file.digest.giveUp();
      file.digest = undefined;
    }
    file.writing++;
    digest?.begin(() => fstatOrUndefined(fh.fd));
    return (offset, written) => {
      digest?.end(offset, written, digest.valid ? fstatOrUndefined(fh.fd) : undefined);
      file.writing--;
      if (file.writing === 0 && file.digest === undefined && this.files.get(key) === file) this.files.delete(key);
    };
  }

  private fileOf(stats: Stats): FileWrites {
    const key = fileKey(stats);
    let file = this.files.get(key);
    if (file === undefined) {
      file = { writing: 0, digest: undefined };
      this.files.set(key, file);
    }
    return file;
  }

  /** Close every kept handle on `path` (FS.Remove, FS.Rename) once its users are done. */
  forgetPath(path: string): void {
    for (const e of [...this.entries.values()]) if (e.path === path) this.drop(e);
  }

  /** Close everything kept (users still holding a handle close it when they release). */
  closeAll(): void {
    for (const e of [...this.entries.values()]) this.drop(e);
  }

  private keep(key: string, path: string, fh: FileHandle, st: Stats): Entry {
    const old = this.entries.get(key);
    if (old !== undefined) this.drop(old);
    const e: Entry = { key, path, fh, dev: st.dev, ino: st.ino, users: 0, lastUsed: Date.now(), dropped: false, digest: undefined, writer: undefined };
    this.entries.set(key, e);
    while (this.entries.size > this.max) {
      const oldest = this.entries.values().next().value as Entry; // Map order = least recently kept/used first
      this.drop(oldest);
    }
    this.startSweeper();
    return e;
  }

  private lend(e: Entry, stats: Stats): LentHandle {
    e.users++;
    e.lastUsed = Date.now();
    if (!e.dropped) {
      // move to the end: most recently used
      this.entries.delete(e.key);
      this.entries.set(e.key, e);
    }
    let released = false;
    return {
      fh: e.fh,
      stats,
      path: e.path,
      digest: e.digest,
      write: (data, position) => (e.writer ??= new WriteBatcher(e.fh)).write(data, position),
      release: async () => {
        if (released) return;
        released = true;
        e.users--;
        e.lastUsed = Date.now();
        if (e.dropped && e.users === 0) await this.close(e);
      },
    };
  }

  private drop(e: Entry): void {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    if (e.dropped) return;
    e.dropped = true;
    if (e.digest !== undefined) {
      const key = `${e.dev}:${e.ino}`;
      const file = this.files.get(key);
      if (file !== undefined && file.digest === e.digest) {
        file.digest = undefined;
        if (file.writing === 0) this.files.delete(key);
      }
    }
    if (e.users === 0) void this.close(e);
    if (this.entries.size === 0) this.stopSweeper();
  }

  private async close(e: Entry): Promise<void> {
    await e.fh.close().catch((err: unknown) => debug("device", "closing a kept file handle failed", { error: String(err) }));
  }

  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const e of [...this.entries.values()]) if (e.users === 0 && now - e.lastUsed >= this.idleMs) this.drop(e);
    }, Math.max(50, Math.floor(this.idleMs / 2)));
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
