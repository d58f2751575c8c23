/**
 * Device-side verification of a firmware bundle (see bundle.ts for the format) before anything is
 * installed. Throws RpcError with these codes (the OTA service sends them as-is):
 * - 422 bundle refused: malformed/truncated ZIP, bad manifest, wrong platform, missing part, part size or
 *   cs_sha256/cs_sha1 mismatch, unsafe file name in the fs part;
 * - 403 signature policy not met.
 *
 * Signature policy (as the Mongoose OS ota-common README describes it):
 * - `update.key0..7`: an ECDSA P-256 public key as base64 ASN.1 (SubjectPublicKeyInfo DER, the Mongoose
 *   form), as PEM text, or as the name of a file in the device FS holding either. Empty = no key.
 * - For every configured key N whose signature `sigN` is present, the signature is verified; a valid one
 *   sets bit N of the verification result.
 * - `update.sig_req_mask`: -1 (default) ignores the result (unsigned bundles are accepted); 0 refuses every
 *   update (a tombstone); a positive mask requires all its bits in the result.
 * Signatures are DER-encoded ECDSA over SHA-256 of the exact manifest.json bytes; a 64-byte raw r||s
 * signature is accepted too.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { RpcError, errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import { FS_PART_SRC, MANIFEST_NAME, MAX_SIGNATURES, SIG_EXTRA_ID, sha1Hex, sha256Hex } from "./bundle.js";
import { REMOS_PLATFORM, manifestProblems, type FirmwareManifest } from "./manifest.js";
import { ZipError, extractEntry, isSafeEntryName, parseExtra, readZip, type ZipEntry } from "./zip.js";

export const CODE_BUNDLE_REFUSED = 422;
export const CODE_SIGNATURE_REFUSED = 403;

export interface SignaturePolicy {
  /** The values of update.key0..key7 (missing/empty = not configured). */
  keys: (string | undefined)[];
  /** update.sig_req_mask. */
  sigReqMask: number;
  /** The active FS root, where key file names are looked up. */
  fsRoot: string;
}

export interface VerifiedBundle {
  manifest: FirmwareManifest;
  /** The app files of the fs part, by relative name. */
  files: Map<string, Uint8Array>;
  /** Bit N set when signature N verified against key N. */
  sigResult: number;
}

function refuse(message: string): never {
  throw new RpcError(CODE_BUNDLE_REFUSED, message);
}

/** Load update.keyN: base64 SPKI DER, PEM, or a file name in the FS root. Undefined when unusable. */
export async function loadPublicKey(value: string, fsRoot: string): Promise<KeyObject | undefined> {
  let text = value.trim();
  try {
    if (!text.startsWith("-----BEGIN") && !/^[A-Za-z0-9+/=\s]{80,}$/.test(text)) {
      if (!isSafeEntryName(text)) throw new Error("unsafe key file name");
      text = (await readFile(join(fsRoot, text), "utf8")).trim();
    }
    const key = text.startsWith("-----BEGIN")
      ? createPublicKey(text)
      : createPublicKey({ key: Buffer.from(text.replace(/\s+/g, ""), "base64"), format: "der", type: "spki" });
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("not an ECDSA P-256 key");
    return key;
  } catch (e) {
    debug("ota", "update key is unusable", { error: errorMessage(e) });
    return undefined;
  }
}

function verifySig(data: Uint8Array, key: KeyObject, sigB64: string): boolean {
  const sig = Buffer.from(sigB64, "base64");
  try {
    if (sig.length === 64) return cryptoVerify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, sig);
    return cryptoVerify("sha256", data, key, sig);
  } catch {
    return false;
  }
}

/** The signature check result bit mask (bit N = sigN valid against keyN). */
export async function checkSignatures(manifestBytes: Uint8Array, entry: ZipEntry, policy: SignaturePolicy): Promise<number> {
  const raw = parseExtra(entry.extra).get(SIG_EXTRA_ID) ?? parseExtra(entry.localExtra).get(SIG_EXTRA_ID);
  let sigs: Record<string, unknown> = {};
  if (raw) {
    try {
      const o = JSON.parse(Buffer.from(raw).toString("utf8")) as unknown;
      if (o && typeof o === "object" && !Array.isArray(o)) sigs = o as Record<string, unknown>;
    } catch {
      debug("ota", "signature extra field is not JSON; treating the bundle as unsigned");
    }
  }
  let result = 0;
  for (let i = 0; i < MAX_SIGNATURES; i++) {
    const keyValue = policy.keys[i];
    const sig = sigs[`sig${i}`];
    if (!keyValue || typeof sig !== "string") continue;
    const key = await loadPublicKey(keyValue, policy.fsRoot);
    if (key && verifySig(manifestBytes, key, sig)) result |= 1 << i;
    else debug("ota", "bundle signature does not verify", { sig: i });
  }
  return result;
}

