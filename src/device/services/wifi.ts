/**
 * The Wifi.* RPC service (spec §3.7) over a WifiHal (hal/wifi.ts).
 *
 * What the agent passes: its RpcServer and the WifiHal it also reads for Sys.GetInfo's `wifi` object —
 * `new SimWifi({ config: <wifi.* config> })` from hal/wifi.ts.
 *
 * Wifi.Scan → `[{ssid, bssid, auth, channel, rssi}]`; Wifi.SetupSTA / Wifi.SetupAP apply at runtime and are
 * not saved (as the firmware; `mos wifi` uses Config.Set instead). Missing fields take the firmware's zero
 * defaults (so `enable` absent = disable). Errors: -1 "mgos_wifi_setup_sta failed" / "mgos_wifi_setup_ap
 * failed" for settings the radio refuses; 400 for args of the wrong type.
 */
import { RpcError } from "../../errors.js";
import type { RpcServer } from "../../rpc/server.js";
import type { WifiApConfig, WifiHal, WifiStaConfig } from "../hal/wifi.js";

function params(p: unknown): Record<string, unknown> {
  return p && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

function str(p: Record<string, unknown>, k: string): string {
  const v = p[k];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new RpcError(400, `${k} must be a string`);
  return v;
}

function bool(p: Record<string, unknown>, k: string): boolean {
  const v = p[k];
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new RpcError(400, `${k} must be a boolean`);
  return v;
}

export function registerWifiService(server: RpcServer, wifi: WifiHal): void {
  server.addHandler("Wifi.Scan", async () => {
    try {
      return await wifi.scan();
    } catch {
      throw new RpcError(-1, "wifi scan failed");
    }
  }, { argsFmt: "", description: "Networks in range: ssid, bssid, auth (0 open..7 WPA2/WPA3), channel, rssi" });

  server.addHandler("Wifi.SetupSTA", async (raw) => {
    const p = params(raw);
    const cfg: WifiStaConfig = { enable: bool(p, "enable"), ssid: str(p, "ssid"), pass: str(p, "pass") };
    for (const k of ["ip", "netmask", "gw"] as const) {
      const v = str(p, k);
      if (v) cfg[k] = v;
    }
    if (!(await wifi.setupSta(cfg))) throw new RpcError(-1, "mgos_wifi_setup_sta failed");
    return null;
  }, { argsFmt: "{enable: %B, ssid: %Q, pass: %Q, ip: %Q, netmask: %Q, gw: %Q}", description: "Configure the station at runtime (not saved)" });

  server.addHandler("Wifi.SetupAP", async (raw) => {
    const p = params(raw);
    const cfg: WifiApConfig = { enable: bool(p, "enable"), ssid: str(p, "ssid"), pass: str(p, "pass") };
    if (p.channel !== undefined) {
      if (typeof p.channel !== "number") throw new RpcError(400, "channel must be a number");
      cfg.channel = p.channel;
    }
    for (const k of ["ip", "netmask", "gw", "dhcp_start", "dhcp_end"] as const) {
      const v = str(p, k);
      if (v) cfg[k] = v;
    }
    if (!(await wifi.setupAp(cfg))) throw new RpcError(-1, "mgos_wifi_setup_ap failed");
    return null;
  }, {
    argsFmt: "{enable: %B, ssid: %Q, pass: %Q, channel: %d, ip: %Q, netmask: %Q, gw: %Q, dhcp_start: %Q, dhcp_end: %Q}",
    description: "Configure the access point at runtime (not saved)",
  });
}
