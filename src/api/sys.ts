/**
 * `device.sys`: the Sys.* service (spec §3.2): typed Sys.GetInfo, Sys.Reboot, Sys.SetDebug.
 */
import type { CallOpts, DeviceCore } from "./core.js";

/** The Sys.GetInfo result (spec §3.2); optional parts appear only when the firmware has them. */
export interface SysInfo {
  id: string;
  app: string;
  fw_version: string;
  fw_id: string;
  mg_version?: string;
  mg_id?: string;
  /** 12 uppercase hex digits, no colons. */
  mac: string;
  arch: string;
  /** Seconds since boot. */
  uptime: number;
  public_key?: string | null;
  ram_size: number;
  ram_free: number;
  ram_min_free: number;
  fs_size: number;
  fs_free: number;
  wifi?: { sta_ip: string; ap_ip: string; status: "disconnected" | "connecting" | "connected" | "got ip" | string; ssid: string };
  eth?: { ip: string };
  pppos?: { ip: string; imei: string };
  /** Fields other firmware adds are kept. */
  [extra: string]: unknown;
}

export interface RebootOptions extends CallOpts {
  /** Delay before the reboot in ms (device default 100). */
  delayMs?: number;
}

export interface SetDebugParams {
  level?: number;
  udpLogAddr?: string;
  fileLevel?: string;
}

export class SysApi {
  private readonly core: DeviceCore;

  constructor(core: DeviceCore) {
    this.core = core;
  }

  /** `Sys.GetInfo`. */
  getInfo(opts: CallOpts = {}): Promise<SysInfo> {
    return this.core.call<SysInfo>("Sys.GetInfo", undefined, opts);
  }

  /** `Sys.Reboot {delay_ms?}`: the device answers, then reboots after the delay. */
  async reboot(opts: RebootOptions = {}): Promise<void> {
    await this.core.call("Sys.Reboot", opts.delayMs !== undefined ? { delay_ms: opts.delayMs } : undefined, opts);
  }

  /** `Sys.SetDebug {level?, udp_log_addr?, file_level?}` (success is `error.code` 0, which the client treats as OK). */
  async setDebug(p: SetDebugParams, opts: CallOpts = {}): Promise<void> {
    const params: Record<string, unknown> = {};
    if (p.level !== undefined) params.level = p.level;
    if (p.udpLogAddr !== undefined) params.udp_log_addr = p.udpLogAddr;
    if (p.fileLevel !== undefined) params.file_level = p.fileLevel;
    await this.core.call("Sys.SetDebug", params, opts);
  }
}
