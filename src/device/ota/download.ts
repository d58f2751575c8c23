/**
 * Bundle download for OTA.Update (pull updates): http(s) only, TLS verification on (the platform's
 * `fetch`), a whole-download timeout, and a size cap checked against Content-Length and while streaming.
 * Failures are RpcErrors: 400 bad URL, 413 too large, 502 failed (status, network), 504 timed out.
 */
import { RpcError, errorMessage } from "../../errors.js";

export interface DownloadOptions {
  timeoutMs: number;
  maxSize: number;
  fetch?: typeof fetch;
  onProgress?: (received: number, size: number) => void;
}

export async function downloadBundle(url: string, options: DownloadOptions): Promise<Uint8Array> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RpcError(400, `invalid url: ${url}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new RpcError(400, `unsupported url scheme ${u.protocol} (http or https)`);
  const f = options.fetch ?? fetch;
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, options.timeoutMs);
  try {
    const res = await f(u, { signal: ac.signal, redirect: "follow" });
    if (!res.ok) throw new RpcError(502, `download failed: HTTP ${res.status}`);
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > options.maxSize) {
      await res.body?.cancel().catch(() => undefined);
      throw new RpcError(413, `bundle of ${declared} bytes exceeds the ${options.maxSize}-byte limit`);
    }
    const size = Number.isFinite(declared) ? declared : 0;
    const chunks: Uint8Array[] = [];
    let received = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        if (received > options.maxSize) {
          await reader.cancel().catch(() => undefined);
          throw new RpcError(413, `bundle exceeds the ${options.maxSize}-byte limit`);
        }
        chunks.push(value);
        options.onProgress?.(received, size);
      }
    }
    if (size > 0 && received !== size) throw new RpcError(502, `download truncated: ${received} of ${size} bytes`);
    return Buffer.concat(chunks);
  } catch (e) {
    if (e instanceof RpcError) throw e;
    if (timedOut) throw new RpcError(504, `download timed out after ${options.timeoutMs} ms`);
    throw new RpcError(502, `download failed: ${errorMessage(e)}`);
  } finally {
    clearTimeout(timer);
  }
}
