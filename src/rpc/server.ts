/**
 * RpcServer: the method table and the request dispatcher of spec §1.4-§1.5 and §3.1, over any Channel.
 *
 * - Handlers are registered by exact name or glob pattern (whole name, case-insensitive); the latest
 *   registration is searched first, as in mg_rpc.
 * - Built in: `RPC.List`, `RPC.Describe` (`args_fmt`, plus JSON Schemas when declared), `RPC.Ping`.
 * - Unknown method → 404 `No handler for <Method>`; a thrown RpcError → its code and message; anything
 *   else → 500 with the message only.
 * - Frames without `id` are notifications: handled, never answered. A non-empty `dst` that is not one of
 *   the server's local ids is dropped ("Wrong dst").
 * - Pre-handlers (auth, ACL, reboot lockout) run before the handler and may throw RpcError or set the user.
 */
import { ChannelClosedError, RpcError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel, ChannelInfo } from "./channel.js";
import { echoId, type DecodedFrame, type Frame } from "./frame.js";
import { globMatch } from "./glob.js";
import { Slots } from "./slots.js";
import { type JsonSchema, paramsForValidation, validateSchema } from "./schema.js";

export type { JsonSchema };

export interface RequestContext {
  /** The method as called (not the pattern that matched). */
  method: string;
  /** The whole request frame (with `params` normalised). */
  frame: Frame;
  /** The channel the request came on. */
  channel: ChannelInfo;
  /** The authenticated user, set by the link (HTTP/WS digest) or by a pre-handler (in-frame auth). */
  user?: string;
  /** Aborted when the channel closes or the server stops. */
  signal: AbortSignal;
  /** Send a frame back over the same channel. */
  sendOnChannel(frame: Frame): Promise<void>;
  /** Send a frame routed by its `dst`, falling back to this request's channel (RpcServer.sendRouted). */
  sendRouted(frame: Frame): Promise<void>;
}

export type Handler<P = unknown, R = unknown> = (params: P, ctx: RequestContext) => R | Promise<R>;

export interface HandlerOptions {
  /** Mongoose OS-style args format shown by RPC.Describe, e.g. `{filename: %Q, offset: %ld}`. */
  argsFmt?: string;
  /** JSON Schema of the params. */
  argsSchema?: JsonSchema;
  /** JSON Schema of the result. */
  resultSchema?: JsonSchema;
  description?: string;
  /**
   * Check params against `argsSchema` before calling the handler and answer 400 with the first problem
   * (default true when `argsSchema` is set; see rpc/schema.ts for the supported subset).
   */
  validateArgs?: boolean;
}

/**
 * Return this from a handler to answer with an error object instead of a result, e.g.
 * `new StatusReply(0)` → `"error":{"code":0}`, the firmware's "success with error object" (Sys.SetDebug).
 */
export class StatusReply {
  readonly code: number;
  readonly message: string | undefined;
  constructor(code: number, message?: string) {
    this.code = code;
    this.message = message;
  }
}

interface Registration extends HandlerOptions {
  pattern: string;
  handler: Handler;
}

/** Runs before the handler; may set `ctx.user` or throw RpcError (401, 403, 418...). */
export type PreHandler = (ctx: RequestContext) => void | Promise<void>;

export interface RpcServerOptions {
  /** The ids this server answers to (device.id). A request with another non-empty `dst` is dropped. */
  localIds?: string[];
  /** Add RPC.List / RPC.Describe / RPC.Ping (default true). */
  builtins?: boolean;
}

export interface DescribeResult {
  name: string;
  args_fmt: string;
  description?: string;
  args_schema?: JsonSchema;
  result_schema?: JsonSchema;
}

