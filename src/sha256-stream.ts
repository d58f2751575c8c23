/**
 * SHA-256 of bytes fed in order, for transfers (api/sinks.ts InOrder on the client, device/write-digest.ts
 * on the device). A big stream is hashed on a worker thread, so the hashing runs beside the transfer
 * instead of on the thread that also encodes, decodes and answers: the bytes are copied into 1 MiB
 * batches, whose memory is handed to the worker (transferred, not copied again) and handed back for the
 * next batch. Smaller streams, and every stream on a machine with one core, are hashed on the calling
 * thread.
 *
 * One worker per process, started by the first big stream and kept (unref'd: it never holds the process
 * open, except while a digest is awaited).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { type Hash, createHash } from "node:crypto";
import { IoError } from "./errors.js";

/** Streams expected to be at least this big are hashed on the worker. */
export const OFFLOAD_MIN_BYTES = 8 * 1024 * 1024;
const BATCH_BYTES = 1024 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = new Map();
parentPort.on("message", (m) => {
  let h = hashes.get(m.id);
  if (h === undefined) {
    if (m.drop) return;
    h = createHash("sha256");
    hashes.set(m.id, h);
  }
  if (m.bytes !== undefined) h.update(new Uint8Array(m.bytes, 0, m.length));
  if (m.drop) hashes.delete(m.id);
  else if (m.ask !== undefined) {
    if (m.end) hashes.delete(m.id);
    parentPort.postMessage({ ask: m.ask, hex: (m.end ? h : h.copy()).digest("hex") });
  }
  if (m.bytes !== undefined) parentPort.postMessage({ spare: m.bytes }, [m.bytes]);
});
`;

/** A digest asked for (`ask`: the request's number), or a batch's memory handed back for the next batch. */
type Reply = { ask: number; hex: string; spare?: undefined } | { spare: ArrayBuffer };

/** Batch memory handed back by the worker, reused instead of fresh allocations (whose page faults cost). */
const spares: ArrayBuffer[] = [];
const SPARES_MAX = 8;

interface Waiter {
  resolve(hex: string): void;
  reject(e: Error): void;
}

/** The worker thread and the digests awaited from it. A stream stays with the thread it started on. */
class HashThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiter>();
  /** Why the thread is gone (undefined while it runs). */
  failure: IoError | undefined;

  constructor() {
    // no inherited flags: the source is a plain script (not ESM under --input-type), and no loader (--import) is needed
    const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    this.worker = w;
    w.unref();
    w.on("message", (m: Reply) => {
      if (m.spare !== undefined) {
        if (spares.length < SPARES_MAX) spares.push(m.spare);
        return;
      }
      const waiter = this.waiting.get(m.ask);
      this.waiting.delete(m.ask);
      if (this.waiting.size === 0) w.unref();
      waiter?.resolve(m.hex);
    });
    w.on("error", (e) => this.fail(e));
    w.on("exit", (code) => this.fail(new Error(`it exited with code ${code}`)));
  }

  post(message: object, transfer: ArrayBuffer[] = []): void {
    if (this.failure === undefined) this.worker.postMessage(message, transfer);
  }

  /** A digest from the worker: `send(ask)` posts the message that asks for it (the last batch, `ask`). */
  ask(send: (ask: number) => void): Promise<string> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const ask = nextAsk++;
    return new Promise<string>((resolve, reject) => {
      this.waiting.set(ask, { resolve, reject });
      this.worker.ref();
      send(ask);
    });
  }

  /** For tests: stop the thread as if it had died. */
  stop(): Promise<number> {
    return this.worker.terminate();
  }

  private fail(e: Error): void {
    if (this.failure !== undefined) return;
    this.failure = new IoError(`the hashing thread failed: ${e.message}`, { cause: e });
    if (current === this) current = undefined;
    for (const waiter of this.waiting.values()) waiter.reject(this.failure);
    this.waiting.clear();
  }
}

let current: HashThread | undefined;
let nextId = 1;
let nextAsk = 1;

function hashThread(): HashThread {
  current ??= new HashThread();
  return current;
}

/** For tests: stop the worker thread (what happens to streams on it when it dies). */
export function stopHashThreadForTests(): Promise<number> {
  return hashThread().stop();
}

/** Drops a stream's hash in the worker when the stream is garbage without a digest (an abandoned transfer). */
const abandoned = new FinalizationRegistry<{ thread: HashThread; id: number }>(({ thread, id }) => thread.post({ id, drop: true }));

export class Sha256Stream {
  private readonly inline: Hash | undefined;
  private readonly thread: HashThread | undefined;
  private readonly id: number = 0;
  private batch: Buffer | undefined;
  private filled = 0;
  private result: Promise<string> | undefined;

  /** `expectedSize`: how many bytes will be fed, when known (decides where the hashing runs). */
  constructor(expectedSize = 0) {
    if (expectedSize < OFFLOAD_MIN_BYTES || availableParallelism() < 2) {
      this.inline = createHash("sha256");
      return;
    }
    this.thread = hashThread();
    this.id = nextId++;
    abandoned.register(this, { thread: this.thread, id: this.id }, this);
  }

  /** A stream known to be big (on the worker thread when there are cores for it). */
  static big(): Sha256Stream {
    return new Sha256Stream(OFFLOAD_MIN_BYTES);
  }

  /** Feeds bytes; they are copied (or hashed) before this returns, so the caller may reuse them. */
  update(data: Uint8Array): void {
    if (this.result !== undefined) throw new Error("Sha256Stream: update after digest");
    if (this.inline !== undefined) {
      this.inline.update(data);
      return;
    }
    let at = 0;
    while (at < data.length) {
      if (this.batch === undefined) {
        const spare = spares.pop();
        this.batch = spare === undefined ? Buffer.allocUnsafeSlow(BATCH_BYTES) : Buffer.from(spare);
      }
      const n = Math.min(data.length - at, this.batch.length - this.filled);
      this.batch.set(data.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.batch.length) this.post({});
    }
  }

  /** The hex digest of everything fed so far; the stream goes on (more may be fed after). */
  peek(): Promise<string> {
    if (this.result !== undefined) return this.result;
    if (this.inline !== undefined) return Promise.resolve(this.inline.copy().digest("hex"));
    return (this.thread as HashThread).ask((ask) => this.post({ ask }));
  }

  /** The hex digest of everything fed, which ends the stream (later calls return the same promise). */
  digest(): Promise<string> {
    if (this.result !== undefined) return this.result;
    if (this.inline !== undefined) {
      this.result = Promise.resolve(this.inline.digest("hex"));
      return this.result;
    }
    abandoned.unregister(this);
    this.result = (this.thread as HashThread).ask((ask) => this.post({ ask, end: true }));
    return this.result;
  }

  /** Posts the batch being filled (if any) with `extra` (a digest asked for). */
  private post(extra: { ask?: number; end?: boolean }): void {
    const thread = this.thread as HashThread;
    const batch = this.batch;
    if (batch === undefined) {
      thread.post({ id: this.id, ...extra });
      return;
    }
    this.batch = undefined;
    const length = this.filled;
    this.filled = 0;
    const bytes = batch.buffer as ArrayBuffer;
    thread.post({ id: this.id, bytes, length, ...extra }, [bytes]);
  }
}
