/**
 * The part of a Device that the per-service helpers (fs, config, sys, gpio, i2c, ota, wifi) use. They
 * depend on this interface, not on the Device class, so device.ts can compose them without an import cycle.
 */
import type { ChannelInfo } from "../rpc/channel.js";
import type { DeviceCapabilities } from "./capabilities.js";

export interface CallOpts {
  /** Timeout of this call in ms (default: the Device's `timeoutMs`, i.e. `--timeout`). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface DeviceCore {
  call<R = unknown>(method: string, params?: unknown, options?: CallOpts): Promise<R>;
  /** The link's info (type, peer, maxFrameSize). */
  readonly channelInfo: ChannelInfo;
  /** The default per-call timeout in ms. */
  readonly timeoutMs: number;
  /** What the device supports (RPC.List, asked once per link). */
  capabilities(options?: CallOpts): Promise<DeviceCapabilities>;
}