export class RpcServer {
  private readonly registrations: Registration[] = [];
  private readonly preHandlers: PreHandler[] = [];
  private methodFilter: ((method: string) => boolean) | undefined;
  /** Served channels by name (the first `src` each brought) and the default routes, for sendRouted. */
  private readonly routes = new Map<string, Channel>();
  private readonly defaultRoutes = new Set<Channel>();
  /** Stop functions of the channels being served (Slots: an HTTP request is a channel, so no Map churn). */
  private readonly served = new Slots<() => void>();
  /** Marks a channel this server serves (its stop function), so serve() twice returns the same one. */
  private readonly servedMark = Symbol("served");
  /**
   * Method name → its registration (null: none), so a call does not glob-match the whole table (~60
   * patterns on the agent, 1 µs per call); cleared by every add/remove and bounded against junk names.
   */
  private readonly resolved = new Map<string, Registration | null>();
  localIds: string[];

  constructor(options: RpcServerOptions = {}) {
    this.localIds = options.localIds ?? [];
    if (options.builtins !== false) this.addBuiltins();
  }

  /** Register a handler for a method name or glob pattern. Later registrations take precedence. */
  addHandler<P = unknown, R = unknown>(pattern: string, handler: Handler<P, R>, options: HandlerOptions = {}): this {
    this.registrations.unshift({ ...options, pattern, handler: handler as Handler });
    this.resolved.clear();
    return this;
  }

  removeHandler(pattern: string): boolean {
    const i = this.registrations.findIndex((r) => r.pattern === pattern);
    if (i < 0) return false;
    this.registrations.splice(i, 1);
    this.resolved.clear();
    return true;
  }

  /**
   * Hide methods: a name the filter refuses is answered 404 `No handler for <name>` before any
   * pre-handler (as if never registered) and is left out of RPC.List and RPC.Describe. It is asked
   * on every call, so it may follow live state (e.g. `rpc.service_sys_enable`).
   */
  setMethodFilter(filter: ((method: string) => boolean) | undefined): this {
    this.methodFilter = filter;
    return this;
  }

  addPreHandler(pre: PreHandler): this {
    this.preHandlers.push(pre);
    return this;
  }

  /** Method names in the order RPC.List reports them (latest registration first). */
  listMethods(): string[] {
    const shown = this.methodFilter;
    return this.registrations.filter((r) => !shown || shown(r.pattern)).map((r) => r.pattern);
  }

  private find(method: string): Registration | undefined {
    const known = this.resolved.get(method);
    if (known !== undefined) return known ?? undefined;
    const r = this.registrations.find((x) => x.pattern === method || globMatch(x.pattern, method));
    if (this.resolved.size >= RESOLVED_CACHE_LIMIT) this.resolved.clear();
    this.resolved.set(method, r ?? null);
    return r;
  }

  describe(name: string): DescribeResult | undefined {
    if (this.methodFilter && !this.methodFilter(name)) return undefined;
    const r = this.registrations.find((x) => x.pattern.toLowerCase() === name.toLowerCase()) ?? this.find(name);
    if (!r) return undefined;
    const d: DescribeResult = { name: r.pattern, args_fmt: r.argsFmt ?? "" };
    if (r.description) d.description = r.description;
    if (r.argsSchema) d.args_schema = r.argsSchema;
    if (r.resultSchema) d.result_schema = r.resultSchema;
    return d;
  }

  private addBuiltins(): void {
    this.addHandler("RPC.List", () => this.listMethods(), {
      argsFmt: "",
      description: "Names of the methods this device serves",
      resultSchema: { type: "array", items: { type: "string" } },
    });
    this.addHandler<{ name?: unknown }>(
      "RPC.Describe",
      (p) => {
        if (!p || typeof p.name !== "string" || p.name === "") throw new RpcError(400, "name is required");
        const d = this.describe(p.name);
        if (!d) throw new RpcError(404, "name not found");
        return d;
      },
      {
        argsFmt: "{name: %Q}",
        description: "The argument format (and JSON Schemas, when declared) of a method",
        argsSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
      },
    );
    this.addHandler("RPC.Ping", (_p, ctx) => ({ channel_info: pingInfo(ctx.channel) }), {
      argsFmt: "",
      description: "Liveness check; reports the channel the request came on",
      resultSchema: { type: "object", properties: { channel_info: { type: "string" } } },
    });
  }

