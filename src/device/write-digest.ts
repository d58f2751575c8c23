/**
 * The SHA-256 of a file as an upload writes it, so the check that ends the upload (`FS.Sha256` of the
 * whole file) is answered without reading the file back and hashing it again (15–30 % of an upload's
 * time on loopback).
 *
 * It exists only for a file that an `FS.Put` at offset 0 truncated and whose handle is kept between
 * chunks (device/fs-handles.ts): every chunk written through that handle is hashed in offset order
 * (chunks that complete early wait, up to HELD_MAX bytes of them). It answers only when it provably
 * covers the file: every byte from 0 to the file's size was hashed once, no write failed, and the file's
 * stat (size, mtime, ctime) is the one taken after the last of these writes finished. Any FS.Put write
 * to the same file (by device and inode) that does not go through it, under another name or a whole-file
 * FS.Put included, gives it up (FsHandles.writeStarting), as does a write already under way when it is
 * made. Given up is for good: FS.Sha256 then reads the file as before.
 *
 * What the agent cannot see is another process writing to the file: a stat that changed between our
 * writes or after the last one gives the digest up, but a write by another process while one of ours is
 * under way, or one that leaves size and timestamps as they were (within the file system's timestamp
 * granularity), is not noticed. Those are races with the upload itself, whose result no check at its end
 * can vouch for (a read-back may run just before such a write too).
 */
import type { Stats } from "node:fs";
import { Sha256Stream } from "../sha256-stream.js";

/**
 * Early chunks held for hashing at most (bytes; twice a transfer's window); beyond that the digest is
 * given up. At most one per kept write handle (device/fs-handles.ts keeps 16).
 */
const HELD_MAX = 4 * 1024 * 1024;

/**
 * The first bytes in order are kept, not hashed, until this many have come: then the upload is big and
 * its hashing moves to the hashing thread (sha256-stream.ts), off the thread that decodes and writes the
 * chunks; a digest asked for before that is computed here, inline.
 */
const DECIDE_AFTER = 1024 * 1024;

interface StatKey {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function keyOf(st: Stats): StatKey {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function same(a: StatKey, st: Stats): boolean {
  return a.dev === st.dev && a.ino === st.ino && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

export class WriteDigest {
  /** False once given up. */
  private live = true;
  /** Where bytes [0, hashed) went: undefined while the first ones are kept in `first` (DECIDE_AFTER). */
  private hash: Sha256Stream | undefined;
  private first: Buffer[] = [];
  private firstBytes = 0;
  /** Bytes [0, hashed) are hashed (or kept in `first`). */
  private hashed = 0;
  /** Chunks written beyond `hashed`, waiting for the gap before them. */
  private readonly held = new Map<number, Buffer>();
  private heldBytes = 0;
  /** Our writes under way: while any is, the file's stat is ours to change. */
  private writing = 0;
  /** The stat after our last write finished with none under way. */
  private settled: StatKey | undefined;
  private digest: Promise<string> | undefined;

  /** The file's stat when it was truncated (offset-0 FS.Put, before its write). */
  constructor(truncated: Stats) {
    if (truncated.size !== 0) this.live = false;
    this.settled = keyOf(truncated);
  }

  get valid(): boolean {
    return this.live;
  }

  /**
   * A write is about to start. With none of ours under way, the file's stat (`current()`, undefined when
   * unknown) must still be the one our last write left: a change we did not make ends the digest.
   */
  begin(current: () => Stats | undefined): void {
    if (this.writing === 0 && this.valid) {
      const st = current();
      if (st === undefined || this.settled === undefined || !same(this.settled, st)) this.giveUp();
    }
    this.writing++;
  }

  /**
   * A write started with begin() ended: `data` written in full at `offset`, or `data` undefined when it
   * failed or wrote elsewhere; `after` is the file's stat when it ended (undefined: unknown).
   */
  end(offset: number, data: Buffer | undefined, after: Stats | undefined): void {
    this.writing--;
    if (data === undefined || after === undefined) this.giveUp();
    else this.add(offset, data);
    if (this.writing === 0 && after !== undefined && this.valid) this.settled = keyOf(after);
  }

  /**
   * The whole file's SHA-256 (hex) when this digest provably covers the file whose stat is `current`
   * (decided now; the hex may come from the hashing thread).
   */
  sha256(current: Stats): Promise<string> | undefined {
    if (!this.valid || this.writing > 0 || this.held.size > 0 || this.settled === undefined) return undefined;
    if (!same(this.settled, current) || this.hashed !== current.size) return undefined;
    // asked for before DECIDE_AFTER bytes: a small upload, hashed here
    const hash = this.hash ?? this.startHash(new Sha256Stream());
    // a peek: a later chunk (the file grows again) keeps hashing into the same stream
    if (this.digest === undefined) {
      const digest = hash.peek();
      digest.catch(() => {
        if (this.digest === digest) this.giveUp(); // the hashing thread failed: FS.Sha256 reads the file
      });
      this.digest = digest;
    }
    return this.digest;
  }

  private feed(data: Buffer): void {
    if (this.hash !== undefined) {
      this.hash.update(data);
      return;
    }
    this.first.push(data);
    this.firstBytes += data.length;
    if (this.firstBytes >= DECIDE_AFTER) this.startHash(Sha256Stream.big());
  }

  /** Hash into `stream` from now on, starting with the bytes kept in `first`; returns it. */
  private startHash(stream: Sha256Stream): Sha256Stream {
    for (const d of this.first) stream.update(d);
    this.first = [];
    this.hash = stream;
    return stream;
  }

  private add(offset: number, data: Buffer): void {
    if (!this.live) return;
    if (offset < this.hashed || this.held.has(offset)) {
      this.giveUp(); // a byte written twice: what counts is on disk, not in the hash
      return;
    }
    this.digest = undefined;
    if (offset > this.hashed) {
      this.held.set(offset, data);
      this.heldBytes += data.length;
      if (this.heldBytes > HELD_MAX) this.giveUp();
      return;
    }
    this.feed(data);
    this.hashed += data.length;
    let next: Buffer | undefined;
    while ((next = this.held.get(this.hashed)) !== undefined) {
      this.held.delete(this.hashed);
      this.heldBytes -= next.length;
      this.feed(next);
      this.hashed += next.length;
    }
  }

  /** Give the digest up for good (the file was written some other way). */
  giveUp(): void {
    this.live = false;
    this.hash = undefined;
    this.first = [];
    this.digest = undefined;
    this.held.clear();
    this.heldBytes = 0;
  }
}
