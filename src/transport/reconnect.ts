/**
 * Reconnect as a decorator around any channel (DESIGN.md: "reconnect is a decorator, not baked into each
 * transport"). `reconnecting(open, options)` returns one Channel object that stays the same across link
 * drops: it opens the underlying channel, forwards its frames, and when the link drops it waits a jittered,
 * bounded backoff and opens a new one, until it is closed (or gives up, see `maxAttempts` and `fatal`).
 *
 * Used by the device end of MQTT (transport/mqtt-device.ts) and the outbound WebSocket (transport/ws.ts).
 *
 * Sending while the link is down (decision):
 * - `send` waits for the link to come back for up to `sendWaitMs` (default 10 s; the caller's own RPC
 *   timeout usually ends the wait first), then rejects with a TransportError ("link down, reconnecting")
 *   naming the last link error. The channel is still usable afterwards: a later send may succeed.
 * - ChannelClosedError only when the decorator itself is closed: by `close()`, by a `fatal` error, or after
 *   `maxAttempts` consecutive failed opens (then `onClose` listeners get the reason).
 * - A frame sent just before a drop is lost with the link (no resend; the caller's RPC timeout covers it).
 *
 * States (`onStateChange`): "connecting" (an open is in progress), "connected", "waiting" (backoff before
 * the next attempt), "closed" (final).
 */
import { ChannelClosedError, TransportError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel, ChannelInfo, CloseListener, FrameListener } from "../rpc/channel.js";
import type { Frame } from "../rpc/frame.js";

export interface BackoffOptions {
  /** Delay before the first retry, in ms. */
  minMs: number;
  /** Upper bound of every delay, in ms. */
  maxMs: number;
  /**
   * Fraction of the delay that is random, 0..1 (default 0.5): the delay is uniform in
   * `[base × (1 − jitter), base]`, so a fleet that lost its broker at once does not come back at once.
   */
  jitter?: number;
  /** Random source in [0, 1) (tests); default Math.random. */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0 = first retry): `min(maxMs, minMs × 2^attempt)`, with the
 * jitter taken off that base. Always within `[0, maxMs]`.
 */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const minMs = Math.max(0, o.minMs);
  const maxMs = Math.max(minMs, o.maxMs);
  const n = Number.isNaN(attempt) || attempt <= 0 ? 0 : Math.min(Math.floor(attempt), 60);
  const base = Math.min(maxMs, minMs * 2 ** n);
  const jitter = Math.min(1, Math.max(0, o.jitter ?? 0.5));
  const r = (o.random ?? Math.random)();
  return Math.max(0, Math.min(maxMs, Math.round(base * (1 - jitter * r))));
}

export type ReconnectState = "connecting" | "connected" | "waiting" | "closed";

export interface StateDetail {
  /** Consecutive failed opens so far (0 once connected). */
  attempt: number;
  /** With "waiting": how long until the next attempt, in ms. */
  delayMs?: number;
  /** With "waiting"/"closed": why the last link failed or dropped. */
  error?: Error;
}

export type StateListener = (state: ReconnectState, detail: StateDetail) => void;

export interface ReconnectOptions extends BackoffOptions {
  /** The info of the decorated channel (type, peer, maxFrameSize). `tls` is refreshed from each link. */
  info: ChannelInfo;
  /** Give up (close with the last error) after this many consecutive failed opens. Default: never. */
  maxAttempts?: number;
  /** An error that retrying cannot fix: the decorator closes with it. Default: none is fatal. */
  fatal?: (error: Error, info: { attempt: number; everConnected: boolean }) => boolean;
  /** How long `send` waits for a down link to come back, in ms (default 10000). */
  sendWaitMs?: number;
  /** Abandon an open that takes longer than this, in ms (the opener's signal is aborted). Default: none. */
  openTimeoutMs?: number;
  /** Debug-log area (default: the channel type in lower case). */
  area?: string;
}

export interface ReconnectingChannel extends Channel {
  readonly state: ReconnectState;
  /** The link in use, when connected. */
  readonly link: Channel | undefined;
  /** The error of the last failed open or drop. */
  readonly lastError: Error | undefined;
  onStateChange(listener: StateListener): () => void;
  /**
   * Resolves when connected (at once if it is). Rejects with ChannelClosedError if the channel closes
   * first, or TransportError after `timeoutMs`.
   */
  whenConnected(timeoutMs?: number): Promise<void>;
}

