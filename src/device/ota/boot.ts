/**
 * Boot slots and the boot state of the remos device agent: which slot the agent boots, and the
 * commit/revert rules of spec §3.8 (OTA.Commit / OTA.Revert / OTA.GetBootState).
 *
 * Layout under the state directory DIR:
 *   DIR/boot.json                 the boot state (this module owns it), written only with writeFileAtomic
 *   DIR/slots/<n>/fs/             the device FS root of slot n
 *   DIR/slots/<n>/manifest.json   the firmware manifest of slot n (a slot without it is not bootable)
 *   DIR/slots/.<anything>         staging/leftover directories of an interrupted install (removed at boot)
 *
 * There are two slots, 0 and 1 (A/B). The rules, decided here:
 * - First start (no boot.json): slot 0 is initialised (fs/ created, existing files kept; manifest with app
 *   "remos-device" and the package version) and committed.
 * - An uncommitted active slot gets exactly ONE boot, like the Mongoose OS boot loader: at that boot its
 *   commit deadline is set to now + commit_timeout seconds. It reverts to `revert_slot` at the next boot if
 *   it was not committed by then (crash, reboot, power loss) or if its deadline has passed.
 *   `commit_timeout` 0 means "no commit needed": the slot is committed automatically at its first boot.
 * - While running, `startCommitWatchdog` reverts (switch boot state + request a reboot) when the deadline
 *   passes without OTA.Commit.
 * - A revert makes the revert slot active and committed (its `revert_slot` points at itself).
 * - An active slot that is not bootable (no manifest or fs/) falls back to the revert slot or the other
 *   slot when that one is bootable.
 *
 * Every change of boot.json is one atomic write (temp, fsync, rename, dir fsync), so a kill -9 at any
 * instant leaves either the old or the new boot state.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, readdir, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import { writeFileAtomic } from "../atomic.js";
import { REMOS_PLATFORM, manifestProblems, type FirmwareManifest } from "./manifest.js";

export const SLOT_COUNT = 2;
export const DEFAULT_APP_NAME = "remos-device";

/** boot.json. The first four fields are what OTA.GetBootState reports. */
export interface BootState {
  active_slot: number;
  revert_slot: number;
  is_committed: boolean;
  /** Seconds the uncommitted active slot has, from its first boot, to be committed. 0 = auto-commit. */
  commit_timeout: number;
  /** Epoch ms after which the uncommitted active slot reverts; set at its first boot. */
  boot_deadline?: number;
  /** How many times the uncommitted active slot has booted (it is allowed one). */
  uncommitted_boots?: number;
}

export interface BootResult {
  slot: number;
  fsRoot: string;
  manifest: FirmwareManifest;
  state: BootState;
  /** Set when this boot reverted from an uncommitted or broken slot. */
  reverted?: { from: number; reason: string };
}

export interface BootOptions {
  /** Clock (epoch ms); tests pass a fake one. */
  now?: () => number;
}

export function slotsDir(dir: string): string {
  return join(dir, "slots");
}
export function slotDir(dir: string, slot: number): string {
  return join(dir, "slots", String(slot));
}
export function slotFsRoot(dir: string, slot: number): string {
  return join(dir, "slots", String(slot), "fs");
}
export function slotManifestPath(dir: string, slot: number): string {
  return join(dir, "slots", String(slot), "manifest.json");
}
export function bootStatePath(dir: string): string {
  return join(dir, "boot.json");
}
export function otherSlot(slot: number): number {
  return slot === 0 ? 1 : 0;
}
export function isSlotNumber(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n < SLOT_COUNT;
}

/** The boot state, or undefined when there is none (first start) or it is unreadable (logged). */
export async function readBootState(dir: string): Promise<BootState | undefined> {
  let text: string;
  try {
    text = await readFile(bootStatePath(dir), "utf8");
  } catch {
    return undefined;
  }
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (!isSlotNumber(o.active_slot) || !isSlotNumber(o.revert_slot) || typeof o.is_committed !== "boolean") {
      throw new Error("missing or invalid fields");
    }
    const s: BootState = {
      active_slot: o.active_slot,
      revert_slot: o.revert_slot,
      is_committed: o.is_committed,
      commit_timeout: typeof o.commit_timeout === "number" && o.commit_timeout > 0 ? Math.floor(o.commit_timeout) : 0,
    };
    if (typeof o.boot_deadline === "number") s.boot_deadline = o.boot_deadline;
    if (typeof o.uncommitted_boots === "number") s.uncommitted_boots = o.uncommitted_boots;
    return s;
  } catch (e) {
    debug("ota", "boot.json is unreadable; recovering from the slots", { error: errorMessage(e) });
    return undefined;
  }
}