  /** Serve requests arriving on a channel until it closes. Returns a function that stops serving it. */
  serve(channel: Channel): () => void {
    const marked = channel as Channel & Record<symbol, (() => void) | undefined>;
    const existing = marked[this.servedMark];
    if (existing) return existing;
    // The AbortController is made only when a handler reads ctx.signal: one per HTTP request otherwise,
    // and aborting one builds a DOMException (12% of the device's CPU per HTTP call when eager).
    let abort: AbortController | undefined;
    const signal = (): AbortSignal => (abort ??= new AbortController()).signal;
    // Routing (spec §1.4): a channel takes the name of the first `src` it brings; MQTT and outbound WS
    // are the default route "*". An HTTP request is a channel that closes with its answer: never named
    // (no table entry made and dropped per request).
    let name: string | undefined = channel.info.type === "HTTP" ? "" : undefined;
    const isDefaultRoute = DEFAULT_ROUTE_TYPES.has(channel.info.type);
    if (isDefaultRoute) this.defaultRoutes.add(channel);
    const offFrame = channel.onFrame((received) => {
      if (name === undefined && received.frame.src) {
        name = received.frame.src;
        this.routes.set(name, channel);
      }
      void this.dispatch(received, channel, signal);
    });
    let stopped = false;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      offFrame();
      offClose();
      if (name && this.routes.get(name) === channel) this.routes.delete(name);
      if (isDefaultRoute) this.defaultRoutes.delete(channel);
      abort?.abort();
      this.served.remove(slot);
      marked[this.servedMark] = undefined;
    };
    const offClose = channel.onClose(() => stop());
    const slot = this.served.add(stop);
    marked[this.servedMark] = stop;
    if (channel.closed) stop();
    return stop;
  }

  /**
   * Send a frame the device originates (a notification such as GPIO.Int) the way the firmware routes it:
   * to the open channel named by its `dst` (the last one whose first frame came from that src), else
   * to the default route (an open MQTT or outbound WS channel), else over `fallback` (the channel the
   * request that set it up came on) while that is open.
   */
  sendRouted(frame: Frame, fallback?: Channel): Promise<void> {
    const named = frame.dst ? this.routes.get(frame.dst) : undefined;
    if (named && !named.closed) return named.send(frame);
    for (const ch of this.defaultRoutes) if (!ch.closed) return ch.send(frame);
    if (fallback && !fallback.closed) return fallback.send(frame);
    return Promise.reject(new ChannelClosedError(`no open channel to ${frame.dst || "the default route"}`));
  }

  /** Stop serving every channel (their handlers see their signal abort). */
  stopAll(): void {
    for (const stop of this.served.values()) stop();
  }

  /**
   * Handle one received frame and send the reply (if any) on `channel`. Never throws: every failure is
   * answered or logged.
   */
  async dispatch(received: DecodedFrame, channel: Channel, signal?: AbortSignal | (() => AbortSignal)): Promise<void> {
    const req = received.frame;
    if (typeof req.method !== "string") {
      debug("rpc", "server ignores a frame without method", { id: req.id });
      return;
    }
    if (req.dst && this.localIds.length > 0 && !this.localIds.includes(req.dst)) {
      debug("rpc", "Wrong dst: frame dropped", { dst: req.dst, method: req.method });
      return;
    }
    const ctx = new Context(this, req, channel, signal);
    let result: unknown;
    let error: { code: number; message?: string } | undefined;
    try {
      if (this.methodFilter && !this.methodFilter(req.method)) throw new RpcError(404, `No handler for ${req.method}`);
      // Synchronous pre-handlers and handlers are not awaited: each await is a microtask turn per call.
      for (const pre of this.preHandlers) {
        const p: unknown = pre(ctx);
        if (isThenable(p)) await p;
      }
      const reg = this.find(req.method);
      if (!reg) throw new RpcError(404, `No handler for ${req.method}`);
      if (reg.argsSchema && reg.validateArgs !== false) {
        const problem = validateSchema(reg.argsSchema, paramsForValidation(reg.argsSchema, req.params));
        if (problem) throw new RpcError(400, problem);
      }
      result = reg.handler(req.params, ctx);
      if (isThenable(result)) result = await result;
      if (result instanceof StatusReply) {
        error = result.message === undefined ? { code: result.code } : { code: result.code, message: result.message };
      }
    } catch (e) {
      if (e instanceof RpcError) error = { code: e.rpcCode, message: e.message };
      else {
        error = { code: 500, message: errorMessage(e) || "internal error" };
        debug("rpc", "handler threw", { method: req.method, error: errorMessage(e) });
      }
    }
    if (req.id === undefined) return; // a notification: no reply, even on error
    const reply: Frame = { id: echoId(req.id, received.rawId) };
    const src = req.dst || this.localIds[0];
    if (src) reply.src = src;
    if (req.src !== undefined) reply.dst = req.src;
    if (req.tag !== undefined) reply.tag = req.tag;
    if (error) reply.error = error;
    else reply.result = result === undefined ? null : result;
    // not awaited: the dispatch is done once the reply is handed to the channel
    channel.send(reply).then(undefined, (e: unknown) => replyFailed(channel, reply, req.method as string, e));
  }
}

