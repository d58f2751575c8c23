/**
 * The firmware manifest of spec §7 as remos uses it, and its validation.
 *
 * A remos firmware bundle is a ZIP holding `manifest.json` plus one part file:
 * - `platform` is always `"remos"` (the agent runs on any host; the payload is app files, not machine code);
 * - `parts.fs` (`type: "fs"`, `src: "fs.zip"`) is a ZIP of the app's files (paths relative to the FS root);
 * - every part with a `src` carries `size`, `cs_sha256` and `cs_sha1` (lowercase hex), all enforced on the
 *   device.
 * Extra top-level and part attributes are preserved (as mos does).
 */
export const REMOS_PLATFORM = "remos";

export interface FirmwarePart {
  type: string;
  src?: string;
  size?: number;
  cs_sha1?: string;
  cs_sha256?: string;
  [key: string]: unknown;
}

export interface FirmwareManifest {
  name: string;
  platform: string;
  version: string;
  build_id: string;
  build_timestamp: string;
  description?: string;
  parts: Record<string, FirmwarePart>;
  [key: string]: unknown;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX40 = /^[0-9a-f]{40}$/;

/**
 * Check the shape of a parsed manifest; returns a list of problems (empty when valid). `requireChecksums`
 * demands `size` and `cs_sha256` on every part with a `src` (bundles received by the device).
 */
export function manifestProblems(m: unknown, requireChecksums: boolean): string[] {
  const out: string[] = [];
  if (!m || typeof m !== "object" || Array.isArray(m)) return ["manifest is not a JSON object"];
  const o = m as Record<string, unknown>;
  for (const k of ["name", "platform", "version"]) {
    if (typeof o[k] !== "string" || o[k] === "") out.push(`manifest: "${k}" must be a non-empty string`);
  }
  for (const k of ["build_id", "build_timestamp"]) {
    if (o[k] !== undefined && typeof o[k] !== "string") out.push(`manifest: "${k}" must be a string`);
  }
  const parts = o.parts;
  if (!parts || typeof parts !== "object" || Array.isArray(parts)) {
    out.push(`manifest: "parts" must be an object`);
    return out;
  }
  for (const [name, p] of Object.entries(parts as Record<string, unknown>)) {
    if (!p || typeof p !== "object" || Array.isArray(p)) {
      out.push(`part ${name}: not an object`);
      continue;
    }
    const part = p as Record<string, unknown>;
    if (typeof part.type !== "string") out.push(`part ${name}: "type" must be a string`);
    if (part.src === undefined) continue;
    if (typeof part.src !== "string" || part.src === "") {
      out.push(`part ${name}: "src" must be a non-empty string`);
      continue;
    }
    if (part.size !== undefined && (!Number.isSafeInteger(part.size) || (part.size as number) < 0)) {
      out.push(`part ${name}: "size" must be a non-negative integer`);
    }
    if (part.cs_sha256 !== undefined && (typeof part.cs_sha256 !== "string" || !HEX64.test(part.cs_sha256))) {
      out.push(`part ${name}: "cs_sha256" must be 64 lowercase hex digits`);
    }
    if (part.cs_sha1 !== undefined && (typeof part.cs_sha1 !== "string" || !HEX40.test(part.cs_sha1))) {
      out.push(`part ${name}: "cs_sha1" must be 40 lowercase hex digits`);
    }
    if (requireChecksums) {
      if (part.size === undefined) out.push(`part ${name}: "size" is required`);
      if (part.cs_sha256 === undefined) out.push(`part ${name}: "cs_sha256" is required`);
    }
  }
  return out;
}
