/**
 * The OTA.* RPC service of the remos device agent (spec §3.8): push updates (OTA.Status/Begin/Write/End,
 * as `mos ota` drives them), pull updates (OTA.Update), and the boot state (OTA.Commit/Revert/
 * GetBootState/SetBootState/CreateSnapshot). Bundle format: bundle.ts; verification: verify.ts; slots and
 * the boot state: boot.ts; installation: install.ts.
 *
 * What the agent passes (OtaDeps): `dir` (the state directory), `updateConfig()` (the live `update.*`
 * config: timeout, commit_timeout, key0..7 as `keys`, sig_req_mask), `requestReboot(delayMs)` (the agent's
 * reboot, which also answers 418 during the lockout), and optionally `fetch` (tests) and `maxBundleSize`.
 * The agent also runs `startCommitWatchdog(dir, requestReboot)` from boot.ts after resolveBoot.
 *
 * Error codes (decided here; the firmware's are closed source):
 * 400 bad or missing args · 409 wrong state ("update already in progress", "no update in progress",
 * "the running firmware is not committed") · 413 bigger than declared / than maxBundleSize · 422 bundle
 * refused (malformed or truncated ZIP, manifest, platform, size or checksum) · 403 signature policy not met ·
 * 502 download failed · 504 download timed out · -1 Commit/Revert/boot state/snapshot failure · -2 slot not
 * bootable. A refused bundle changes nothing: verification runs before anything is written.
 */
