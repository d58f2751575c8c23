/**
 * Reading what a command uploads: a local file, or an http(s) URL (mos `put` and `ota` accept both). A
 * local file is read chunk by chunk from disk as it is sent; a URL is first streamed into a private temp
 * file (removed on close) and sent from there, so neither is held in memory whole. The download is bounded
 * by --timeout (without a byte for that long, it fails).
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type ClosableByteSource, openFileSource } from "../api/byte-source.js";
import { IoError, TimeoutError, TransportError } from "../errors.js";

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** A local file or an http(s) URL as a source read by range. Close it when done. */
export async function openSource(source: string, timeoutMs: number): Promise<ClosableByteSource> {
  if (!isUrl(source)) return openFileSource(source);
  const dir = await mkdtemp(join(tmpdir(), "remos-src-"));
  const file = join(dir, "download");
  const ac = new AbortController();
  let timer = setTimeout(() => ac.abort(), timeoutMs);
  const idle = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(), timeoutMs);
  };
  try {
    const res = await fetch(source, { signal: ac.signal });
    if (!res.ok) throw new TransportError(`GET ${source}: HTTP ${res.status} ${res.statusText}`);
    if (!res.body) throw new TransportError(`GET ${source}: no body`);
    const body = Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]);
    body.on("data", idle);
    await pipeline(body, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    if (ac.signal.aborted) throw new TimeoutError(`GET ${source}: no answer within ${timeoutMs} ms`, timeoutMs);
    if (e instanceof TransportError) throw e;
    const code: unknown = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("E")) throw new IoError(`GET ${source}: cannot store it: ${(e as Error).message}`, { cause: e });
    throw new TransportError(`GET ${source}: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  const src = await openFileSource(file).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    size: src.size,
    read: (offset, length) => src.read(offset, length),
    async close() {
      await src.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The last path segment of a file path or URL (DEVFILE default of `mos put`). */
export function baseName(source: string): string {
  const path = isUrl(source) ? new URL(source).pathname : source;
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? "";
}