/** A Channel that keeps itself connected by re-opening its link (see the file header). */
export function reconnecting(open: (signal: AbortSignal) => Promise<Channel>, o: ReconnectOptions): ReconnectingChannel {
  return new Reconnector(open, o);
}

class Reconnector implements ReconnectingChannel {
  readonly info: ChannelInfo;
  private readonly open: (signal: AbortSignal) => Promise<Channel>;
  private readonly o: ReconnectOptions;
  private readonly area: string;
  private readonly frameListeners = new Set<FrameListener>();
  private readonly closeListeners = new Set<CloseListener>();
  private readonly stateListeners = new Set<StateListener>();
  /** Woken on every state change (sends and whenConnected waiting for the link). */
  private readonly wakers = new Set<() => void>();
  private current: Channel | undefined;
  private currentState: ReconnectState = "connecting";
  private failures = 0;
  private everConnected = false;
  private error: Error | undefined;
  private closeReason: Error | undefined;
  private readonly stop = new AbortController();
  private wake: (() => void) | undefined;

  constructor(open: (signal: AbortSignal) => Promise<Channel>, o: ReconnectOptions) {
    this.open = open;
    this.o = o;
    this.info = { ...o.info };
    this.area = o.area ?? o.info.type.toLowerCase();
    void this.run();
  }

  get state(): ReconnectState {
    return this.currentState;
  }

  get closed(): boolean {
    return this.currentState === "closed";
  }

  get link(): Channel | undefined {
    return this.current;
  }

  get lastError(): Error | undefined {
    return this.error;
  }

