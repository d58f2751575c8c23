/**
 * RpcClient: calls over one channel with many in flight, matched by id (spec §1.3: ids in mos's range,
 * sequential from a random base; a digit-string echo matches its number); per-call
 * timeout (one timer per client, armed for the earliest deadline: no timer made and cleared per call) and
 * AbortSignal; in-frame digest retry on a 401 challenge (spec §4.3); every pending call fails
 * promptly with ChannelClosedError when the channel closes.
 *
 * Requests that arrive from the device are notifications (GPIO.Int...) for `onNotification` listeners; a
 * request with an id is answered 404 as mos does (`Method [<m>] not found`).
 */
import {
  AbortedError,
  AuthError,
  ChannelClosedError,
  DeviceError,
  RemosError,
  TimeoutError,
  errorMessage,
} from "../errors.js";
import { debug } from "../log.js";
import type { Channel } from "./channel.js";
import { type Credentials, frameAuthFor, parseFrameChallenge } from "./digest.js";
import { type DecodedFrame, type Frame, type FrameId, ID_MIN } from "./frame.js";

export interface RpcClientOptions {
  /** `src` of requests (mos uses "mos"). Channels that route by src (MQTT) override it. */
  src?: string;
  /** `dst` of requests; omitted by default (then any device on the link answers). */
  dst?: string;
  /** Default per-call timeout in ms (default 20000, as mos). */
  timeoutMs?: number;
  /** Send the deprecated `args` instead of `params` (mos `--mgrpc-compat-args`). */
  compatArgs?: boolean;
  /** Credentials for in-frame digest auth, used when the device answers 401. */
  credentials?: Credentials;
  /** Answer requests that arrive from the device with 404 (default true). */
  answerRequests?: boolean;
}

export interface CallOptions {
  /** Timeout in ms for this call (default: the client's). 0 = no timeout. */
  timeout?: number;
  signal?: AbortSignal;
  dst?: string;
}

export interface Notification {
  method: string;
  params: unknown;
  frame: Frame;
}

