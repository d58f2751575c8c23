/**
 * The remos device agent: a Mongoose OS-compatible device in a Node process (`mos device`, or
 * `startDevice()` from a program). It keeps its state in a directory (identity, boot slots, the FS root of
 * the running slot with its conf*.json), serves RPC.*, Sys.*, FS.*, Config.* (and the GPIO/I2C/Wifi/OTA
 * services, device/services.ts) on the transports its config enables (device/links.ts), and reboots
 * in-process: channels close, boot slot and config are re-read from disk, uptime starts again, the process
 * lives on.
 *
 *   const dev = await startDevice({ dir: "/var/lib/remos/dev1", set: ["mqtt.enable=true"] });
 *   const ch = dev.connectLoopback();           // an in-process channel to it
 *   await dev.stop();
 */
import { mkdir, readFile, stat } from "node:fs/promises";
import { arch as hostArch } from "node:os";
import { resolve } from "node:path";
import { RpcError, UsageError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { Channel } from "../rpc/channel.js";
import type { HttpDigestAuthority } from "../rpc/digest.js";
import { RpcServer } from "../rpc/server.js";
import { LoopbackChannel, listenLoopback } from "../transport/loopback.js";
import type { DeviceConfig } from "./config/schema.js";
import { ConfigStore } from "./config/store.js";
import { ConfigValueError, parseSettings } from "./config/values.js";
import { type ConsoleSink, DeviceConsole, LL_INFO, LL_WARN } from "./console.js";
import { FsRoot } from "./fsroot.js";
import { type DeviceIdentity, loadIdentity } from "./identity.js";
import { type Links, parseListenAddr, startLinks } from "./links.js";
import { type CommitWatchdog, packageVersion, resolveBoot, startCommitWatchdog } from "./ota/boot.js";
import type { FirmwareManifest } from "./ota/manifest.js";
import { type OtaServiceHandle, registerOtaService } from "./ota/service.js";
import { type GpioHal, MemoryGpioHal } from "./hal/gpio.js";
import { registerGpioService } from "./services/gpio.js";
import { createSimulatedI2c } from "./hal/sim-i2c.js";
import { registerI2cService } from "./services/i2c.js";
import { SimWifi } from "./hal/wifi.js";
import { registerWifiService } from "./services/wifi.js";
import { registerCsrService } from "./services/csr.js";
import { createSecurity } from "./security.js";
import { registerConfigService } from "./services/config.js";
import { type FsServiceHandle, registerFsService } from "./services/fs.js";
import { type SysInfoSource, RamTracker, registerSysService } from "./services/sys.js";
import { Slots } from "../rpc/slots.js";

export interface DeviceAgentOptions {
  /** The state directory (created if missing). */
  dir: string;
  /** Set `device.id` (saved in conf9.json). */
  id?: string;
  /** `KEY=VALUE` settings applied and saved at start, typed by the schema. */
  set?: string[];
  /** Serve RPC (and the console) on this serial device (UART). */
  serial?: string;
  /** The arch reported by Sys.GetInfo and used in the default device.id (default: the host's). */
  arch?: string;
  /** Overrides `http.listen_addr` (not saved); `""` or `"off"` = no HTTP listener. */
  httpListen?: string;
  /** Register custom services; called once, before the first boot. */
  services?: (server: RpcServer, agent: DeviceAgent) => void;
  /** Copy the device console to the process's stdout/stderr (true), or to this sink (from the first line on). */
  log?: boolean | ConsoleSink;
  /** The GPIO pins GPIO.* drive (default: a simulated bank, MemoryGpioHal). */
  gpio?: GpioHal;
  /** Register the agent for `loopback://<device.id>` URLs in this process (default true). */
  loopbackName?: boolean;
}

export interface DeviceAgent {
  readonly id: string;
  readonly server: RpcServer;
  /** The FS root of the running slot. */
  readonly fsRoot: string;
  /** The live configuration (read-only view; change it with Config.Set). */
  config(): DeviceConfig;
  /** A new in-process channel to the device (closed by a reboot, like every other channel). */
  connectLoopback(): Channel;
  /** Where HTTP/WS listens, when it does. */
  readonly httpAddress?: { host: string; port: number };
  /** Reboot in-process after delayMs (default 100); resolves when the new boot is done. */
  reboot(delayMs?: number): Promise<void>;
  /** Called after every boot (not the first). Returns a function that removes the listener. */
  onBoot(listener: () => void): () => void;
  /** The device console (its log lines); add a sink to see them. */
  readonly console: DeviceConsole;
  stop(): Promise<void>;
}

/** Requests within this many ms of a scheduled reboot get 418 (spec §1.6, §4.2 step 1). */
export const REBOOT_LOCKOUT_MS = 100;

class Agent implements DeviceAgent {
  readonly server: RpcServer;
  readonly console = new DeviceConsole();
  readonly dir: string;
  private readonly options: DeviceAgentOptions;
  private readonly archName: string;
  private identity!: DeviceIdentity;
  private store!: ConfigStore;
  private root!: FsRoot;
  private manifest!: FirmwareManifest;
  private bootTime = Date.now();
  private readonly ram = new RamTracker();
  /** Channels being served, closed at reboot (Slots: each HTTP request is one, so no Set churn). */
  private readonly channels = new Slots<Channel>();
  private readonly bootListeners = new Set<() => void>();
  private links: Links | undefined;
  private watchdog: CommitWatchdog | undefined;
  /** The FS service's kept file handles: closed with the channels at every reboot and at stop. */
  private fs: FsServiceHandle | undefined;
  private stopLoopbackName: (() => void) | undefined;
  private rebootAt: number | undefined;
  /** The port bound for a `HOST:0` listen address, kept for the following boots. */
  private pinnedHttp: { requested: string; bound: string } | undefined;
  private rebootTimer: NodeJS.Timeout | undefined;
  private rebootWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private fileLevel = "";
  private stopped = false;

  constructor(options: DeviceAgentOptions) {
    this.options = options;
    this.dir = resolve(options.dir);
    this.archName = options.arch ?? hostArch();
    this.server = new RpcServer();
  }

  get id(): string {
    return this.store.live.device.id;
  }
  get fsRoot(): string {
    return this.root.root;
  }
  get httpAddress(): { host: string; port: number } | undefined {
    return this.links?.httpAddress;
  }
  config(): DeviceConfig {
    return this.store.live;
  }

  /** First start: identity, services, the `--id`/`--set` settings, then boot. */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.identity = await loadIdentity(this.dir);
    const log = this.options.log;
    if (typeof log === "function") this.console.addSink(log);
    else if (log) this.console.addSink((fd, text) => (fd === 2 ? process.stderr : process.stdout).write(text + "\n"));
    this.installServices();
    await this.boot(true);
  }

  private installServices(): void {
    const s = this.server;
    const security = createSecurity({
      rpcConfig: () => this.store.live.rpc,
      readFsFile: async (name) => readFile(await this.root.resolve(name), "utf8"),
      statFsFile: async (name) => {
        const st = await stat(await this.root.resolve(name));
        return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
      },
    });
    this.httpAuthority = security.httpAuthority;
    s.addPreHandler(() => {
      if (this.rebootAt === undefined) return;
      const left = this.rebootAt - Date.now();
      if (left < REBOOT_LOCKOUT_MS) throw new RpcError(418, `shutting down in ${Math.max(0, Math.round(left))} ms`);
    });
    // rpc.service_sys_enable=false: Sys.* are not there at all (404 before any ACL check, not in RPC.List)
    s.setMethodFilter((method) => this.store.live.rpc.service_sys_enable || !/^sys\./i.test(method));
    s.addPreHandler(security.preHandler);
    registerSysService(s, {
      info: () => this.sysInfo(),
      mgVersion: packageVersion(),
      mgId: `remos/${packageVersion()}`,
      reboot: (ms) => void this.reboot(ms).catch((e: unknown) => debug("device", "reboot failed", { error: errorMessage(e) })),
      setDebug: (level, fileLevel) => {
        if (level !== undefined) this.console.setLevel(level);
        if (fileLevel !== undefined) this.fileLevel = fileLevel;
        this.console.log(LL_INFO, `debug level ${this.console.getLevel()}${this.fileLevel ? `, file_level ${this.fileLevel}` : ""}`);
      },
    }, this.ram);
    this.fs = registerFsService(s, { root: () => this.root });
    registerConfigService(s, {
      store: () => this.store,
      reboot: (ms) => void this.reboot(ms).catch((e: unknown) => debug("device", "reboot failed", { error: errorMessage(e) })),
    });
    registerGpioService(s, this.options.gpio ?? new MemoryGpioHal());
    registerI2cService(s, createSimulatedI2c(this.dir, () => this.store.live.i2c.enable).bus);
    registerWifiService(s, this.wifi);
    this.wifiInfo = () => this.wifi.status();
    registerCsrService(s, { fsRoot: () => this.fsRoot });
    this.ota = registerOtaService(s, {
      dir: this.dir,
      updateConfig: () => {
        const u = this.store.live.update;
        return {
          timeout: u.timeout,
          commit_timeout: u.commit_timeout,
          keys: [u.key0, u.key1, u.key2, u.key3, u.key4, u.key5, u.key6, u.key7].map((k) => k || undefined),
          sig_req_mask: u.sig_req_mask,
        };
      },
      requestReboot: (ms) => void this.reboot(ms).catch((e: unknown) => debug("device", "reboot failed", { error: errorMessage(e) })),
    });
    this.options.services?.(s, this);
  }

  /** The HTTP digest authority the HTTP/WS device ends use (shares the replay store with the pre-handler). */
  httpAuthority: HttpDigestAuthority | undefined;

  private sysInfo(): SysInfoSource {
    const cfg = this.store.live;
    const info: SysInfoSource = {
      id: cfg.device.id,
      app: this.manifest.name,
      fw_version: this.manifest.version,
      fw_id: this.manifest.build_id,
      mac: this.identity.mac,
      arch: this.archName,
      publicKey: cfg.device.public_key,
      bootTime: this.bootTime,
      stateDir: this.dir,
    };
    const wifi = this.wifiInfo?.();
    if (wifi) info.wifi = wifi;
    return info;
  }

  /** The simulated radio: Wifi.* and Sys.GetInfo's `wifi`, brought to the `wifi.*` config at every boot. */
  private readonly wifi = new SimWifi();
  private ota: OtaServiceHandle | undefined;
  /** The wifi state for Sys.GetInfo (set when the wifi service is wired in). */
  wifiInfo: (() => SysInfoSource["wifi"]) | undefined;

  private async boot(first: boolean): Promise<void> {
    this.ota?.reboot(); // before anything can see the new firmware: no finished update carries over
    const b = await resolveBoot(this.dir);
    await mkdir(b.fsRoot, { recursive: true });
    this.root = new FsRoot(b.fsRoot);
    this.manifest = b.manifest;
    this.store = await ConfigStore.boot({ fsRoot: b.fsRoot, arch: this.archName, mac: this.identity.mac });
    if (first) await this.applyStartSettings();
    const cfg = this.store.live;
    this.wifi.applyConfig(cfg.wifi);
    this.server.localIds = [cfg.device.id];
    this.console.setLevel(cfg.debug.level);
    this.bootTime = Date.now();
    this.ram.reset();
    if (this.options.loopbackName !== false) {
      try {
        this.stopLoopbackName = listenLoopback(cfg.device.id, (ch) => this.serveChannel(ch));
      } catch (e) {
        debug("device", "loopback name not registered", { id: cfg.device.id, error: errorMessage(e) });
      }
    }
    const requestedHttp = this.options.httpListen ?? cfg.http.listen_addr;
    this.links = await startLinks({
      config: () => this.store.live,
      fsRoot: this.root,
      console: this.console,
      httpAuthority: this.httpAuthority,
      serial: this.options.serial,
      httpListen: this.pinnedHttp?.requested === requestedHttp ? this.pinnedHttp.bound : this.options.httpListen,
      onChannel: (ch) => this.serveChannel(ch),
      strict: first,
    });
    this.pinHttpPort(requestedHttp);
    this.watchdog = startCommitWatchdog(this.dir, (ms) => void this.reboot(ms).catch(() => undefined));
    if (b.reverted) this.console.log(LL_WARN, `reverted from slot ${b.reverted.from}: ${b.reverted.reason}`);
    this.console.log(LL_INFO, `${cfg.device.id} booted: ${this.manifest.name} ${this.manifest.version} (slot ${b.slot}), mac ${this.identity.mac}`);
  }

  /**
   * A listen address with port 0 gets a free port at the boot that first binds it; later boots with the
   * same requested address bind that same port again, so the device's address survives its reboots.
   */
  private pinHttpPort(requested: string): void {
    const bound = this.links?.httpAddress;
    if (!bound || this.pinnedHttp?.requested === requested) return;
    let asked;
    try {
      asked = parseListenAddr(requested);
    } catch {
      return;
    }
    if (asked?.port !== 0) return;
    const host = bound.host.includes(":") ? `[${bound.host}]` : bound.host;
    this.pinnedHttp = { requested, bound: `${host}:${bound.port}` };
  }

  private async applyStartSettings(): Promise<void> {
    const settings = [...(this.options.set ?? [])];
    if (this.options.id !== undefined) settings.push(`device.id=${this.options.id}`);
    if (settings.length === 0) return;
    try {
      // one diff, so the store reads its lower layers once, not once per setting
      await this.store.set(parseSettings(settings));
    } catch (e) {
      if (e instanceof ConfigValueError) throw new UsageError(`--set: ${e.message}`);
      throw e;
    }
    await this.store.save();
  }

  /** Serve a channel until it closes; a reboot closes it. */
  serveChannel(ch: Channel): void {
    if (this.stopped || (this.rebootAt !== undefined && this.rebootAt <= Date.now())) {
      void ch.close();
      return;
    }
    const slot = this.channels.add(ch);
    let removed = false;
    ch.onClose(() => {
      if (!removed) this.channels.remove(slot);
      removed = true;
    });
    this.server.serve(ch);
  }

  connectLoopback(): Channel {
    const [client, device] = LoopbackChannel.pair({ peerNames: [`loopback://${this.id}`, "loopback-client"] });
    this.serveChannel(device);
    return client;
  }

  onBoot(listener: () => void): () => void {
    this.bootListeners.add(listener);
    return () => this.bootListeners.delete(listener);
  }

  reboot(delayMs = 100): Promise<void> {
    if (this.stopped) return Promise.reject(new UsageError("the device agent is stopped"));
    const at = Date.now() + Math.max(0, delayMs);
    const done = new Promise<void>((res, rej) => this.rebootWaiters.push({ resolve: res, reject: rej }));
    if (this.rebootAt === undefined || at < this.rebootAt) {
      this.rebootAt = at;
      if (this.rebootTimer) clearTimeout(this.rebootTimer);
      this.rebootTimer = setTimeout(() => void this.doReboot(), Math.max(0, delayMs));
    }
    this.console.log(LL_INFO, `rebooting in ${Math.max(0, delayMs)} ms`);
    return done;
  }

  private async doReboot(): Promise<void> {
    this.rebootTimer = undefined;
    const waiters = this.rebootWaiters;
    this.rebootWaiters = [];
    try {
      await this.shutdown();
      if (!this.stopped) {
        this.rebootAt = undefined;
        await this.boot(false);
        for (const l of [...this.bootListeners]) {
          try {
            l();
          } catch (e) {
            debug("device", "boot listener threw", { error: errorMessage(e) });
          }
        }
      }
      for (const w of waiters) w.resolve();
    } catch (e) {
      debug("device", "reboot failed", { error: errorMessage(e) });
      this.rebootAt = undefined;
      for (const w of waiters) w.reject(e);
    }
  }

  /** Close every channel and link (the boot's end). */
  private async shutdown(): Promise<void> {
    this.watchdog?.stop();
    this.watchdog = undefined;
    this.stopLoopbackName?.();
    this.stopLoopbackName = undefined;
    const links = this.links;
    this.links = undefined;
    await Promise.all(this.channels.values().map((c) => c.close().catch(() => undefined)));
    this.channels.clear();
    this.server.stopAll();
    this.fs?.closeHandles();
    await links?.close();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.rebootTimer) clearTimeout(this.rebootTimer);
    this.rebootTimer = undefined;
    await this.shutdown();
    const waiters = this.rebootWaiters;
    this.rebootWaiters = [];
    for (const w of waiters) w.reject(new UsageError("the device agent stopped before rebooting"));
  }
}

/** Start a device agent on a state directory. */
export async function startDevice(options: DeviceAgentOptions): Promise<DeviceAgent> {
  if (!options.dir) throw new UsageError("the device needs a state directory (dir)");
  const agent = new Agent(options);
  try {
    await agent.start();
  } catch (e) {
    await agent.stop().catch(() => undefined);
    throw e;
  }
  return agent;
}

export type { Agent as DeviceAgentImpl };
