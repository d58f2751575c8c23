/**
 * Installing a slot: build the new slot's fs/ and manifest.json in a staging directory
 * (`slots/.<n>.new-<rand>`), fsync everything, then swap it in place of `slots/<n>` with renames. A crash at
 * any point leaves slot n either as it was, missing, or complete — and slot n is never the active slot
 * while this runs (the boot state is switched to it only after the swap, by the caller, atomically).
 * Leftover staging directories are removed by resolveBoot.
 *
 * FS merge (as Mongoose OS does on OTA): the new fs/ holds the bundle's files, plus every file of the
 * active fs/ that the bundle does not contain (conf9.json, user files, device keys...).
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../atomic.js";
import { slotDir, slotsDir } from "./boot.js";
import type { FirmwareManifest } from "./manifest.js";
import { isSafeEntryName } from "./zip.js";

function fsyncPath(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on directories
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Every regular file under `root` as relative `/` names (symlinks and other types are skipped). */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(join(root, rel));
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await stat(join(root, r)).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(r);
      else if (st.isFile()) out.push(r);
    }
  };
  await walk("");
  return out;
}

/** Sum of the sizes of the regular files under `root`. */
export async function treeSize(root: string): Promise<number> {
  let n = 0;
  for (const f of await listFiles(root)) n += (await stat(join(root, f))).size;
  return n;
}

export interface InstallSource {
  /** Files to write into the new fs/ (bundle files, or a snapshot's files). */
  files: Map<string, Uint8Array>;
  manifest: FirmwareManifest;
  /** Carry over files of this fs root that `files` does not contain. */
  mergeFrom?: string;
}

/** Write slot `slot` from `src` atomically (staging + rename). The boot state is not touched. */
export async function installSlot(dir: string, slot: number, src: InstallSource): Promise<void> {
  const tag = randomBytes(4).toString("hex");
  const staging = join(slotsDir(dir), `.${slot}.new-${tag}`);
  const fsDir = join(staging, "fs");
  await mkdir(fsDir, { recursive: true });
  try {
    const madeDirs = new Set<string>([fsDir]);
    const put = async (name: string, data: Uint8Array, mode?: number): Promise<void> => {
      if (!isSafeEntryName(name)) throw new Error(`unsafe file name ${JSON.stringify(name)}`);
      const path = join(fsDir, name);
      const parent = dirname(path);
      if (!madeDirs.has(parent)) {
        await mkdir(parent, { recursive: true });
        madeDirs.add(parent);
      }
      await writeFileAtomic(path, data, mode);
    };
    for (const [name, data] of src.files) await put(name, data);
    if (src.mergeFrom) {
      for (const name of await listFiles(src.mergeFrom)) {
        if (src.files.has(name)) continue;
        const from = join(src.mergeFrom, name);
        const st = await stat(from);
        await put(name, await readFile(from), st.mode & 0o777);
      }
    }
    for (const d of [...madeDirs].sort((a, b) => b.length - a.length)) fsyncPath(d);
    await writeFileAtomic(join(staging, "manifest.json"), JSON.stringify(src.manifest, null, 1) + "\n");
    fsyncPath(staging);
    // Swap: move the old slot out of the way, move the staging dir in, then drop the old one.
    const target = slotDir(dir, slot);
    const old = join(slotsDir(dir), `.${slot}.old-${tag}`);
    let hadOld = false;
    try {
      await rename(target, old);
      hadOld = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    await rename(staging, target);
    fsyncPath(slotsDir(dir));
    if (hadOld) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}
