/**
 * The programmatic API: `connect(port, options)` opens a channel to a device and returns a Device.
 *
 *   import { connect } from "remos";
 *   const dev = await connect("mqtts://broker:8883/esp32_A1B2C3", { tls: { certFile, keyFile, caFile } });
 *   console.log(await dev.call("Sys.GetInfo"));
 *   await dev.close();
 */
import type { Channel } from "../rpc/channel.js";
import { type CallOptions, type Notification, RpcClient } from "../rpc/client.js";
import { type ConnectOptions, openChannel } from "../transport/url.js";

export interface DeviceOptions extends ConnectOptions {
  /** Default per-call timeout in ms (default 20000, as mos `--timeout`). */
  timeoutMs?: number;
  /** `src` of requests (default "mos", as the Go tool). */
  src?: string;
  /** Send `args` instead of `params` (mos `--mgrpc-compat-args`). */
  compatArgs?: boolean;
}

export class Device {
  readonly channel: Channel;
  readonly rpc: RpcClient;
  readonly port: string;
  readonly options: DeviceOptions;

  constructor(port: string, channel: Channel, options: DeviceOptions = {}) {
    this.port = port;
    this.channel = channel;
    this.options = options;
    this.rpc = new RpcClient(channel, {
      src: options.src ?? "mos",
      timeoutMs: options.timeoutMs ?? 20_000,
      compatArgs: options.compatArgs,
      credentials: options.credentials,
    });
  }

  /** Call any method with JSON params; resolves with the result (null when there is none). */
  call<R = unknown>(method: string, params?: unknown, options?: CallOptions): Promise<R> {
    return this.rpc.call<R>(method, params, options);
  }

  /** Listen for notifications the device sends (e.g. GPIO.Int). Returns a function that stops listening. */
  onNotification(listener: (n: Notification) => void): () => void {
    return this.rpc.onNotification(listener);
  }

  /** Close the link; calls still pending fail with ChannelClosedError. */
  close(): Promise<void> {
    return this.rpc.close();
  }
}

/** Open a link to a device by its `--port` URL (see docs/API.md for the forms). */
export async function connect(port: string, options: DeviceOptions = {}): Promise<Device> {
  const channel = await openChannel(port, { ...options, timeoutMs: options.timeoutMs ?? 20_000 });
  return new Device(port, channel, options);
}