import { open, rm, mkdir, readFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { RpcError, errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import type { RpcServer } from "../../rpc/server.js";
import {
  isSlotNumber,
  otherSlot,
  publicBootState,
  readBootState,
  readSlotManifest,
  revertBootState,
  slotFsRoot,
  writeBootState,
  type BootState,
} from "./boot.js";
import { downloadBundle } from "./download.js";
import { installSlot } from "./install.js";
import { verifyBundle } from "./verify.js";

export interface UpdateConfig {
  /** update.timeout: seconds an update may take (push session or download). */
  timeout: number;
  /** update.commit_timeout: default seconds to commit after the reboot. */
  commit_timeout: number;
  /** update.key0..key7. */
  keys: (string | undefined)[];
  /** update.sig_req_mask. */
  sig_req_mask: number;
}

export interface OtaDeps {
  dir: string;
  updateConfig(): UpdateConfig;
  requestReboot(delayMs: number): void;
  fetch?: typeof fetch;
  /** Largest bundle accepted (bytes, default 32 MiB). */
  maxBundleSize?: number;
  /** Delay before the reboot into a new firmware (ms, default 500). */
  rebootDelayMs?: number;
  now?: () => number;
}

/** OTA.Status `state`: the mgos_ota_state enum. */
export const OTA_IDLE = 0;
export const OTA_IN_PROGRESS = 1;
export const OTA_ERROR = 2;
export const OTA_SUCCESS = 3;

interface PushSession {
  size: number;
  received: number;
  commitTimeout: number;
  path: string;
  fh: FileHandle;
  timer: NodeJS.Timeout;
}

const DEFAULT_MAX = 32 * 1024 * 1024;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function intArg(p: Record<string, unknown>, name: string, required: boolean, min = 0): number | undefined {
  const v = p[name];
  if (v === undefined || v === null) {
    if (required) throw new RpcError(400, `${name} is required`);
    return undefined;
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw new RpcError(400, `${name} must be an integer >= ${min}`);
  return v;
}

function obj(p: unknown): Record<string, unknown> {
  return p && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

/** What the agent keeps of the OTA service: `reboot()` at every (in-process) boot. */
export interface OtaServiceHandle {
  /** A reboot forgets the update session and its status, as the firmware's in-memory state does. */
  reboot(): void;
}

export function registerOtaService(server: RpcServer, deps: OtaDeps): OtaServiceHandle {
  const max = deps.maxBundleSize ?? DEFAULT_MAX;
  const now = deps.now ?? Date.now;
  const otaDir = join(deps.dir, "ota");
  let state = OTA_IDLE;
  let msg = "";
  let session: PushSession | undefined;
  let pulling: { size: number; received: number } | undefined;
  // Leftover staging from before the (re)boot goes first; every OTA operation queues behind it.
  let chain: Promise<unknown> = rm(otaDir, { recursive: true, force: true }).catch(() => undefined);
  /** Run OTA operations one at a time, in arrival order. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  const bootState = async (): Promise<BootState> => {
    const s = await readBootState(deps.dir);
    if (!s) throw new RpcError(-1, "no boot state (the agent has not booted)");
    return s;
  };

  const fail = (message: string): void => {
    state = OTA_ERROR;
    msg = message;
  };

  const dropSession = async (): Promise<void> => {
    const s = session;
    session = undefined;
    if (!s) return;
    clearTimeout(s.timer);
    await s.fh.close().catch(() => undefined);
    await rm(s.path, { force: true }).catch(() => undefined);
  };

  const requireCommitted = (s: BootState): void => {
    if (!s.is_committed) throw new RpcError(409, "the running firmware is not committed (OTA.Commit or OTA.Revert first)");
  };

  /** Verify, install into the inactive slot, switch the boot state (uncommitted), request the reboot. */
  const apply = async (zip: Uint8Array, commitTimeout: number): Promise<{ slot: number; name: string; version: string }> => {
    const s = await bootState();
    requireCommitted(s);
    const cfg = deps.updateConfig();
    const active = s.active_slot;
    const verified = await verifyBundle(zip, { keys: cfg.keys, sigReqMask: cfg.sig_req_mask, fsRoot: slotFsRoot(deps.dir, active) });
    const target = otherSlot(active);
    if (s.revert_slot === target) await writeBootState(deps.dir, { ...s, revert_slot: active });
    await installSlot(deps.dir, target, { files: verified.files, manifest: verified.manifest, mergeFrom: slotFsRoot(deps.dir, active) });
    await writeBootState(deps.dir, { active_slot: target, revert_slot: active, is_committed: false, commit_timeout: commitTimeout });
    debug("ota", "firmware installed; rebooting into it", { slot: target, version: verified.manifest.version });
    deps.requestReboot(deps.rebootDelayMs ?? 500);
    return { slot: target, name: verified.manifest.name, version: verified.manifest.version };
  };

  server.addHandler("OTA.Status", async () => {
    const s = await readBootState(deps.dir);
    const size = session?.size ?? pulling?.size ?? 0;
    const received = session?.received ?? pulling?.received ?? 0;
    return {
      state,
      msg,
      progress_percent: size > 0 ? Math.floor((received * 100) / size) : state === OTA_SUCCESS ? 100 : 0,
      size,
      received,
      is_committed: s?.is_committed ?? true,
      commit_timeout: s?.commit_timeout ?? 0,
      partition: s?.active_slot ?? 0,
    };
  }, { argsFmt: "", description: "Update state: 0 idle, 1 in progress, 2 error, 3 success" });

  server.addHandler("OTA.Begin", (params) => serial(async () => {
    const p = obj(params);
    const size = intArg(p, "size", true, 1) as number;
    const cfg = deps.updateConfig();
    const timeout = intArg(p, "timeout", false, 1) ?? cfg.timeout;
    const commitTimeout = intArg(p, "commit_timeout", false) ?? cfg.commit_timeout;
    if (session || pulling) throw new RpcError(409, "update already in progress");
    if (size > max) throw new RpcError(413, `size ${size} exceeds the ${max}-byte limit`);
    requireCommitted(await bootState());
    await mkdir(otaDir, { recursive: true });
    const path = join(otaDir, "staging.zip");
    const fh = await open(path, "w+", 0o600);
    const timer = setTimeout(() => {
      void serial(async () => {
        if (session?.fh !== fh) return;
        debug("ota", "update timed out", { timeout });
        fail(`update timed out after ${timeout} s`);
        await dropSession();
      });
    }, timeout * 1000);
    timer.unref();
    session = { size, received: 0, commitTimeout, path, fh, timer };
    state = OTA_IN_PROGRESS;
    msg = "receiving";
    return null;
  }), { argsFmt: "{timeout: %d, commit_timeout: %d, size: %d}", description: "Start a push update of `size` bytes" });

  server.addHandler("OTA.Write", (params) => serial(async () => {
    const p = obj(params);
    const offset = intArg(p, "offset", true) as number;
    if (typeof p.data !== "string" || !B64.test(p.data)) throw new RpcError(400, "data (base64) is required");
    const s = session;
    if (!s) throw new RpcError(409, "no update in progress");
    const data = Buffer.from(p.data, "base64");
    if (offset > s.received) throw new RpcError(400, `offset ${offset} is past the ${s.received} bytes received`);
    const end = offset + data.length;
    if (end > s.size) throw new RpcError(413, `data ends at ${end}, beyond the declared size ${s.size}`);
    if (offset < s.received) {
      // A retried chunk: the part already received must be identical.
      const overlap = Math.min(end, s.received) - offset;
      const have = Buffer.alloc(overlap);
      await s.fh.read(have, 0, overlap, offset);
      if (!have.equals(data.subarray(0, overlap))) throw new RpcError(400, `chunk at offset ${offset} differs from the data already received`);
    }
    if (end > s.received) {
      const tail = data.subarray(s.received - offset);
      await s.fh.write(tail, 0, tail.length, s.received);
      s.received = end;
    }
    return null;
  }), { argsFmt: "{offset: %d, data: %V}", description: "Append a chunk of the bundle (base64) at `offset`" });

  /** The end of a push or a pull: verify, install, and report success in OTA.Status. */
  const verifyAndInstall = async (zip: Uint8Array, commitTimeout: number): Promise<{ slot: number; name: string; version: string }> => {
    msg = "verifying";
    const r = await apply(zip, commitTimeout);
    state = OTA_SUCCESS;
    msg = `installed ${r.name} ${r.version} in slot ${r.slot}; rebooting`;
    return r;
  };

  server.addHandler("OTA.End", () => serial(async () => {
    const s = session;
    if (!s) throw new RpcError(409, "no update in progress");
    try {
      if (s.received !== s.size) throw new RpcError(400, `incomplete update: received ${s.received} of ${s.size} bytes`);
      await s.fh.sync();
      const zip = await readFile(s.path);
      return await verifyAndInstall(zip, s.commitTimeout);
    } catch (e) {
      fail(errorMessage(e));
      throw e;
    } finally {
      await dropSession();
    }
  }), { argsFmt: "", description: "Verify and install the received bundle, then reboot into it uncommitted" });

  server.addHandler("OTA.Update", (params) => serial(async () => {
    const p = obj(params);
    if (typeof p.url !== "string" || p.url === "") throw new RpcError(400, "url is required");
    const cfg = deps.updateConfig();
    const commitTimeout = intArg(p, "commit_timeout", false) ?? cfg.commit_timeout;
    const timeout = intArg(p, "timeout", false, 1) ?? cfg.timeout;
    if (session) throw new RpcError(409, "update already in progress");
    requireCommitted(await bootState());
    state = OTA_IN_PROGRESS;
    msg = `downloading ${p.url}`;
    pulling = { size: 0, received: 0 };
    try {
      const progress = pulling;
      const zip = await downloadBundle(p.url, {
        timeoutMs: timeout * 1000,
        maxSize: max,
        fetch: deps.fetch,
        onProgress: (received, size) => {
          progress.received = received;
          progress.size = size;
        },
      });
      return await verifyAndInstall(zip, commitTimeout);
    } catch (e) {
      fail(errorMessage(e));
      throw e;
    } finally {
      pulling = undefined;
    }
  }), { argsFmt: "{url: %Q, commit_timeout: %d}", description: "Download a bundle over HTTP(S), install it and reboot" });

  server.addHandler("OTA.Commit", () => serial(async () => {
    try {
      const s = await bootState();
      if (s.is_committed) return null;
      await writeBootState(deps.dir, { active_slot: s.active_slot, revert_slot: s.revert_slot, is_committed: true, commit_timeout: s.commit_timeout });
      return null;
    } catch (e) {
      throw e instanceof RpcError ? e : new RpcError(-1, `commit failed: ${errorMessage(e)}`);
    }
  }), { argsFmt: "", description: "Commit the running firmware" });

  server.addHandler("OTA.Revert", () => serial(async () => {
    const s = await bootState();
    if (s.revert_slot === s.active_slot) throw new RpcError(-1, "there is no other firmware to revert to");
    const to = await revertBootState(deps.dir).catch((e: unknown) => {
      throw new RpcError(-1, `revert failed: ${errorMessage(e)}`);
    });
    if (to === undefined) throw new RpcError(-2, `revert slot ${s.revert_slot} is not bootable`);
    deps.requestReboot(100);
    return null;
  }), { argsFmt: "", description: "Revert to the previous firmware and reboot in 100 ms" });

  server.addHandler("OTA.GetBootState", async () => publicBootState(await bootState()), {
    argsFmt: "",
    description: "Boot slots: active_slot, is_committed, revert_slot, commit_timeout",
  });

  server.addHandler("OTA.SetBootState", (params) => serial(async () => {
    const p = obj(params);
    const s = await bootState();
    const next: BootState = { ...s };
    for (const k of ["active_slot", "revert_slot"] as const) {
      if (p[k] === undefined) continue;
      if (!isSlotNumber(p[k])) throw new RpcError(400, `${k} must be 0 or 1`);
      if (!(await readSlotManifest(deps.dir, p[k]))) throw new RpcError(-2, `slot ${p[k]} is not bootable`);
      next[k] = p[k];
    }
    if (p.is_committed !== undefined) {
      if (typeof p.is_committed !== "boolean") throw new RpcError(400, "is_committed must be a boolean");
      next.is_committed = p.is_committed;
    }
    const ct = intArg(p, "commit_timeout", false);
    if (ct !== undefined) next.commit_timeout = ct;
    if (next.is_committed || next.active_slot !== s.active_slot || (s.is_committed && !next.is_committed)) {
      // A new uncommitted boot starts at the next boot; a committed slot has no deadline.
      delete next.boot_deadline;
      delete next.uncommitted_boots;
    }
    await writeBootState(deps.dir, next).catch((e: unknown) => {
      throw new RpcError(-1, `cannot write the boot state: ${errorMessage(e)}`);
    });
    return null;
  }), { argsFmt: "{active_slot: %d, is_committed: %B, revert_slot: %d, commit_timeout: %d}", description: "Set the boot state for the next boot" });

  server.addHandler("OTA.CreateSnapshot", (params) => serial(async () => {
    const p = obj(params);
    const setAsRevert = p.set_as_revert === true;
    const ct = intArg(p, "commit_timeout", false) ?? 0;
    const s = await bootState();
    if (!s.is_committed) throw new RpcError(-2, "the running firmware is not committed");
    if (session || pulling) throw new RpcError(409, "update already in progress");
    const active = s.active_slot;
    const target = otherSlot(active);
    const manifest = await readSlotManifest(deps.dir, active);
    if (!manifest) throw new RpcError(-1, "the active slot has no manifest");
    try {
      if (s.revert_slot === target) await writeBootState(deps.dir, { ...s, revert_slot: active });
      await installSlot(deps.dir, target, { files: new Map(), manifest, mergeFrom: slotFsRoot(deps.dir, active) });
      if (setAsRevert) {
        const next: BootState = { active_slot: active, revert_slot: target, is_committed: true, commit_timeout: s.commit_timeout };
        if (ct > 0) {
          // The running firmware now has `ct` seconds to be committed, else it reverts to the snapshot.
          Object.assign(next, { is_committed: false, commit_timeout: ct, uncommitted_boots: 1, boot_deadline: now() + ct * 1000 });
        }
        await writeBootState(deps.dir, next);
      }
    } catch (e) {
      throw new RpcError(-1, `snapshot failed: ${errorMessage(e)}`);
    }
    return { slot: target };
  }), { argsFmt: "{set_as_revert: %B, commit_timeout: %d}", description: "Copy the running firmware and FS to the other slot" });

  return {
    reboot: () => {
      // A push cut by the reboot is gone, with its staging file, before the next OTA operation runs.
      state = OTA_IDLE;
      msg = "";
      pulling = undefined;
      void serial(dropSession);
    },
  };
}