  onFrame(listener: FrameListener): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  onClose(listener: CloseListener): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  onStateChange(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  async send(frame: Frame): Promise<void> {
    const deadline = Date.now() + (this.o.sendWaitMs ?? 10_000);
    for (;;) {
      if (this.closed) throw this.closedError();
      const link = this.current;
      if (link && !link.closed) {
        try {
          await link.send(frame);
          return;
        } catch (e) {
          // The link dropped under us: wait for the next one like any send made while down.
          if (!(e instanceof ChannelClosedError) || this.closed) throw e;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForChange(left))) {
        if (this.closed) throw this.closedError();
        if (this.current && !this.current.closed) continue;
        const why = this.error ? `: ${errorMessage(this.error)}` : "";
        throw new TransportError(`${this.info.type} link to ${this.info.peer} is down, reconnecting${why}`, { cause: this.error });
      }
    }
  }

  async whenConnected(timeoutMs?: number): Promise<void> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (this.closed) throw this.closedError();
      if (this.currentState === "connected") return;
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForChange(left))) {
        if (this.state === "connected") return;
        if (this.closed) throw this.closedError();
        const why = this.error ? ` (last error: ${errorMessage(this.error)})` : "";
        throw new TransportError(`${this.info.type} link to ${this.info.peer} not connected within ${timeoutMs} ms${why}`, { cause: this.error });
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const link = this.current;
    this.finish(undefined);
    if (link) await link.close().catch(() => undefined);
  }

  private closedError(): ChannelClosedError {
    const why = this.closeReason ? `: ${errorMessage(this.closeReason)}` : "";
    return new ChannelClosedError(`${this.info.type} channel to ${this.info.peer} is closed${why}`, { cause: this.closeReason });
  }

  /** Wait until the state changes or `ms` pass; true when woken by a change. */
  private waitForChange(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (changed: boolean): void => {
        clearTimeout(timer);
        this.wakers.delete(onWake);
        resolve(changed);
      };
      const onWake = (): void => done(true);
      const timer = setTimeout(() => done(false), Math.min(ms, 2 ** 31 - 1));
      this.wakers.add(onWake);
    });
  }

  private setState(state: ReconnectState, detail: StateDetail): void {
    if (this.currentState === "closed") return;
    this.currentState = state;
    debug(this.area, `link ${state}`, {
      peer: this.info.peer,
      attempt: detail.attempt,
      ...(detail.delayMs !== undefined ? { delayMs: detail.delayMs } : {}),
      ...(detail.error ? { error: errorMessage(detail.error) } : {}),
    });
    for (const w of [...this.wakers]) w();
    for (const l of [...this.stateListeners]) {
      try {
        l(state, detail);
      } catch (e) {
        debug(this.area, "state listener threw", { error: errorMessage(e) });
      }
    }
  }

  private finish(reason: Error | undefined): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.setState("closed", { attempt: this.failures, ...(reason ? { error: reason } : {}) });
    this.stop.abort();
    this.wake?.();
    for (const l of [...this.closeListeners]) {
      try {
        l(reason);
      } catch (e) {
        debug(this.area, "close listener threw", { error: errorMessage(e) });
      }
    }
  }

  /** Sleep for the backoff, or until closed. */
  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private async openOnce(): Promise<Channel> {
    const ac = new AbortController();
    const onStop = (): void => ac.abort(new ChannelClosedError("reconnecting channel closed"));
    this.stop.signal.addEventListener("abort", onStop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      const opening = this.open(ac.signal);
      const limit = this.o.openTimeoutMs;
      if (limit === undefined || limit <= 0) return await opening;
      return await new Promise<Channel>((resolve, reject) => {
        timer = setTimeout(() => {
          const e = new TransportError(`opening the ${this.info.type} link to ${this.info.peer} took longer than ${limit} ms`);
          ac.abort(e);
          reject(e);
          // A link that opens after all is not wanted any more.
          opening.then((late) => late.close().catch(() => undefined), () => undefined);
        }, limit);
        opening.then(resolve, reject);
      });
    } finally {
      if (timer) clearTimeout(timer);
      this.stop.signal.removeEventListener("abort", onStop);
    }
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.setState("connecting", { attempt: this.failures });
      let link: Channel;
      try {
        link = await this.openOnce();
      } catch (e) {
        if (this.closed) return;
        const err = e instanceof Error ? e : new Error(String(e));
        this.error = err;
        this.failures++;
        if (this.o.fatal?.(err, { attempt: this.failures, everConnected: this.everConnected })) {
          this.finish(err);
          return;
        }
        if (this.o.maxAttempts !== undefined && this.failures >= this.o.maxAttempts) {
          this.finish(new TransportError(`gave up after ${this.failures} failed attempts: ${errorMessage(err)}`, { cause: err }));
          return;
        }
        const delayMs = backoffDelay(this.failures - 1, this.o);
        this.setState("waiting", { attempt: this.failures, delayMs, error: err });
        await this.sleep(delayMs);
        continue;
      }
      if (this.closed) {
        await link.close().catch(() => undefined);
        return;
      }
      const dropped = await this.useLink(link);
      if (this.closed) return;
      this.error = dropped;
      // Even after a clean drop wait a jittered minimum, so a fleet does not stampede a restarted broker.
      const delayMs = backoffDelay(0, this.o);
      this.setState("waiting", { attempt: 0, delayMs, ...(dropped ? { error: dropped } : {}) });
      await this.sleep(delayMs);
    }
  }

  /** Forward the link's frames until it drops; resolves with the reason. */
  private useLink(link: Channel): Promise<Error | undefined> {
    return new Promise((resolve) => {
      this.current = link;
      this.failures = 0;
      this.everConnected = true;
      if (link.info.tls) this.info.tls = link.info.tls;
      const offFrame = link.onFrame((received) => {
        if (this.current !== link) return;
        for (const l of this.frameListeners) {
          try {
            l(received);
          } catch (e) {
            debug(this.area, "frame listener threw", { error: errorMessage(e) });
          }
        }
      });
      const offClose = link.onClose((reason) => {
        offFrame();
        offClose();
        if (this.current === link) this.current = undefined;
        resolve(reason ?? new TransportError(`${this.info.type} link to ${this.info.peer} closed`));
      });
      this.setState("connected", { attempt: 0 });
      if (link.closed) {
        offFrame();
        offClose();
        if (this.current === link) this.current = undefined;
        resolve(new TransportError(`${this.info.type} link to ${this.info.peer} closed`));
      }
    });
  }
}
