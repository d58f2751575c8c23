/**
 * Writes to one open file with at most one write in flight: the writes asked for while one is under way
 * wait, then go out together, each run of them at contiguous positions as one `pwritev`. An upload's
 * chunks arrive faster than the thread pool hands back each write (its completions wait while the agent
 * keeps reading the socket), so a window of chunks becomes a few writes instead of one pool trip each:
 * each trip costs the agent a thread wake-up and a loop wake-up, about as much as the write itself on
 * the bench VM. Writes to one file are serialised by the kernel anyway (the inode's lock), so nothing
 * that could run in parallel waits.
 *
 * Every write settles on its own: it resolves once all its bytes are written, or rejects with the error
 * of the (p)write that carried it. A short pwritev settles the writes it covered in full and writes the
 * rest one by one. Writes without a position (append mode) are never joined.
 */
import type { FileHandle } from "node:fs/promises";

/** At most this many buffers in one pwritev (IOV_MAX is 1024 on Linux). */
const MAX_RUN = 64;

interface Pending {
  data: Buffer;
  position: number | null;
  resolve(): void;
  reject(e: unknown): void;
}

export class WriteBatcher {
  private readonly fh: FileHandle;
  private queue: Pending[] = [];
  private busy = false;

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  /** Write all of `data` at `position` (null: at the end, append mode). */
  write(data: Buffer, position: number | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ data, position, resolve, reject });
      if (!this.busy) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        // appends keep their order; positioned writes go by position (overlaps are not joined)
        if (batch.every((p) => p.position !== null)) batch.sort((a, b) => (a.position as number) - (b.position as number));
        for (let i = 0; i < batch.length; ) {
          let j = i + 1;
          let end = batch[i].position === null ? Number.NaN : (batch[i].position as number) + batch[i].data.length;
          while (j < batch.length && j - i < MAX_RUN && batch[j].position === end) {
            end += batch[j].data.length;
            j++;
          }
          await this.writeRun(batch.slice(i, j));
          i = j;
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async writeRun(run: Pending[]): Promise<void> {
    if (run.length === 1) return this.writeOne(run[0], 0);
    let total = 0;
    for (const p of run) total += p.data.length;
    let written: number;
    try {
      written = (await this.fh.writev(run.map((p) => p.data), run[0].position as number)).bytesWritten;
    } catch (e) {
      for (const p of run) p.reject(e);
      return;
    }
    if (written === total) {
      for (const p of run) p.resolve();
      return;
    }
    for (const p of run) {
      if (written >= p.data.length) {
        written -= p.data.length;
        p.resolve();
      } else {
        await this.writeOne(p, written);
        written = 0;
      }
    }
  }

  /** One write, from byte `from` of it on, looping over short writes; a write of 0 bytes is an error. */
  private async writeOne(p: Pending, from: number): Promise<void> {
    try {
      let done = from;
      while (done < p.data.length) {
        const position = p.position === null ? null : p.position + done;
        const { bytesWritten } = await this.fh.write(p.data, done, p.data.length - done, position);
        if (bytesWritten === 0) throw new Error("short write: 0 bytes written");
        done += bytesWritten;
      }
      p.resolve();
    } catch (e) {
      p.reject(e);
    }
  }
}