function enforcePolicy(result: number, mask: number): void {
  if (mask === -1) return;
  if (mask === 0) throw new RpcError(CODE_SIGNATURE_REFUSED, "updates are disabled (update.sig_req_mask=0)");
  const missing = mask & ~result;
  if (missing !== 0) {
    const which = [...Array(MAX_SIGNATURES).keys()].filter((i) => missing & (1 << i)).map((i) => `sig${i}`);
    throw new RpcError(CODE_SIGNATURE_REFUSED, `required signature missing or invalid: ${which.join(", ")}`);
  }
}

/**
 * The most a bundle may unpack to in memory (manifest, parts and the files of the fs part together).
 * Entries are inflated only up to their declared size, and declared sizes are checked against this budget
 * before anything is inflated: a small "zip bomb" is refused instead of exhausting the device's memory.
 */
export const MAX_UNPACKED_BYTES = 128 * 1024 * 1024;
const MAX_MANIFEST_BYTES = 1024 * 1024;

class UnpackBudget {
  private left = MAX_UNPACKED_BYTES;
  take(e: ZipEntry, what: string): void {
    if (e.size > this.left) refuse(`${what} unpacks to more than ${MAX_UNPACKED_BYTES} bytes`);
    this.left -= e.size;
  }
}

function findEntry(entries: ZipEntry[], src: string): ZipEntry | undefined {
  return entries.find((e) => e.name === src) ?? entries.find((e) => !e.isDirectory && basename(e.name) === basename(src));
}

/** Verify a whole bundle and unpack its fs part. Nothing is written. */
export async function verifyBundle(zip: Uint8Array, policy: SignaturePolicy): Promise<VerifiedBundle> {
  try {
    const entries = readZip(zip);
    const manifests = entries.filter((e) => basename(e.name) === MANIFEST_NAME && !e.isDirectory);
    if (manifests.length !== 1) refuse(manifests.length === 0 ? "bundle has no manifest.json" : "bundle has more than one manifest.json");
    const mEntry = manifests[0];
    if (mEntry.size > MAX_MANIFEST_BYTES) refuse(`manifest.json is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const budget = new UnpackBudget();
    const manifestBytes = extractEntry(zip, mEntry);
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(manifestBytes).toString("utf8"));
    } catch {
      refuse("manifest.json is not valid JSON");
    }
    const problems = manifestProblems(parsed, true);
    if (problems.length > 0) refuse(problems.join("; "));
    const manifest = parsed as FirmwareManifest;
    if (manifest.platform !== REMOS_PLATFORM) refuse(`bundle is for platform "${manifest.platform}", this device is "${REMOS_PLATFORM}"`);

    const sigResult = await checkSignatures(manifestBytes, mEntry, policy);
    enforcePolicy(sigResult, policy.sigReqMask);

    let files: Map<string, Uint8Array> | undefined;
    for (const [name, part] of Object.entries(manifest.parts)) {
      if (part.src === undefined) continue;
      const e = findEntry(entries, part.src);
      if (!e) refuse(`part ${name}: file ${part.src} is not in the bundle`);
      if (e.size !== part.size) refuse(`part ${name}: size ${e.size} differs from the manifest's ${part.size}`);
      budget.take(e, `part ${name}`);
      const data = extractEntry(zip, e);
      if (data.length !== part.size) refuse(`part ${name}: size ${data.length} differs from the manifest's ${part.size}`);
      if (sha256Hex(data) !== part.cs_sha256) refuse(`part ${name}: SHA-256 mismatch`);
      if (part.cs_sha1 !== undefined && sha1Hex(data) !== part.cs_sha1) refuse(`part ${name}: SHA-1 mismatch`);
      if (part.type === "fs") {
        if (files) refuse("bundle has more than one fs part");
        files = unpackFs(data, part.src, budget);
      }
    }
    if (!files) refuse(`bundle has no part of type "fs" (src ${FS_PART_SRC})`);
    return { manifest, files, sigResult };
  } catch (e) {
    if (e instanceof ZipError) refuse(`malformed bundle: ${e.message}`);
    throw e;
  }
}

function unpackFs(data: Uint8Array, src: string, budget: UnpackBudget): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let entries: ZipEntry[];
  try {
    entries = readZip(data);
  } catch (e) {
    refuse(`fs part ${src}: ${errorMessage(e)}`);
  }
  for (const e of entries) if (!e.isDirectory) budget.take(e, `fs part ${src}`);
  for (const e of entries) {
    if (e.isDirectory) continue;
    files.set(e.name, extractEntry(data, e));
  }
  return files;
}
