/**
 * What the device on the other end supports, learnt once per link from `RPC.List`: whether it offers the
 * remos checksum method `FS.Sha256` (the remos agent does; real Mongoose OS firmware does not), and the
 * transfer defaults that follow from it.
 *
 * Real firmware drops HTTP requests and MQTT messages above ~3 KB (spec §2.2, §2.4) and handles one
 * request at a time, so for it remos falls back to mos's 512-byte chunks with a window of 1. A device that
 * serves FS.Sha256, or whose Sys.GetInfo `mg_id` starts with `remos/`, is a remos agent: chunks sized
 * from the channel's frame limit and a window of 8.
 */
import { debug } from "../log.js";
import type { ChannelInfo } from "../rpc/channel.js";
import { LEGACY_CHUNK_SIZE, chunkSizeFor } from "./transfer.js";

export interface DeviceCapabilities {
  /** Methods from RPC.List (lower-cased), or null when the device does not answer RPC.List. */
  methods: Set<string> | null;
  /** The device serves `FS.Sha256 {filename, offset?, len?}` → `{sha256, size, offset, len}`. */
  fsSha256: boolean;
  /** The device looks like a remos agent (large frames, requests handled concurrently). */
  remos: boolean;
}

export interface CapabilitySource {
  call<R = unknown>(method: string, params?: unknown, options?: { timeout?: number; signal?: AbortSignal }): Promise<R>;
}

/** Ask RPC.List (once per link; failures mean "assume real, limited firmware"). */
export async function probeCapabilities(dev: CapabilitySource, timeoutMs?: number, signal?: AbortSignal): Promise<DeviceCapabilities> {
  let methods: Set<string> | null = null;
  try {
    const list = await dev.call<unknown>("RPC.List", undefined, { timeout: timeoutMs, signal });
    if (Array.isArray(list)) methods = new Set(list.filter((m): m is string => typeof m === "string").map((m) => m.toLowerCase()));
  } catch (e) {
    debug("transfer", "RPC.List failed; assuming real firmware limits", { error: (e as Error).message });
  }
  const fsSha256 = methods?.has("fs.sha256") ?? false;
  let remos = fsSha256;
  if (!remos && methods !== null) {
    try {
      const info = await dev.call<{ mg_id?: unknown } | null>("Sys.GetInfo", undefined, { timeout: timeoutMs, signal });
      remos = typeof info?.mg_id === "string" && info.mg_id.startsWith("remos/");
    } catch (e) {
      debug("transfer", "Sys.GetInfo failed; assuming real firmware limits", { error: (e as Error).message });
    }
  }
  return { methods, fsSha256, remos };
}

/** Default chunk size for a transfer on this channel to this device. */
export function defaultChunkSize(caps: DeviceCapabilities, info: ChannelInfo, nameLength = 0): number {
  if (!caps.remos) return Math.min(LEGACY_CHUNK_SIZE, chunkSizeFor(info, nameLength));
  return chunkSizeFor(info, nameLength);
}

/** Default window: 1 for real firmware; 8 for a remos agent (2 over a serial line, which is one stream anyway). */
export function defaultWindow(caps: DeviceCapabilities, info: ChannelInfo): number {
  if (!caps.remos) return 1;
  return info.type === "UART" ? 2 : 8;
}
