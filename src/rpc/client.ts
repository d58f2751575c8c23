/**
 * RpcClient: calls over one channel with many in flight, matched by normalised id (spec §1.3); per-call
 * timeout and AbortSignal; in-frame digest retry on a 401 challenge (spec §4.3); every pending call fails
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
import { type DecodedFrame, type Frame, newRequestId, normaliseId } from "./frame.js";

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
  method: string;
  frame: Frame;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
  authTried: boolean;
  cleanup: () => void;
}

export class RpcClient {
  readonly channel: Channel;
  private readonly options: RpcClientOptions;
  /**
   * Calls waiting for an answer, by normalised id. A null-prototype object, not a Map: a long-lived Map
   * with an add and a delete per call reallocates its table over and over, and V8 promotes the tables and
   * their entries (a mark-compact every ~0.5 s at 64 calls in flight).
   */
  private pending: Record<string, Pending> = Object.create(null) as Record<string, Pending>;
  private pendingCount = 0;
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
    if (options.signal?.aborted) return Promise.reject(new AbortedError(`${method} aborted`));
    const id = newRequestId();
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
    const key = normaliseId(id);
    return new Promise<R>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        this.settle(key)?.reject(new AbortedError(`${method} aborted`));
      };
      const p: Pending = {
        method,
        frame,
        resolve: resolve as (v: unknown) => void,
        reject,
        authTried: false,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          options.signal?.removeEventListener("abort", onAbort);
        },
      };
      this.pending[key] = p;
      this.pendingCount++;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.settle(key)?.reject(new TimeoutError(`${method}: no answer within ${timeoutMs} ms`, timeoutMs));
        }, timeoutMs);
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.channel.send(frame).catch((e: unknown) => {
        this.settle(key)?.reject(e instanceof Error ? e : new Error(String(e)));
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

  private settle(key: string): Pending | undefined {
    const p = this.pending[key];
    if (!p) return undefined;
    delete this.pending[key];
    if (--this.pendingCount === 0) this.pending = Object.create(null) as Record<string, Pending>;
    p.cleanup();
    return p;
  }

  private failAll(e: RemosError): void {
    for (const key of Object.keys(this.pending)) this.settle(key)?.reject(e);
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
    const key = normaliseId(frame.id);
    const p = this.pending[key];
    if (!p) {
      debug("rpc", "response with unknown id dropped", { id: frame.id });
      return;
    }
    const err = frame.error;
    if (err && err.code !== 0) {
      if (err.code === 401 && this.retryWithAuth(key, p, err.message)) return;
      this.settle(key);
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
    this.settle(key);
    p.resolve(frame.result === undefined ? null : frame.result);
  }

  /** On a digest challenge, resend the same request (same id) with an `auth` object, once. */
  private retryWithAuth(key: string, p: Pending, message: string | undefined): boolean {
    const creds = this.options.credentials;
    if (!creds || p.authTried) return false;
    const challenge = parseFrameChallenge(message);
    if (!challenge) return false;
    const auth = frameAuthFor(challenge, creds);
    if (!auth) return false;
    p.authTried = true;
    const frame: Frame = { ...p.frame, auth };
    this.channel.send(frame).catch((e: unknown) => {
      this.settle(key)?.reject(e instanceof Error ? e : new Error(errorMessage(e)));
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
