/**
 * Pure operations on configuration values: applying a (partial) config object with type checks and
 * `conf_acl` gating, the difference between two configs, `?` placeholders filled from the MAC (spec §6),
 * dotted-key lookup and `KEY=VALUE` settings typed by the schema.
 */
import { globMatch } from "../../rpc/glob.js";
import { debug } from "../../log.js";
import { type ConfigScalar, type ConfigType, type DeviceConfig, type SchemaNode, CONFIG_SCHEMA, isLeaf, schemaAt } from "./schema.js";

/** A value of the wrong type for its key; the Config service answers 400 `invalid config value: <msg>`. */
export class ConfigValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigValueError";
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** `conf_acl` check (CORE mgos_conf_check_access): comma list of globs, `-` denies, first match wins. */
export function aclAllows(acl: string, key: string): boolean {
  for (const raw of acl.split(",")) {
    const entry = raw.trim();
    if (!entry) continue;
    const deny = entry.startsWith("-");
    const pattern = entry.startsWith("-") || entry.startsWith("+") ? entry.slice(1) : entry;
    if (globMatch(pattern, key)) return !deny;
  }
  return false;
}

/**
 * Convert one value to the leaf's type, or throw ConfigValueError. From files (`fromFile`), ints also
 * accept hex text (`"0x1f"`), as the firmware's loader does.
 */
export function coerceLeaf(type: ConfigType, value: unknown, key: string, fromFile = false): ConfigScalar {
  switch (type) {
    case "string":
      if (typeof value === "string") return value;
      if (value === null) return ""; // an unset string
      break;
    case "bool":
      if (typeof value === "boolean") return value;
      break;
    case "int":
      if (typeof value === "number" && Number.isInteger(value)) return value;
      if (fromFile && typeof value === "string" && /^-?0x[0-9a-f]+$/i.test(value)) {
        const n = value.startsWith("-") ? -parseInt(value.slice(1), 16) : parseInt(value, 16);
        if (Number.isSafeInteger(n)) return n;
      }
      break;
    case "double":
      if (typeof value === "number" && Number.isFinite(value)) return value;
      break;
  }
  const want = type === "int" ? "integer" : type === "double" ? "number" : type;
  throw new ConfigValueError(`${key}: expected ${want}, got ${typeName(value)}`);
}

export interface ApplyOptions {
  /** Keys not allowed by this `conf_acl` are ignored (default: all allowed). */
  acl?: string;
  /** Values come from a config file: hex ints accepted, bad values skipped and logged instead of thrown. */
  fromFile?: boolean;
  /** The dotted key `diff` is rooted at (default: the whole config). */
  prefix?: string;
}

/**
 * Apply `diff` onto `target` (mutated). Unknown keys and keys denied by the ACL are silently ignored
 * (spec §3.4); a value of the wrong type throws ConfigValueError (nothing is half-applied only if the
 * caller applies to a copy, which the store does).
 */
export function applyConfig(target: DeviceConfig, diff: unknown, options: ApplyOptions = {}): void {
  const prefix = options.prefix ?? "";
  const node = schemaAt(prefix);
  if (!node) throw new ConfigValueError(`unknown key ${prefix}`);
  if (prefix === "") {
    applyNode(target as unknown as Obj, undefined, node, diff, prefix, options);
    return;
  }
  const parts = prefix.split(".");
  let parent = target as unknown as Obj;
  for (const p of parts.slice(0, -1)) parent = parent[p] as Obj;
  applyNode(parent, parts[parts.length - 1], node, diff, prefix, options);
}

/**
 * Apply `value` to the config node `holder[name]` (the whole `holder` when `name` is undefined: the root),
 * whose schema is `node` and dotted key `key`; the walk carries the object it is in, so a leaf costs no
 * lookup from the root.
 */
function applyNode(holder: Obj, name: string | undefined, node: SchemaNode, value: unknown, key: string, o: ApplyOptions): void {
  if (isLeaf(node)) {
    if (o.acl !== undefined && !aclAllows(o.acl, key)) {
      debug("device", "config key denied by conf_acl: ignored", { key });
      return;
    }
    let v: ConfigScalar;
    try {
      v = coerceLeaf(node.type, value, key, o.fromFile);
    } catch (e) {
      if (!o.fromFile) throw e;
      debug("device", "bad value in config file: ignored", { key, error: (e as Error).message });
      return;
    }
    if (name !== undefined) holder[name] = v;
    return;
  }
  if (!isObj(value)) {
    const m = `${key || "config"}: expected object, got ${typeName(value)}`;
    if (o.fromFile) {
      debug("device", "bad value in config file: ignored", { key, error: m });
      return;
    }
    throw new ConfigValueError(m);
  }
  const obj = name === undefined ? holder : (holder[name] as Obj);
  for (const [k, v] of Object.entries(value)) {
    if (!Object.prototype.hasOwnProperty.call(node, k)) {
      debug("device", "unknown config key ignored", { key: key ? `${key}.${k}` : k });
      continue;
    }
    applyNode(obj, k, node[k], v, key ? `${key}.${k}` : k, o);
  }
}

