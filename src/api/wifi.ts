/**
 * `device.wifi`: the Wifi.* service (spec §3.7) and `configure(ssid, pass)`, which is what `mos wifi`
 * does: a saved config change (wifi.ap.enable=false, wifi.sta.enable=true, ssid, pass) and a reboot.
 */
import type { ConfigApi, ConfigSetOptions, ConfigSetResult } from "./config.js";
import type { CallOpts, DeviceCore } from "./core.js";

export interface WifiNetwork {
  ssid: string;
  bssid: string;
  /** 0 open, 1 WEP, 2 WPA-PSK, 3 WPA2-PSK, 4 WPA/WPA2-PSK, 5 WPA2-Enterprise, 6 WPA3-PSK, 7 WPA2/WPA3-PSK. */
  auth: number;
  channel: number;
  rssi: number;
}

export interface StaParams {
  enable?: boolean;
  ssid?: string;
  pass?: string;
  ip?: string;
  netmask?: string;
  gw?: string;
}

export interface ApParams extends StaParams {
  channel?: number;
  dhcp_start?: string;
  dhcp_end?: string;
}

export class WifiApi {
  private readonly core: DeviceCore;
  private readonly config: ConfigApi;

  constructor(core: DeviceCore, config: ConfigApi) {
    this.core = core;
    this.config = config;
  }

  /** `Wifi.Scan`. */
  async scan(opts: CallOpts = {}): Promise<WifiNetwork[]> {
    const r = await this.core.call<unknown>("Wifi.Scan", undefined, opts);
    return Array.isArray(r) ? (r as WifiNetwork[]) : [];
  }

  /** `Wifi.SetupSTA`: applied at runtime, not saved. */
  async setupSta(p: StaParams, opts: CallOpts = {}): Promise<void> {
    await this.core.call("Wifi.SetupSTA", p, opts);
  }

  /** `Wifi.SetupAP`: applied at runtime, not saved. */
  async setupAp(p: ApParams, opts: CallOpts = {}): Promise<void> {
    await this.core.call("Wifi.SetupAP", p, opts);
  }

  /** As `mos wifi SSID PASS`: save station settings (AP off) through Config.Set; reboots by default. */
  configure(ssid: string, pass: string, opts: ConfigSetOptions = {}): Promise<ConfigSetResult> {
    return this.config.setValues(
      { "wifi.ap.enable": "false", "wifi.sta.enable": "true", "wifi.sta.ssid": ssid, "wifi.sta.pass": pass },
      { reboot: true, ...opts },
    );
  }
}