const changeListeners = new Set<(dir: string) => void>();

/** Listen for boot.json writes made in this process (the commit watchdog re-arms on them). */
export function onBootStateChange(listener: (dir: string) => void): () => void {
  changeListeners.add(listener);
  return () => changeListeners.delete(listener);
}

export async function writeBootState(dir: string, s: BootState): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(bootStatePath(dir), JSON.stringify(s, null, 1) + "\n");
  const key = resolve(dir);
  for (const l of changeListeners) l(key);
}

/** The public view of the boot state (OTA.GetBootState). */
export function publicBootState(s: BootState): { active_slot: number; is_committed: boolean; revert_slot: number; commit_timeout: number } {
  return { active_slot: s.active_slot, is_committed: s.is_committed, revert_slot: s.revert_slot, commit_timeout: s.commit_timeout };
}

/** A slot's manifest when the slot is bootable (valid manifest and an fs/ directory), else undefined. */
export async function readSlotManifest(dir: string, slot: number): Promise<FirmwareManifest | undefined> {
  try {
    const st = await stat(slotFsRoot(dir, slot));
    if (!st.isDirectory()) return undefined;
    const m = JSON.parse(await readFile(slotManifestPath(dir, slot), "utf8")) as unknown;
    if (manifestProblems(m, false).length > 0) return undefined;
    return m as FirmwareManifest;
  } catch {
    return undefined;
  }
}

let cachedVersion: string | undefined;
/** The remos package version (walks up from this module to the package.json named "remos"). */
export function packageVersion(): string {
  if (cachedVersion) return cachedVersion;
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(d, "package.json");
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: string; version?: string };
        if (pkg.name === "remos" && typeof pkg.version === "string") return (cachedVersion = pkg.version);
      } catch {
        // keep walking
      }
    }
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return (cachedVersion = "0.0.0");
}

/** The manifest of a freshly initialised slot 0. */
export function initialManifest(now: number): FirmwareManifest {
  const version = packageVersion();
  const ts = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    name: DEFAULT_APP_NAME,
    platform: REMOS_PLATFORM,
    version,
    build_id: `${ts.replace(/[-:]/g, "").replace("T", "-").replace("Z", "")}/remos@${version}`,
    build_timestamp: ts,
    parts: {},
  };
}

async function initSlot0(dir: string, now: number): Promise<FirmwareManifest> {
  await mkdir(slotFsRoot(dir, 0), { recursive: true });
  const m = initialManifest(now);
  await writeFileAtomic(slotManifestPath(dir, 0), JSON.stringify(m, null, 1) + "\n");
  return m;
}

/** Remove leftovers of interrupted installs: `slots/.<name>` directories. */
async function cleanStaging(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(slotsDir(dir));
  } catch {
    return;
  }
  for (const n of names) {
    if (n.startsWith(".")) {
      debug("ota", "removing an interrupted install's leftovers", { path: n });
      await rm(join(slotsDir(dir), n), { recursive: true, force: true });
    }
  }
}

/** The state after reverting from the active slot to `to` (committed, revert slot = itself). */
function revertedState(to: number): BootState {
  return { active_slot: to, revert_slot: to, is_committed: true, commit_timeout: 0 };
}

/**
 * Decide which slot to boot, apply the commit/revert rules and return the FS root to run from. Called by
 * the agent at every (in-process) boot, before it loads its config from `fsRoot`.
 */
