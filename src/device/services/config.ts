/**
 * The Config.* service (spec §3.4): Get, Set, Save over the layered store (device/config/store.ts).
 *
 * - Config.Get `{key?, level?}`: level 0..8 = as loaded up to that layer, -1/9 = live; 404 "invalid config
 *   key"; 400 "failed to load config" for another level or an unreadable layer.
 * - Config.Set `{config | value, key?, level?, save?, try_once?, reboot?}` → `{saved}`; 400 "value is
 *   required", "not allowed" (level 0), "invalid config value: <msg>"; 404 "invalid config key"; -1 "error
 *   saving config: <msg>". Unknown keys and keys denied by conf_acl are ignored. Reboot (500 ms) only when
 *   saved.
 * - Config.Save `{try_once?, reboot?}` → `{saved:true}`; -1 "error saving config: <msg>".
 */
import { RpcError, errorMessage } from "../../errors.js";
import type { RpcServer } from "../../rpc/server.js";
import type { ConfigStore } from "../config/store.js";
import { schemaAt } from "../config/schema.js";
import { ConfigValueError, getAt } from "../config/values.js";

export interface ConfigServiceDeps {
  store(): ConfigStore;
  /** Reboot after `delayMs` (in-process). */
  reboot(delayMs: number): void;
}

type Params = Record<string, unknown>;

function asParams(p: unknown): Params {
  return typeof p === "object" && p !== null && !Array.isArray(p) ? (p as Params) : {};
}

export const CONFIG_REBOOT_DELAY_MS = 500;

export function registerConfigService(server: RpcServer, deps: ConfigServiceDeps): void {
  server.addHandler("Config.Get", async (params) => {
    const p = asParams(params);
    const key = typeof p.key === "string" ? p.key : undefined;
    const level = typeof p.level === "number" ? Math.trunc(p.level) : -1;
    if (key !== undefined && (key === "" || !schemaAt(key))) throw new RpcError(404, "invalid config key");
    let cfg;
    if (level === -1 || level === 9) cfg = deps.store().live;
    else if (level >= 0 && level <= 8) {
      try {
        cfg = await deps.store().loadLevel(level);
      } catch {
        throw new RpcError(400, "failed to load config");
      }
    } else throw new RpcError(400, "failed to load config");
    return structuredClone(getAt(cfg, key ?? ""));
  }, {
    argsFmt: "{key: %Q, level: %d}",
    description: "The configuration (or the sub-tree/value at key); level 0..8 = as loaded up to that layer",
  });

  server.addHandler("Config.Set", async (params) => {
    const p = asParams(params);
    const value = p.config !== undefined ? p.config : p.value;
    if (value === undefined) throw new RpcError(400, "value is required");
    const key = typeof p.key === "string" && p.key !== "" ? p.key : undefined;
    const level = typeof p.level === "number" ? Math.trunc(p.level) : -1;
    if (level === 0) throw new RpcError(400, "not allowed");
    if (level < -1 || level > 9) throw new RpcError(400, "failed to load config");
    if (key !== undefined && !schemaAt(key)) throw new RpcError(404, "invalid config key");
    const save = p.save === true;
    const store = deps.store();
    try {
      await store.set(value, { key, level, save, tryOnce: p.try_once === true });
    } catch (e) {
      if (e instanceof ConfigValueError) throw new RpcError(400, `invalid config value: ${e.message}`);
      if (save) throw new RpcError(-1, `error saving config: ${errorMessage(e)}`);
      throw e;
    }
    if (save && p.reboot === true) deps.reboot(CONFIG_REBOOT_DELAY_MS);
    return { saved: save };
  }, {
    argsFmt: "{config: %M, key: %Q, level: %d, save: %B, try_once: %B, reboot: %B}",
    description: "Apply a config diff; with save, write it to the layer file; with reboot, reboot after 500 ms",
  });

  server.addHandler("Config.Save", async (params) => {
    const p = asParams(params);
    try {
      await deps.store().save({ tryOnce: p.try_once === true });
    } catch (e) {
      throw new RpcError(-1, `error saving config: ${errorMessage(e)}`);
    }
    if (p.reboot === true) deps.reboot(CONFIG_REBOOT_DELAY_MS);
    return { saved: true };
  }, {
    argsFmt: "{try_once: %B, reboot: %B}",
    description: "Save the live configuration as conf9.json (conf9.json.try with try_once)",
  });
}
