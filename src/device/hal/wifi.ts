/**
 * The Wifi hardware layer: the `WifiHal` interface the Wifi.* service (services/wifi.ts) runs on, and
 * `SimWifi`, a simulated radio: a fixed neighbourhood of networks (scan results jitter like real RSSI), a
 * station that goes "connecting" → "got ip" (DHCP 192.168.1.x, or the static ip) when the SSID is in range
 * and the credentials fit its security, else back to "disconnected", and an access point.
 *
 * The agent builds it from its `wifi.*` config (`new SimWifi({ config })`, and `applyConfig(config)` after a
 * config change) and shows `status()` as Sys.GetInfo's `wifi` object. Wifi.SetupSTA/SetupAP change the
 * runtime state only; nothing is saved.
 */
import { createHash } from "node:crypto";

/** Security enum of mgos_wifi.h: 0 open, 1 WEP, 2 WPA-PSK, 3 WPA2-PSK, 4 WPA/WPA2-PSK, 5 WPA2-Enterprise, 6 WPA3-PSK, 7 WPA2/WPA3-PSK. */
export type WifiAuth = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

export interface WifiScanResult {
  ssid: string;
  bssid: string;
  auth: WifiAuth;
  channel: number;
  rssi: number;
}

export interface WifiStaConfig {
  enable: boolean;
  ssid: string;
  pass: string;
  ip?: string;
  netmask?: string;
  gw?: string;
}

export interface WifiApConfig {
  enable: boolean;
  ssid: string;
  pass: string;
  channel?: number;
  ip?: string;
  netmask?: string;
  gw?: string;
  dhcp_start?: string;
  dhcp_end?: string;
}

export interface WifiConfig {
  sta: WifiStaConfig;
  ap: WifiApConfig;
}

export type WifiStaStatus = "disconnected" | "connecting" | "connected" | "got ip";

/** Sys.GetInfo's `wifi` object. */
export interface WifiStatus {
  sta_ip: string;
  ap_ip: string;
  status: WifiStaStatus;
  ssid: string;
}

export interface WifiHal {
  scan(): Promise<WifiScanResult[]>;
  /** Apply station settings at runtime; false when they are invalid (the service answers -1). */
  setupSta(cfg: WifiStaConfig): Promise<boolean>;
  setupAp(cfg: WifiApConfig): Promise<boolean>;
  status(): WifiStatus;
}

export interface SimNetwork {
  ssid: string;
  auth: WifiAuth;
  channel: number;
  rssi: number;
  /** When set, the only password that joins; else any valid-length password does. */
  pass?: string;
}

export const DEFAULT_NETWORKS: SimNetwork[] = [
  { ssid: "HomeNet", auth: 3, channel: 6, rssi: -48 },
  { ssid: "NETGEAR42", auth: 4, channel: 1, rssi: -63 },
  { ssid: "CoffeeShop_Free", auth: 0, channel: 11, rssi: -71 },
  { ssid: "FRITZ!Box 7590", auth: 7, channel: 1, rssi: -77 },
  { ssid: "CorpWiFi", auth: 5, channel: 6, rssi: -80 },
  { ssid: "Neighbour-WPA3", auth: 6, channel: 11, rssi: -86 },
];

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function bssidOf(ssid: string): string {
  const h = createHash("sha256").update(ssid).digest();
  h[0] = (h[0] & 0xfe) | 0x02; // locally administered, unicast
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

function validPass(pass: string): boolean {
  return pass === "" || (pass.length >= 8 && pass.length <= 63);
}

export interface SimWifiOptions {
  config?: WifiConfig;
  networks?: SimNetwork[];
  /** Time from "connecting" to the outcome (default 300 ms). */
  connectDelayMs?: number;
  random?: () => number;
}

export class SimWifi implements WifiHal {
  private readonly networks: SimNetwork[];
  private readonly connectDelayMs: number;
  private readonly random: () => number;
  private sta: WifiStatus["status"] = "disconnected";
  private staSsid = "";
  private staIp = "";
  private apIp = "";
  private timer: NodeJS.Timeout | undefined;

  constructor(options: SimWifiOptions = {}) {
    this.networks = options.networks ?? DEFAULT_NETWORKS;
    this.connectDelayMs = options.connectDelayMs ?? 300;
    this.random = options.random ?? Math.random;
    if (options.config) this.applyConfig(options.config);
  }

  /** Bring the radio to what the `wifi.*` config says (at boot and after a config change). */
  applyConfig(config: WifiConfig): void {
    void this.setupSta(config.sta);
    void this.setupAp(config.ap);
  }

  async scan(): Promise<WifiScanResult[]> {
    return this.networks
      .map((n) => ({
        ssid: n.ssid,
        bssid: bssidOf(n.ssid),
        auth: n.auth,
        channel: n.channel,
        rssi: Math.round(n.rssi + (this.random() - 0.5) * 6),
      }))
      .sort((a, b) => b.rssi - a.rssi);
  }

  async setupSta(cfg: WifiStaConfig): Promise<boolean> {
    if (!cfg.enable) {
      this.disconnect();
      return true;
    }
    if (!cfg.ssid || cfg.ssid.length > 32 || !validPass(cfg.pass ?? "")) return false;
    if (cfg.ip && (!IPV4.test(cfg.ip) || !cfg.netmask || !IPV4.test(cfg.netmask) || (cfg.gw && !IPV4.test(cfg.gw)))) return false;
    this.disconnect();
    this.sta = "connecting";
    this.staSsid = cfg.ssid;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const net = this.networks.find((n) => n.ssid === cfg.ssid);
      const pass = cfg.pass ?? "";
      const joins = net !== undefined && net.auth !== 5 && (net.auth === 0 || (pass !== "" && (net.pass === undefined || net.pass === pass)));
      if (!joins) {
        this.sta = "disconnected";
        return;
      }
      this.sta = "got ip";
      this.staIp = cfg.ip || `192.168.1.${100 + (createHash("sha256").update(cfg.ssid).digest()[0] % 100)}`;
    }, this.connectDelayMs);
    this.timer.unref();
    return true;
  }

  async setupAp(cfg: WifiApConfig): Promise<boolean> {
    if (!cfg.enable) {
      this.apIp = "";
      return true;
    }
    if (!cfg.ssid || cfg.ssid.length > 32 || !validPass(cfg.pass ?? "")) return false;
    if (cfg.channel !== undefined && (!Number.isInteger(cfg.channel) || cfg.channel < 1 || cfg.channel > 13)) return false;
    for (const a of [cfg.ip, cfg.netmask, cfg.gw, cfg.dhcp_start, cfg.dhcp_end]) if (a && !IPV4.test(a)) return false;
    this.apIp = cfg.ip || "192.168.4.1";
    return true;
  }

  status(): WifiStatus {
    return { sta_ip: this.staIp, ap_ip: this.apIp, status: this.sta, ssid: this.staSsid };
  }

  private disconnect(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.sta = "disconnected";
    this.staSsid = "";
    this.staIp = "";
  }
}
