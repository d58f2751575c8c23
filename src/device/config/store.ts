/**
 * The layered configuration of a device (spec §6, §3.4) kept in its file system root:
 *
 *   conf0.json  defaults (written at first boot; schema defaults fill in keys it lacks)
 *   conf1..8    vendor layers, each gated by the `conf_acl` of the config loaded before it
 *   conf_vendor.json  legacy vendor layer, loaded between 5 and 6
 *   conf9.json  the user layer: only the differences from level 8 (Config.Save / Config.Set save)
 *   confN.json.try    used instead of confN.json for one boot, then deleted
 *   conf.json   legacy user layer: renamed to conf9.json at boot
 *
 * Every write is atomic (temp + fsync + rename), so a kill at any instant leaves the old or the new file.
 */
import { readFile, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { debug } from "../../log.js";
import { writeFileAtomic } from "../atomic.js";
import { type DeviceConfig, defaultConfig } from "./schema.js";
import { applyConfig, cloneConfig, diffConfig, expandConfigPlaceholders } from "./values.js";

export interface ConfigStoreOptions {
  /** The device file system root holding the conf*.json files. */
  fsRoot: string;
  /** Fills `<arch>` in defaults (`device.id` = `<arch>_??????`). */
  arch: string;
  /** 12 uppercase hex digits: fills the `?` placeholders. */
  mac: string;
}

export interface SaveOptions {
  /** Write conf<level>.json.try (used for the next boot only). */
  tryOnce?: boolean;
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === "ENOENT";
}

/** Temp files of atomic writes interrupted by a crash (`.conf9.json.tmp-<pid>-<rand>`). */
async function removeLeftoverTemps(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const n of names) {
    if (/^\.conf.*\.json(\.try)?\.tmp-\d+-[a-z0-9]+$/.test(n)) {
      await unlink(join(root, n)).catch(() => undefined);
      debug("device", "removed a leftover temp file", { file: n });
    }
  }
}

export class ConfigStore {
  readonly fsRoot: string;
  readonly arch: string;
  readonly mac: string;
  private liveConfig: DeviceConfig;
  private saving: Promise<unknown> = Promise.resolve();

  private constructor(options: ConfigStoreOptions, live: DeviceConfig) {
    this.fsRoot = options.fsRoot;
    this.arch = options.arch;
    this.mac = options.mac;
    this.liveConfig = live;
  }

  /**
   * Load the configuration as at boot: writes conf0.json when absent, renames a legacy conf.json, and
   * consumes (deletes) any confN.json.try it uses.
   */
  static async boot(options: ConfigStoreOptions): Promise<ConfigStore> {
    const store = new ConfigStore(options, defaultConfig(options.arch));
    const conf0 = join(options.fsRoot, "conf0.json");
    try {
      await readFile(conf0);
    } catch (e) {
      if (!isMissing(e)) throw e;
      await writeFileAtomic(conf0, JSON.stringify(defaultConfig(options.arch), null, 2) + "\n");
    }
    try {
      // Legacy conf.json becomes the user layer, but never over an existing conf9.json (user settings).
      const conf9 = join(options.fsRoot, "conf9.json");
      const hasConf9 = await readFile(conf9).then(
        () => true,
        (e: unknown) => (isMissing(e) ? false : Promise.reject(e)),
      );
      if (!hasConf9) {
        await rename(join(options.fsRoot, "conf.json"), conf9).catch((e: unknown) => {
          if (!isMissing(e)) throw e;
        });
      }
    } catch (e) {
      debug("device", "legacy conf.json could not be renamed", { error: (e as Error).message });
    }
    await removeLeftoverTemps(options.fsRoot);
    store.liveConfig = await store.loadLevel(9, true);
    return store;
  }

  /** The live (runtime) configuration. Treat as read-only; change it with `set`. */
  get live(): DeviceConfig {
    return this.liveConfig;
  }

  /**
   * The names in the FS root (one readdir), so loading skips the layer files that are not there instead of
   * failing to open each (an ENOENT error per missing file: ~20 per boot, most of a fleet device's start-up
   * I/O cost). Names are lower-cased: on a case-insensitive file system (vfat) `CONF9.JSON` is conf9.json;
   * elsewhere such a name only costs a failed open. Undefined when the directory cannot be read: every layer
   * is then tried.
   */
  private async presentNames(): Promise<ReadonlySet<string> | undefined> {
    try {
      return new Set((await readdir(this.fsRoot)).map((n) => n.toLowerCase()));
    } catch {
      return undefined;
    }
  }

