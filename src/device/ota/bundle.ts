/**
 * Firmware bundles of the remos device agent (spec §7): building (for `mos create-fw-bundle`) and signing.
 *
 * A bundle is a ZIP with two entries:
 * - `manifest.json`: `{name, platform: "remos", version, build_id, build_timestamp, parts: {fs: {type: "fs",
 *   src: "fs.zip", size, cs_sha1, cs_sha256}}}`, plus any extra attributes the builder is given;
 * - `fs.zip`: a ZIP of the app's files (paths relative to the FS root), installed into the new slot's fs/.
 * Signatures: ECDSA P-256 over SHA-256 of the exact manifest.json bytes, ASN.1 DER, base64, stored as
 * `{"sig0":"...","sig1":...}` JSON in the ZIP extra field with header id 0x293a of the manifest.json entry
 * (both local and central headers). Signature N is made with `signKeys[N]`; an empty slot is skipped.
 */
import { createHash, createPrivateKey, sign, type KeyObject } from "node:crypto";
import { lstat, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "../../errors.js";
import { REMOS_PLATFORM, type FirmwareManifest } from "./manifest.js";
import { buildZip, extraRecord, isSafeEntryName, type ZipEntryInput } from "./zip.js";

export const SIG_EXTRA_ID = 0x293a;
export const MANIFEST_NAME = "manifest.json";
export const FS_PART_SRC = "fs.zip";
export const MAX_SIGNATURES = 8;

export interface BundleOptions {
  name: string;
  version: string;
  description?: string;
  build_id?: string;
  /** Build time (default now). */
  now?: Date;
  /** Private keys (PEM text or KeyObject) by signature index; undefined/"" skips that index. */
  signKeys?: (string | KeyObject | undefined)[];
  /** Extra manifest attributes (preserved on the device). */
  extra?: Record<string, unknown>;
}

export interface BuiltBundle {
  zip: Uint8Array;
  manifest: FirmwareManifest;
  manifestBytes: Uint8Array;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
export function sha1Hex(data: Uint8Array): string {
  return createHash("sha1").update(data).digest("hex");
}

/** The regular files under `dir`, as relative `/`-separated names, sorted. Symlinks are refused. */
export async function collectAppFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(dir, r));
      if (st.isSymbolicLink()) throw new UsageError(`${r}: symbolic links are not bundled`);
      if (st.isDirectory()) await walk(r);
      else if (st.isFile()) {
        if (!isSafeEntryName(r)) throw new UsageError(`${r}: unsafe file name`);
        out.set(r, await readFile(join(dir, r)));
      }
    }
  };
  await walk("");
  return out;
}

function buildId(now: Date, fsHash: string): string {
  const ts = now.toISOString().replace(/\.\d{3}Z$/, "").replace(/[-:]/g, "").replace("T", "-");
  return `${ts}/remos@${fsHash.slice(0, 8)}`;
}

function toPrivateKey(k: string | KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key = typeof k === "string" ? createPrivateKey(k) : k;
  } catch {
    throw new UsageError("signing key is not a PEM private key");
  }
  if (key.type !== "private" || key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new UsageError("signing key must be an ECDSA P-256 (prime256v1) private key");
  }
  return key;
}

/** Sign manifest bytes: ECDSA P-256, SHA-256, DER, base64. */
export function signManifest(manifestBytes: Uint8Array, key: string | KeyObject): string {
  return sign("sha256", manifestBytes, toPrivateKey(key)).toString("base64");
}

/** Build a bundle from app files. */
export function buildBundle(files: Map<string, Uint8Array>, options: BundleOptions): BuiltBundle {
  if (!options.name) throw new UsageError("bundle name is required");
  if (!options.version) throw new UsageError("bundle version is required");
  const now = options.now ?? new Date();
  const mtime = now;
  const fsEntries: ZipEntryInput[] = [...files.entries()].map(([name, data]) => ({ name, data, mtime }));
  const fsZip = buildZip(fsEntries);
  const fsHash = sha256Hex(fsZip);
  const manifest: FirmwareManifest = {
    ...(options.extra ?? {}),
    name: options.name,
    platform: REMOS_PLATFORM,
    version: options.version,
    build_id: options.build_id ?? buildId(now, fsHash),
    build_timestamp: now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    parts: {
      fs: { type: "fs", src: FS_PART_SRC, size: fsZip.length, cs_sha1: sha1Hex(fsZip), cs_sha256: fsHash },
    },
  };
  if (options.description) manifest.description = options.description;
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 1) + "\n", "utf8");
  const sigs: Record<string, string> = {};
  (options.signKeys ?? []).forEach((k, i) => {
    if (i >= MAX_SIGNATURES) throw new UsageError(`at most ${MAX_SIGNATURES} signing keys`);
    if (k) sigs[`sig${i}`] = signManifest(manifestBytes, k);
  });
  const extra = Object.keys(sigs).length > 0 ? extraRecord(SIG_EXTRA_ID, Buffer.from(JSON.stringify(sigs), "utf8")) : undefined;
  const zip = buildZip([
    { name: MANIFEST_NAME, data: manifestBytes, extra, mtime },
    { name: FS_PART_SRC, data: fsZip, method: 0, mtime },
  ]);
  return { zip, manifest, manifestBytes };
}

/** Build a bundle from an app directory (the builder behind `mos create-fw-bundle`). */
export async function createBundleFromDir(appDir: string, options: BundleOptions): Promise<BuiltBundle> {
  return buildBundle(await collectAppFiles(appDir), options);
}
