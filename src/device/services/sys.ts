/**
 * The Sys.* service (spec §3.2): GetInfo (every field, in the firmware's order, with real figures),
 * Reboot (in-process; the 418 lockout is the agent's pre-handler) and SetDebug (success is
 * `error:{code:0}`, via StatusReply).
 *
 * Figures: `ram_size` is the V8 heap limit of the agent's process, `ram_free` what is left of it,
 * `ram_min_free` the lowest `ram_free` seen since boot; `fs_size`/`fs_free` come from statfs of the state
 * directory; `uptime` counts from the agent's current (in-process) boot.
 * Decisions: `Sys.Reboot {abort:true}` reboots after at most 100 ms (there is no core dump to make; the
 * reply still gets out first);
 * `Sys.SetDebug {udp_log_addr}` → 501 (UDP logging is not built in), `level` outside -1..4 → 400
 * "invalid level", `file_level` is accepted and reported in the console.
 */
import { statfs } from "node:fs/promises";
import { getHeapStatistics } from "node:v8";
import { RpcError } from "../../errors.js";
import { type RpcServer, StatusReply } from "../../rpc/server.js";

export interface SysInfoSource {
  id: string;
  app: string;
  fw_version: string;
  fw_id: string;
  mac: string;
  arch: string;
  /** `device.public_key`; "" = unset (reported as null). */
  publicKey: string;
  /** Epoch ms of the current boot. */
  bootTime: number;
  /** Where fs_size/fs_free are measured. */
  stateDir: string;
  /** The simulated wifi state, when the wifi service is present. */
  wifi?: { sta_ip: string; ap_ip: string; status: string; ssid: string };
}

export interface SysServiceDeps {
  info(): SysInfoSource;
  /** remos version (mg_version) and build id (mg_id). */
  mgVersion: string;
  mgId: string;
  reboot(delayMs: number): void;
  setDebug(level: number | undefined, fileLevel: string | undefined): void;
}

type Params = Record<string, unknown>;

function asParams(p: unknown): Params {
  return typeof p === "object" && p !== null && !Array.isArray(p) ? (p as Params) : {};
}

/** The RAM figures of the process; tracks the lowest free value per tracker object. */
export class RamTracker {
  private minFree = Number.POSITIVE_INFINITY;
  sample(): { ram_size: number; ram_free: number; ram_min_free: number } {
    const h = getHeapStatistics();
    const size = h.heap_size_limit;
    const free = Math.max(0, size - h.used_heap_size);
    this.minFree = Math.min(this.minFree, free);
    return { ram_size: size, ram_free: free, ram_min_free: this.minFree };
  }
  reset(): void {
    this.minFree = Number.POSITIVE_INFINITY;
  }
}

export function registerSysService(server: RpcServer, deps: SysServiceDeps, ram: RamTracker = new RamTracker()): void {
  server.addHandler("Sys.GetInfo", async () => {
    const s = deps.info();
    let fsSize = 0;
    let fsFree = 0;
    try {
      const st = await statfs(s.stateDir);
      fsSize = st.blocks * st.bsize;
      fsFree = st.bavail * st.bsize;
    } catch {
      // reported as 0
    }
    const r = ram.sample();
    const info: Record<string, unknown> = {
      id: s.id,
      app: s.app,
      fw_version: s.fw_version,
      fw_id: s.fw_id,
      mg_version: deps.mgVersion,
      mg_id: deps.mgId,
      mac: s.mac,
      arch: s.arch,
      uptime: Math.floor((Date.now() - s.bootTime) / 1000),
      public_key: s.publicKey === "" ? null : s.publicKey,
      ram_size: r.ram_size,
      ram_free: r.ram_free,
      ram_min_free: r.ram_min_free,
      fs_size: fsSize,
      fs_free: fsFree,
    };
    if (s.wifi) info.wifi = { sta_ip: s.wifi.sta_ip, ap_ip: s.wifi.ap_ip, status: s.wifi.status, ssid: s.wifi.ssid };
    return info;
  }, { argsFmt: "", description: "Device identity, firmware, uptime, memory and file system figures" });

  server.addHandler("Sys.Reboot", (params) => {
    const p = asParams(params);
    const delay = typeof p.delay_ms === "number" ? Math.trunc(p.delay_ms) : 100;
    if (delay < 0) throw new RpcError(400, "invalid delay value");
    deps.reboot(p.abort === true ? Math.min(delay, 100) : delay);
    return null;
  }, { argsFmt: "{delay_ms: %d, abort: %B}", description: "Reboot the device (in-process) after delay_ms (default 100)" });

  server.addHandler("Sys.SetDebug", (params) => {
    const p = asParams(params);
    const level = typeof p.level === "number" ? p.level : undefined;
    if (level !== undefined && (!Number.isInteger(level) || level < -1 || level > 4)) throw new RpcError(400, "invalid level");
    if (typeof p.udp_log_addr === "string" && p.udp_log_addr !== "") throw new RpcError(501, "UDP logging is not supported");
    deps.setDebug(level, typeof p.file_level === "string" ? p.file_level : undefined);
    return new StatusReply(0);
  }, { argsFmt: "{udp_log_addr: %Q, level: %d, file_level: %Q}", description: "Set the console log level (-1..4)" });
}
