/**
 * Reading what a command uploads: a local file, or an http(s) URL (mos `put` and `ota` accept both).
 * The download is bounded by --timeout.
 */
import { readFile } from "node:fs/promises";
import { IoError, TimeoutError, TransportError } from "../errors.js";

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** The bytes of a local file or of an http(s) URL. */
export async function readSource(source: string, timeoutMs: number): Promise<Buffer> {
  if (!isUrl(source)) {
    try {
      return await readFile(source);
    } catch (e) {
      throw new IoError(`cannot read ${source}: ${(e as Error).message}`, { cause: e });
    }
  }
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetch(source, { signal: ac.signal });
    if (!res.ok) throw new TransportError(`GET ${source}: HTTP ${res.status} ${res.statusText}`);
    return Buffer.from(await res.arrayBuffer());
  } catch (e) {
    if (ac.signal.aborted) throw new TimeoutError(`GET ${source}: no answer within ${timeoutMs} ms`, timeoutMs);
    if (e instanceof TransportError) throw e;
    throw new TransportError(`GET ${source}: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** The last path segment of a file path or URL (DEVFILE default of `mos put`). */
export function baseName(source: string): string {
  const path = isUrl(source) ? new URL(source).pathname : source;
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? "";
}