  private async readLayer(name: string, consumeTry: boolean, present: ReadonlySet<string> | undefined): Promise<unknown> {
    const path = join(this.fsRoot, name);
    if (consumeTry && (present === undefined || present.has(`${name}.try`))) {
      let text: string | undefined;
      try {
        text = await readFile(path + ".try", "utf8");
      } catch (e) {
        if (!isMissing(e)) debug("device", "config try file unreadable", { file: name + ".try", error: (e as Error).message });
      }
      if (text !== undefined) {
        await unlink(path + ".try").catch(() => undefined);
        debug("device", "config try file used once", { file: name + ".try" });
        const parsed = this.parse(text, name + ".try");
        if (parsed !== undefined) return parsed;
      }
    }
    if (present !== undefined && !present.has(name)) return undefined; // names here are lower case already
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if (!isMissing(e)) debug("device", "config file unreadable: skipped", { file: name, error: (e as Error).message });
      return undefined;
    }
    return this.parse(text, name);
  }

  private parse(text: string, name: string): unknown {
    try {
      return JSON.parse(text);
    } catch (e) {
      debug("device", "config file is not valid JSON: skipped", { file: name, error: (e as Error).message });
      return undefined;
    }
  }

  /**
   * The configuration as loaded up to `level` (0..9): defaults, conf0, then each layer gated by the
   * previous `conf_acl`, with MAC placeholders filled.
   */
  async loadLevel(level: number, consumeTry = false): Promise<DeviceConfig> {
    const cfg = defaultConfig(this.arch);
    const present = await this.presentNames();
    const c0 = await this.readLayer("conf0.json", consumeTry, present);
    if (c0 !== undefined) applyConfig(cfg, c0, { fromFile: true });
    for (let n = 1; n <= level; n++) {
      const layer = await this.readLayer(`conf${n}.json`, consumeTry, present);
      if (layer !== undefined) applyConfig(cfg, layer, { fromFile: true, acl: cfg.conf_acl });
      if (n === 5) {
        const vendor = await this.readLayer("conf_vendor.json", false, present);
        if (vendor !== undefined) applyConfig(cfg, vendor, { fromFile: true, acl: cfg.conf_acl });
      }
    }
    expandConfigPlaceholders(cfg, this.mac);
    return cfg;
  }

  /**
   * Apply `diff` (rooted at `key`) to the live config (level 9) or to vendor layer `level` (1..8).
   * Throws ConfigValueError on a type mismatch (nothing applied). With `save`, writes the layer file.
   * Returns the resulting config of that level.
   */
  async set(diff: unknown, options: { key?: string; level?: number; save?: boolean; tryOnce?: boolean } = {}): Promise<DeviceConfig> {
    const level = options.level === undefined || options.level < 0 ? 9 : options.level;
    const gate = await this.loadLevel(level - 1);
    const target = level === 9 ? cloneConfig(this.liveConfig) : await this.loadLevel(level);
    applyConfig(target, diff, { acl: gate.conf_acl, prefix: options.key ?? "" });
    if (level === 9) this.liveConfig = target;
    if (options.save) await this.saveLevel(level, target, { tryOnce: options.tryOnce });
    return target;
  }

  /** Save the live config's differences from level 8 as conf9.json (or conf9.json.try). */
  save(options: SaveOptions = {}): Promise<void> {
    return this.saveLevel(9, this.liveConfig, options);
  }

  /** Write conf<level>.json as the differences of `cfg` from level-1. Saves are serialised. */
  saveLevel(level: number, cfg: DeviceConfig, options: SaveOptions = {}): Promise<void> {
    const run = async (): Promise<void> => {
      const base = await this.loadLevel(level - 1);
      const diff = diffConfig(cfg, base);
      const file = join(this.fsRoot, `conf${level}.json${options.tryOnce ? ".try" : ""}`);
      await writeFileAtomic(file, JSON.stringify(diff, null, 2) + "\n");
      debug("device", "config saved", { file: `conf${level}.json${options.tryOnce ? ".try" : ""}` });
    };
    const p = this.saving.then(run, run);
    this.saving = p.catch(() => undefined);
    return p;
  }
}