/** The keys of `cfg` whose values differ from `base`, as a nested object (what conf<N>.json holds). */
export function diffConfig(cfg: DeviceConfig, base: DeviceConfig): Obj {
  const walk = (a: unknown, b: unknown): unknown => {
    if (!isObj(a)) return a === b ? undefined : a;
    const out: Obj = {};
    for (const [k, v] of Object.entries(a)) {
      const d = walk(v, isObj(b) ? b[k] : undefined);
      if (d !== undefined) out[k] = d;
    }
    return Object.keys(out).length ? out : undefined;
  };
  return (walk(cfg, base) as Obj | undefined) ?? {};
}

/** A deep copy (configs are plain JSON). */
export function cloneConfig(cfg: DeviceConfig): DeviceConfig {
  return structuredClone(cfg);
}

/**
 * Replace `?`s from the right with the MAC's hex digits from the right (uppercase), only when their count
 * is even (spec §6): `esp32_??????` + `246F28A1B2C3` → `esp32_A1B2C3`.
 */
export function expandMacPlaceholders(value: string, mac: string): string {
  const count = [...value].filter((c) => c === "?").length;
  if (count === 0 || count % 2 !== 0) return value;
  const hex = mac.toUpperCase();
  const chars = [...value];
  let m = hex.length - 1;
  for (let i = chars.length - 1; i >= 0 && m >= 0; i--) {
    if (chars[i] === "?") chars[i] = hex[m--];
  }
  return chars.join("");
}

/** Fill the MAC placeholders of `device.id`, `wifi.ap.ssid` and `aws.thing_name` (mutates). */
export function expandConfigPlaceholders(cfg: DeviceConfig, mac: string): void {
  cfg.device.id = expandMacPlaceholders(cfg.device.id, mac);
  cfg.wifi.ap.ssid = expandMacPlaceholders(cfg.wifi.ap.ssid, mac);
  cfg.aws.thing_name = expandMacPlaceholders(cfg.aws.thing_name, mac);
}

/** The value at a dotted key (`""` = the whole config), or undefined when there is no such key. */
export function getAt(cfg: DeviceConfig, key: string): unknown {
  if (!schemaAt(key)) return undefined;
  let v: unknown = cfg;
  if (key === "") return v;
  for (const p of key.split(".")) v = isObj(v) ? v[p] : undefined;
  return v;
}

/** `{a:{b:value}}` for key `a.b`. */
export function nestAt(key: string, value: unknown): unknown {
  if (key === "") return value;
  return key.split(".").reduceRight<unknown>((acc, part) => ({ [part]: acc }), value);
}

/**
 * A `KEY=VALUE` setting (`mos device --set`) as a config diff, with VALUE typed by the schema:
 * bool `true/false/1/0`, int decimal or `0x` hex, double any number, string verbatim.
 */
export function parseSetting(setting: string): Obj {
  const eq = setting.indexOf("=");
  if (eq <= 0) throw new ConfigValueError(`"${setting}" is not KEY=VALUE`);
  const key = setting.slice(0, eq).trim();
  const text = setting.slice(eq + 1);
  const node = schemaAt(key);
  if (!node || key === "") throw new ConfigValueError(`unknown config key "${key}"`);
  if (!isLeaf(node)) throw new ConfigValueError(`"${key}" is a section, not a value`);
  let value: ConfigScalar;
  switch (node.type) {
    case "string":
      value = text;
      break;
    case "bool":
      if (text === "true" || text === "1") value = true;
      else if (text === "false" || text === "0") value = false;
      else throw new ConfigValueError(`${key}: expected true or false, got "${text}"`);
      break;
    case "int": {
      const n = /^-?0x[0-9a-f]+$/i.test(text) ? coerceLeaf("int", text, key, true) : Number(text);
      if (text.trim() === "" || !Number.isInteger(n)) throw new ConfigValueError(`${key}: expected an integer, got "${text}"`);
      value = n;
      break;
    }
    case "double": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) throw new ConfigValueError(`${key}: expected a number, got "${text}"`);
      value = n;
      break;
    }
  }
  return nestAt(key, value) as Obj;
}

/**
 * `KEY=VALUE` settings as one config diff: each read as parseSetting reads it, a later setting of the same
 * key winning, so applying the diff once equals applying the settings one after another.
 */
export function parseSettings(settings: readonly string[]): Obj {
  const diff: Obj = {};
  for (const s of settings) mergeInto(diff, parseSetting(s));
  return diff;
}

/** Merge a diff into another: sections merged key by key, values replaced. */
function mergeInto(into: Obj, from: Obj): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (isObj(v) && isObj(cur)) mergeInto(cur, v);
    else into[k] = v;
  }
}

export { CONFIG_SCHEMA };
