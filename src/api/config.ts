/**
 * `device.config`: the Config.* service (spec §3.4) and the mos config-set algorithm (spec §5.1):
 * values converted to the type of the existing value, `Config.Set {config, save, reboot, try_once, level}`,
 * and the `Config.Save` fallback for firmware older than 2.12 whose Config.Set cannot save.
 */
import { UsageError } from "../errors.js";
import type { CallOpts, DeviceCore } from "./core.js";
import { withAttempts } from "./transfer.js";

export type ConfigValue = string | number | boolean | null | ConfigValue[] | { [key: string]: ConfigValue };
export type ConfigObject = { [key: string]: ConfigValue };

export interface ConfigGetOptions extends CallOpts {
  /** 0..8: the config as loaded up to that layer; -1 (default) or 9: the live config. */
  level?: number;
}

export interface ConfigSetOptions extends CallOpts {
  /** Save to the device's config file (default true). */
  save?: boolean;
  /** Reboot after saving (default false in the API; mos config-set defaults to true). */
  reboot?: boolean;
  /** Save as conf9.json.try, used for one boot only. */
  tryOnce?: boolean;
  /** Config layer to edit (1..9); -1/undefined = the user layer. */
  level?: number;
  /** Attempts of each call (default 3, as mos). */
  attempts?: number;
}

export interface ConfigSetResult {
  /** The device saved the change (via Config.Set or the Config.Save fallback). */
  saved: boolean;
  /** A reboot was requested along with the save. */
  rebooting: boolean;
  /** The Config.Save fallback was used (old firmware). */
  usedSaveFallback: boolean;
}

/** Walk a dot-separated path (`mqtt.ssl_cert`) in a config object; undefined when absent. */
export function configValueAt(config: unknown, path: string | undefined): unknown {
  if (!path) return config;
  let v: unknown = config;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object" || Array.isArray(v) || !(part in (v as object))) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * Build the Config.Set diff for `key=value` assignments, each value converted to the type of the value the
 * device has now (mos behaviour): strings stay text, numbers must parse, booleans are `true`/`false`.
 * Keys the device does not have, and object-valued keys, are refused.
 */
export function buildConfigDiff(current: unknown, assignments: Record<string, string>): ConfigObject {
  const diff: ConfigObject = {};
  for (const [key, text] of Object.entries(assignments)) {
    const existing = configValueAt(current, key);
    if (existing === undefined) throw new UsageError(`no config value at path "${key}"`);
    let value: ConfigValue;
    if (typeof existing === "string" || existing === null) value = text;
    else if (typeof existing === "number") {
      const n = text.trim() === "" ? NaN : Number(text);
      if (!Number.isFinite(n)) throw new UsageError(`${key}: "${text}" is not a number`);
      value = n;
    } else if (typeof existing === "boolean") {
      if (text !== "true" && text !== "false") throw new UsageError(`${key}: "${text}" is not a boolean (true or false)`);
      value = text === "true";
    } else {
      throw new UsageError(`${key} is an object; set its fields one by one (e.g. ${key}.FIELD=VALUE)`);
    }
    let node = diff;
    const parts = key.split(".");
    for (const p of parts.slice(0, -1)) {
      const child = node[p];
      if (child === undefined || child === null || typeof child !== "object" || Array.isArray(child)) node[p] = {};
      node = node[p] as ConfigObject;
    }
    node[parts[parts.length - 1]] = value;
  }
  return diff;
}

/** Parse `KEY=VALUE` command-line words. */
export function parseAssignments(words: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const i = w.indexOf("=");
    if (i <= 0) throw new UsageError(`"${w}" is not KEY=VALUE`);
    out[w.slice(0, i)] = w.slice(i + 1);
  }
  return out;
}

export class ConfigApi {
  private readonly core: DeviceCore;

  constructor(core: DeviceCore) {
    this.core = core;
  }

  /** `Config.Get {key?, level?}`: the whole config, or the subtree/scalar at `key`. */
  get<T = unknown>(key?: string, opts: ConfigGetOptions = {}): Promise<T> {
    const params: Record<string, unknown> = {};
    if (key) params.key = key;
    if (opts.level !== undefined && opts.level !== -1) params.level = opts.level;
    return this.core.call<T>("Config.Get", Object.keys(params).length ? params : undefined, opts);
  }

  /**
   * `Config.Set` with save (and optional reboot); when the reply lacks `saved:true` although a save was
   * asked for (firmware < 2.12), `Config.Save {reboot, try_once}` follows. Each call gets `attempts` tries.
   */
  async set(diff: ConfigObject, opts: ConfigSetOptions = {}): Promise<ConfigSetResult> {
    const save = opts.save ?? true;
    const reboot = save && (opts.reboot ?? false);
    const attempts = opts.attempts ?? 3;
    const params: Record<string, unknown> = { config: diff };
    // mos omits zero-valued fields: no save ⇒ neither save nor reboot keys.
    if (save) params.save = true;
    if (reboot) params.reboot = true;
    if (opts.tryOnce) params.try_once = true;
    // as mos: level only when > 0 (firmware refuses level 0 with "not allowed"; -1 means the user layer)
    if (opts.level !== undefined && opts.level > 0) params.level = opts.level;
    const callOpts = { timeout: opts.timeout, signal: opts.signal };
    const r = await withAttempts("Config.Set", attempts, opts.signal, () => this.core.call<{ saved?: unknown } | null>("Config.Set", params, callOpts));
    if (!save) return { saved: false, rebooting: false, usedSaveFallback: false };
    if (r && typeof r === "object" && r.saved === true) return { saved: true, rebooting: reboot, usedSaveFallback: false };
    await this.save({ reboot, tryOnce: opts.tryOnce, attempts, timeout: opts.timeout ?? Math.max(10_000, this.core.timeoutMs), signal: opts.signal });
    return { saved: true, rebooting: reboot, usedSaveFallback: true };
  }

  /** `Config.Save {reboot, try_once}`. */
  async save(opts: { reboot?: boolean; tryOnce?: boolean; attempts?: number } & CallOpts = {}): Promise<void> {
    const params = { reboot: opts.reboot ?? false, try_once: opts.tryOnce ?? false };
    await withAttempts("Config.Save", opts.attempts ?? 3, opts.signal, () =>
      this.core.call("Config.Save", params, { timeout: opts.timeout, signal: opts.signal }),
    );
  }

  /** mos config-set: Config.Get (at `level`), type-matched diff, then `set`. */
  async setValues(assignments: Record<string, string>, opts: ConfigSetOptions = {}): Promise<ConfigSetResult> {
    const current = await withAttempts("Config.Get", opts.attempts ?? 3, opts.signal, () =>
      this.get(undefined, { level: opts.level, timeout: opts.timeout, signal: opts.signal }),
    );
    return this.set(buildConfigDiff(current, assignments), opts);
  }
}
