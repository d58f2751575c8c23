/**
 * The programmatic API: `connect(port, options)` opens a channel to a device and returns a Device, the
 * composition point of the per-service helpers (`fs`, `config`, `sys`, `gpio`, `i2c`, `ota`, `wifi`) over
 * `Device.call`, plus device notifications (`device.on("GPIO.Int", ...)`).
 *
 *   import { connect } from "remos";
 *   const dev = await connect("mqtts://broker:8883/esp32_A1B2C3", { tls: { certFile, keyFile, caFile } });
 *   console.log(await dev.sys.getInfo());
 *   await dev.close();
 */
import { AbortedError, TimeoutError } from "../errors.js";
import { debug } from "../log.js";
import type { Channel, ChannelInfo } from "../rpc/channel.js";
import { type CallOptions, type Notification, RpcClient } from "../rpc/client.js";
import { globMatch } from "../rpc/glob.js";
import { type ConnectOptions, openChannel } from "../transport/url.js";
import { type DeviceCapabilities, probeCapabilities } from "./capabilities.js";
import { ConfigApi } from "./config.js";
import type { CallOpts, DeviceCore } from "./core.js";
import { FsApi } from "./fs.js";
import { GpioApi } from "./gpio.js";
import { I2cApi } from "./i2c.js";
import { OtaApi } from "./ota.js";
import { SysApi } from "./sys.js";
import { WifiApi } from "./wifi.js";

export interface DeviceOptions extends ConnectOptions {
  /** Default per-call timeout in ms (default 20000, as mos `--timeout`); also the connect timeout. */
  timeoutMs?: number;
  /** `src` of requests (default "mos", as the Go tool). */
  src?: string;
  /** Send `args` instead of `params` (mos `--mgrpc-compat-args`). */
  compatArgs?: boolean;
}

export type NotificationListener = (params: unknown, notification: Notification) => void;

export class Device implements DeviceCore {
  readonly port: string;
  readonly options: DeviceOptions;
  readonly fs: FsApi;
  readonly config: ConfigApi;
  readonly sys: SysApi;
  readonly gpio: GpioApi;
  readonly i2c: I2cApi;
  readonly ota: OtaApi;
  readonly wifi: WifiApi;
  private link: { channel: Channel; rpc: RpcClient; offNotify: () => void };
  private caps: Promise<DeviceCapabilities> | undefined;
  private readonly listeners = new Set<(n: Notification) => void>();

  constructor(port: string, channel: Channel, options: DeviceOptions = {}) {
    this.port = port;
    this.options = options;
    this.link = this.attach(channel);
    this.fs = new FsApi(this);
    this.config = new ConfigApi(this);
    this.sys = new SysApi(this);
    this.gpio = new GpioApi(this);
    this.i2c = new I2cApi(this);
    this.ota = new OtaApi(this);
    this.wifi = new WifiApi(this, this.config);
  }

  private attach(channel: Channel): { channel: Channel; rpc: RpcClient; offNotify: () => void } {
    const rpc = new RpcClient(channel, {
      src: this.options.src ?? "mos",
      timeoutMs: this.timeoutMs,
      compatArgs: this.options.compatArgs,
      credentials: this.options.credentials,
    });
    const offNotify = rpc.onNotification((n) => {
      for (const l of this.listeners) l(n);
    });
    return { channel, rpc, offNotify };
  }

  /** The current link's channel. */
  get channel(): Channel {
    return this.link.channel;
  }

  get rpc(): RpcClient {
    return this.link.rpc;
  }

  get channelInfo(): ChannelInfo {
    return this.link.channel.info;
  }

  get timeoutMs(): number {
    return this.options.timeoutMs ?? 20_000;
  }

  /** Call any method with JSON params; resolves with the result (null when there is none). */
  call<R = unknown>(method: string, params?: unknown, options?: CallOptions): Promise<R> {
    return this.link.rpc.call<R>(method, params, options);
  }

  /** What the device supports (asked with RPC.List once per link). */
  capabilities(opts: CallOpts = {}): Promise<DeviceCapabilities> {
    if (!this.caps) {
      const p = probeCapabilities(this, opts.timeout, opts.signal);
      this.caps = p;
      p.catch(() => {
        if (this.caps === p) this.caps = undefined;
      });
    }
    return this.caps;
  }

  /** Listen for every notification the device sends. Returns a function that stops listening. */
  onNotification(listener: (n: Notification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Listen for notifications of one method (a glob such as `GPIO.*` works; case-insensitive), e.g.
   * `device.on("GPIO.Int", (p) => ...)`. Returns a function that stops listening.
   */
  on(method: string, listener: NotificationListener): () => void {
    return this.onNotification((n) => {
      if (n.method.toLowerCase() === method.toLowerCase() || globMatch(method, n.method)) listener(n.params, n);
    });
  }

  /** Drop the link and open a new one to the same port (after a reboot, or a broken link). */
  async reconnect(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const old = this.link;
    old.offNotify();
    await old.rpc.close().catch(() => undefined);
    const channel = await openChannel(this.port, { ...this.options, timeoutMs: options.timeoutMs ?? this.timeoutMs, signal: options.signal ?? this.options.signal });
    this.link = this.attach(channel);
    this.caps = undefined;
  }

  /**
   * Wait until the device is back after a reboot: reconnect and ask `Sys.GetInfo` until its uptime shows a
   * fresh boot (or, for devices that do not reset uptime, `OTA.GetBootState` reports uncommitted firmware).
   * Each attempt is bounded by the per-call timeout; the whole wait by `timeoutMs`.
   */
  async waitForReboot(options: { uptimeBefore?: number; since?: number; timeoutMs: number; signal?: AbortSignal; pollMs?: number }): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    const since = options.since ?? Date.now();
    const poll = options.pollMs ?? 1000;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (options.signal?.aborted) throw new AbortedError("waiting for the device aborted");
      await new Promise((r) => setTimeout(r, poll));
      const left = Math.max(1, deadline - Date.now());
      const timeout = Math.min(this.timeoutMs, left);
      try {
        if (this.channel.closed || this.channelInfo.type !== "HTTP") await this.reconnect({ timeoutMs: timeout, signal: options.signal });
        const info = await this.sys.getInfo({ timeout, signal: options.signal });
        const elapsedS = (Date.now() - since) / 1000;
        if (options.uptimeBefore === undefined || info.uptime < options.uptimeBefore + elapsedS - 2) return;
        const boot = await this.ota.getBootState({ timeout, signal: options.signal }).catch(() => undefined);
        if (boot && boot.is_committed === false) return;
      } catch (e) {
        lastError = e;
        debug("device", "waiting for the device to come back", { error: (e as Error).message });
      }
    }
    const why = lastError instanceof Error ? `: ${lastError.message}` : "";
    throw new TimeoutError(`the device did not come back within ${options.timeoutMs} ms${why}`, options.timeoutMs, { cause: lastError });
  }

  /** Close the link; calls still pending fail with ChannelClosedError. */
  close(): Promise<void> {
    this.link.offNotify();
    return this.link.rpc.close();
  }
}

/** Open a link to a device by its `--port` URL (see docs/API.md for the forms). */
export async function connect(port: string, options: DeviceOptions = {}): Promise<Device> {
  const channel = await openChannel(port, { ...options, timeoutMs: options.timeoutMs ?? 20_000 });
  return new Device(port, channel, options);
}