interface Pending {
  /** The request id (a number this client made: idBase + sequence). */
  id: number;
  method: string;
  frame: Frame;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
  authTried: boolean;
  /** performance.now() deadline, or Infinity (no timeout). */
  deadline: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Ids are sequential from a random base, so the pending table is a ring indexed by sequence. */
const SEQ_LIMIT = 2 ** 31;

export class RpcClient {
  readonly channel: Channel;
  private readonly options: RpcClientOptions;
  /**
   * Calls waiting for an answer in a ring of slots indexed by the id's sequence number (id - idBase,
   * modulo its size; it doubles when half full). Ids stay in mos's range [2^40, 2^41) and
   * unique per client; matching costs an index and a compare, with no per-call table entry to allocate.
   */
  private slots: (Pending | undefined)[] = new Array<Pending | undefined>(64);
  private mask = 63;
  private readonly idBase = ID_MIN + Math.floor(Math.random() * (ID_MIN - SEQ_LIMIT));
  private seq = 0;
  private pendingCount = 0;
  /**
   * The one timeout timer, armed for `timerAt` (no later than the earliest pending deadline). A call that
   * ends leaves it armed: when it fires it fails what is due and re-arms for the earliest deadline left.
   * It holds the process open only while calls are pending (ref/unref, a counter, no timer churn).
   */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** Pending calls with a deadline (the timer is ref'd while there are any). */
  private timed = 0;
  private readonly notificationListeners = new Set<(n: Notification) => void>();
  private readonly offFrame: () => void;
  private readonly offClose: () => void;

  constructor(channel: Channel, options: RpcClientOptions = {}) {
    this.channel = channel;
    this.options = options;
    this.offFrame = channel.onFrame((r) => this.onFrame(r));
    this.offClose = channel.onClose((reason) =>
      this.failAll(new ChannelClosedError(reason ? `channel closed: ${reason.message}` : "channel closed", { cause: reason })),
    );
  }

  /** Number of calls waiting for an answer. */
  get inFlight(): number {
    return this.pendingCount;
  }

  /**
   * Call a method; resolves with its result (null when the device sends none). Rejects with DeviceError
   * (non-zero error.code), AuthError, TimeoutError, AbortedError, ChannelClosedError, FrameTooLargeError
   * or TransportError.
   */
  call<R = unknown>(method: string, params?: unknown, options: CallOptions = {}): Promise<R> {
    const timeoutMs = options.timeout ?? this.options.timeoutMs ?? 20_000;
    if (this.channel.closed) return Promise.reject(new ChannelClosedError());
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortedError(`${method} aborted`));
    const id = this.nextId();
    const frame: Frame = {};
    if (this.options.src !== undefined) frame.src = this.options.src;
    const dst = options.dst ?? this.options.dst;
    if (dst) frame.dst = dst;
    frame.id = id;
    frame.method = method;
    if (params !== undefined) {
      if (this.options.compatArgs) frame.args = params;
      else frame.params = params;
    }
    return new Promise<R>((resolve, reject) => {
      const p: Pending = {
        id,
        method,
        frame,
        resolve: resolve as (v: unknown) => void,
        reject,
        authTried: false,
        deadline: timeoutMs > 0 ? performance.now() + timeoutMs : Infinity,
        timeoutMs,
        signal,
        onAbort: undefined,
      };
      this.insert(p);
      if (timeoutMs > 0) this.timing(p.deadline);
      if (signal) {
        p.onAbort = (): void => {
          if (this.take(id) === p) reject(new AbortedError(`${method} aborted`));
        };
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      this.channel.send(frame).catch((e: unknown) => {
        if (this.take(id) === p) reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  /** Send a notification (a request without id: never answered). */
  async notify(method: string, params?: unknown): Promise<void> {
    const frame: Frame = {};
    if (this.options.src !== undefined) frame.src = this.options.src;
    if (this.options.dst) frame.dst = this.options.dst;
    frame.method = method;
    if (params !== undefined) frame.params = params;
    await this.channel.send(frame);
  }

  onNotification(listener: (n: Notification) => void): () => void {
    this.notificationListeners.add(listener);
    return () => this.notificationListeners.delete(listener);
  }

  /** Detach from the channel and fail pending calls (the channel itself stays open). */
  detach(): void {
    this.offFrame();
    this.offClose();
    this.failAll(new ChannelClosedError("client detached"));
  }

  /** Close the channel; pending calls fail with ChannelClosedError. */
  async close(): Promise<void> {
    this.failAll(new ChannelClosedError("client closed"));
    await this.channel.close();
  }

  /** The next id whose slot is free (a call that never ends only makes later ids skip its slot). */
  private nextId(): number {
    if (this.pendingCount * 2 >= this.mask + 1) this.grow();
    for (;;) {
      if (this.seq >= SEQ_LIMIT) this.seq = 0;
      const seq = this.seq++;
      if (this.slots[seq & this.mask] === undefined) return this.idBase + seq;
    }
  }

  private insert(p: Pending): void {
    this.slots[(p.id - this.idBase) & this.mask] = p;
    this.pendingCount++;
  }

  /** Double the ring (kept at most half full) and re-place every pending call. */
  private grow(): void {
    const old = this.slots;
    this.mask = this.mask * 2 + 1;
    this.slots = new Array<Pending | undefined>(this.mask + 1);
    for (const p of old) if (p) this.slots[(p.id - this.idBase) & this.mask] = p;
  }

  /** A call with this deadline is pending: the timer must fire by then and hold the process open. */
  private timing(deadline: number): void {
    if (this.timed++ === 0) this.timer?.ref();
    if (deadline < this.timerAt) this.arm(deadline);
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(RpcClient.timerFired, Math.max(0, at - performance.now()), this);
    if (this.timed === 0) this.timer.unref();
  }

  /** Fail the calls that are due; re-arm for the earliest deadline left (none: the timer is dropped). */
  private static timerFired(client: RpcClient): void {
    client.timer = undefined;
    client.timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const p of client.slots) {
      if (!p || p.deadline === Infinity) continue;
      if (p.deadline <= now + 1) {
        if (client.take(p.id) === p) p.reject(new TimeoutError(`${p.method}: no answer within ${p.timeoutMs} ms`, p.timeoutMs));
      } else if (p.deadline < next) next = p.deadline;
    }
    if (next < Infinity) client.arm(next);
  }

  /** The pending call with this id, removed from the table with its timer and abort listener; else undefined. */
  private take(id: number): Pending | undefined {
    const seq = id - this.idBase;
    if (!(seq >= 0 && seq < SEQ_LIMIT)) return undefined;
    const i = seq & this.mask;
    const p = this.slots[i];
    if (p === undefined || p.id !== id) return undefined;
    this.slots[i] = undefined;
    this.pendingCount--;
    if (p.deadline !== Infinity && --this.timed === 0) this.timer?.unref();
    if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
    return p;
  }

  private failAll(e: RemosError): void {
    for (const p of this.slots) if (p && this.take(p.id) === p) p.reject(e);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** A response's id as this client's number: ids come back as numbers, or as digit strings from some peers. */
  private static idOf(id: FrameId): number | undefined {
    if (typeof id === "number") return id;
    return /^[0-9]{1,16}$/.test(id) ? Number(id) : undefined;
  }

  private onFrame({ frame }: DecodedFrame): void {
    if (typeof frame.method === "string") {
      this.onRequest(frame);
      return;
    }
    if (frame.id === undefined) {
      debug("rpc", "response without id dropped");
      return;
    }
    const id = RpcClient.idOf(frame.id);
    const p = id === undefined ? undefined : this.peek(id);
    if (!p) {
      debug("rpc", "response with unknown id dropped", { id: frame.id });
      return;
    }
    const err = frame.error;
    if (err && err.code !== 0) {
      if (err.code === 401 && this.retryWithAuth(p, err.message)) return;
      this.take(p.id);
      const message = err.message ?? "";
      if (err.code === 401) {
        p.reject(
          new AuthError(
            this.options.credentials
              ? `${p.method}: authentication failed (check --rpc-creds)`
              : `${p.method}: the device requires authentication (use --rpc-creds user:pass)`,
          ),
        );
      } else {
        p.reject(new DeviceError(p.method, err.code, message));
      }
      return;
    }
    this.take(p.id);
    p.resolve(frame.result === undefined ? null : frame.result);
  }

  private peek(id: number): Pending | undefined {
    const p = this.slots[(id - this.idBase) & this.mask];
    return p !== undefined && p.id === id ? p : undefined;
  }

  /** On a digest challenge, resend the same request (same id) with an `auth` object, once. */
  private retryWithAuth(p: Pending, message: string | undefined): boolean {
    const creds = this.options.credentials;
    if (!creds || p.authTried) return false;
    const challenge = parseFrameChallenge(message);
    if (!challenge) return false;
    const auth = frameAuthFor(challenge, creds);
    if (!auth) return false;
    p.authTried = true;
    const frame: Frame = { ...p.frame, auth };
    this.channel.send(frame).catch((e: unknown) => {
      if (this.take(p.id) === p) p.reject(e instanceof Error ? e : new Error(errorMessage(e)));
    });
    return true;
  }

  private onRequest(frame: Frame): void {
    const method = frame.method as string;
    if (frame.id === undefined) {
      for (const l of this.notificationListeners) {
        try {
          l({ method, params: frame.params, frame });
        } catch (e) {
          debug("rpc", "notification listener threw", { method, error: errorMessage(e) });
        }
      }
      return;
    }
    if (this.options.answerRequests === false) return;
    const reply: Frame = { id: frame.id, error: { code: 404, message: `Method [${method}] not found` } };
    if (this.options.src) reply.src = this.options.src;
    if (frame.src) reply.dst = frame.src;
    this.channel.send(reply).catch((e: unknown) => debug("rpc", "404 reply failed", { error: errorMessage(e) }));
  }
}