export async function resolveBoot(dir: string, options: BootOptions = {}): Promise<BootResult> {
  const now = (options.now ?? Date.now)();
  await mkdir(slotsDir(dir), { recursive: true });
  await cleanStaging(dir);
  let state = await readBootState(dir);
  let reverted: BootResult["reverted"];

  if (!state) {
    // First start, or boot.json unreadable: boot the first bootable slot, else initialise slot 0.
    let slot = 0;
    let manifest = await readSlotManifest(dir, 0);
    if (!manifest) {
      const m1 = await readSlotManifest(dir, 1);
      if (m1 && existsSync(bootStatePath(dir))) {
        slot = 1;
        manifest = m1;
      }
    }
    if (!manifest) manifest = await initSlot0(dir, now);
    state = { active_slot: slot, revert_slot: slot, is_committed: true, commit_timeout: 0 };
    await writeBootState(dir, state);
    return { slot, fsRoot: slotFsRoot(dir, slot), manifest, state };
  }

  let manifest = await readSlotManifest(dir, state.active_slot);
  if (manifest && !state.is_committed) {
    const boots = state.uncommitted_boots ?? 0;
    const expired = state.boot_deadline !== undefined && now >= state.boot_deadline;
    if (boots >= 1 || expired) {
      const reason = expired ? "commit deadline passed" : "rebooted without commit";
      const target = state.revert_slot;
      const targetManifest = target === state.active_slot ? manifest : await readSlotManifest(dir, target);
      if (targetManifest) {
        debug("ota", "reverting uncommitted firmware", { from: state.active_slot, to: target, reason });
        reverted = { from: state.active_slot, reason };
        state = revertedState(target);
        manifest = targetManifest;
      } else {
        debug("ota", "revert slot is not bootable; keeping the uncommitted slot and committing it", { slot: target });
        state = { active_slot: state.active_slot, revert_slot: state.active_slot, is_committed: true, commit_timeout: 0 };
      }
      await writeBootState(dir, state);
    } else if (state.commit_timeout <= 0) {
      state = { active_slot: state.active_slot, revert_slot: state.revert_slot, is_committed: true, commit_timeout: 0 };
      await writeBootState(dir, state);
    } else {
      state = { ...state, uncommitted_boots: 1, boot_deadline: now + state.commit_timeout * 1000 };
      await writeBootState(dir, state);
    }
  }

  if (!manifest) {
    // The active slot is not bootable: fall back to the revert slot, then the other one.
    const from = state.active_slot;
    for (const cand of [state.revert_slot, otherSlot(from)]) {
      if (cand === from) continue;
      const m = await readSlotManifest(dir, cand);
      if (m) {
        debug("ota", "active slot is not bootable; falling back", { from, to: cand });
        reverted = { from, reason: "active slot is not bootable" };
        state = revertedState(cand);
        manifest = m;
        break;
      }
    }
    if (!manifest) {
      debug("ota", "no bootable slot; initialising slot 0", { from });
      manifest = await initSlot0(dir, now);
      state = revertedState(0);
    }
    await writeBootState(dir, state);
  }

  const result: BootResult = { slot: state.active_slot, fsRoot: slotFsRoot(dir, state.active_slot), manifest, state };
  if (reverted) result.reverted = reverted;
  return result;
}

/**
 * Switch the boot state to the revert slot (committed). Returns the slot that will boot, or undefined when
 * the revert slot is not bootable (nothing changed then).
 */
export async function revertBootState(dir: string): Promise<number | undefined> {
  const s = await readBootState(dir);
  if (!s) return undefined;
  if (!(await readSlotManifest(dir, s.revert_slot))) return undefined;
  await writeBootState(dir, revertedState(s.revert_slot));
  return s.revert_slot;
}

export interface CommitWatchdog {
  stop(): void;
}

/**
 * Run after boot: when the active slot is uncommitted, revert (boot state → revert slot, then
 * `requestReboot(100)`) as soon as its commit deadline passes without OTA.Commit. Re-reads boot.json when
 * the timer fires and whenever this process writes it (OTA.Commit, OTA.SetBootState, OTA.CreateSnapshot
 * with a commit timeout), so the deadline in force is the one honoured. Timers are unref'd.
 */
export function startCommitWatchdog(
  dir: string,
  requestReboot: (delayMs: number) => void,
  options: BootOptions = {},
): CommitWatchdog {
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let generation = 0;
  const arm = async (): Promise<void> => {
    if (stopped) return;
    const gen = ++generation;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const s = await readBootState(dir);
    if (gen !== generation) return; // a newer arm() runs
    if (stopped || !s || s.is_committed || s.boot_deadline === undefined) return;
    const left = s.boot_deadline - now();
    if (left > 0) {
      timer = setTimeout(() => void arm().catch(logFail), Math.min(left, 2 ** 31 - 1));
      timer.unref();
      return;
    }
    const to = await revertBootState(dir);
    if (stopped) return;
    debug("ota", "commit timeout passed without OTA.Commit: reverting", { from: s.active_slot, to });
    if (to !== undefined) requestReboot(100);
  };
  const logFail = (e: unknown): void => debug("ota", "commit watchdog failed", { error: errorMessage(e) });
  const key = resolve(dir);
  const off = onBootStateChange((d) => {
    if (d === key) void arm().catch(logFail);
  });
  void arm().catch(logFail);
  return {
    stop() {
      stopped = true;
      off();
      if (timer) clearTimeout(timer);
    },
  };
}