/** A reply the channel refused: say so to the caller (e.g. a result bigger than the channel carries). */
function replyFailed(channel: Channel, reply: Frame, method: string, e: unknown): void {
  debug("rpc", "reply could not be sent", { method, error: errorMessage(e) });
  if (reply.error || channel.closed) return;
  channel.send({ ...reply, result: undefined, error: { code: 500, message: errorMessage(e) } }).catch(() => undefined);
}

/**
 * The RequestContext of one request: a class, so a call allocates one plain object (no per-call getter
 * or closure). The AbortSignal is made only when a handler reads it.
 */
class Context implements RequestContext {
  readonly method: string;
  readonly frame: Frame;
  readonly channel: ChannelInfo;
  user: string | undefined;
  private readonly server: RpcServer;
  private readonly link: Channel;
  private signalSource: AbortSignal | (() => AbortSignal) | undefined;

  constructor(server: RpcServer, frame: Frame, link: Channel, signal: AbortSignal | (() => AbortSignal) | undefined) {
    this.server = server;
    this.method = frame.method as string;
    this.frame = frame;
    this.channel = link.info;
    this.user = link.info.user;
    this.link = link;
    this.signalSource = signal;
  }

  get signal(): AbortSignal {
    const s = this.signalSource;
    if (typeof s === "function") return s();
    if (s === undefined) this.signalSource = new AbortController().signal;
    return this.signalSource as AbortSignal;
  }

  sendOnChannel(frame: Frame): Promise<void> {
    return this.link.send(frame);
  }

  sendRouted(frame: Frame): Promise<void> {
    return this.server.sendRouted(frame, this.link);
  }
}

/** Channel types that are the device's default route "*" (spec §1.4). */
const DEFAULT_ROUTE_TYPES: ReadonlySet<string> = new Set(["MQTT", "WS_out", "WSS_out"]);

/** Distinct method names remembered by RpcServer.find before the memo is cleared. */
const RESOLVED_CACHE_LIMIT = 512;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** RPC.Ping's channel_info: `UART<n>` on serial, `ip:port` on HTTP/WS, `""` on MQTT. */
function pingInfo(info: ChannelInfo): string {
  if (info.type === "MQTT") return "";
  if (info.type === "UART") return info.peer.startsWith("UART") ? info.peer : "UART0";
  return info.peer;
}
