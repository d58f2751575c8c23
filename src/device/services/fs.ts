/**
 * The FS.* service (spec §3.3, SVCFS mgos_service_fs.c): List, ListExt, Get, Put, Remove, Rename, plus
 * remos's Mkdir and Sha256, over the device FS root (device/fsroot.ts refuses escapes with 400).
 *
 * Arguments are read as the firmware's json_scanf does: a value of the wrong JSON type counts as absent.
 * Decisions (docs/DEVICE.md):
 * - FS.Put `data` that is not valid base64 → 400 "invalid data" (the firmware would write garbage).
 * - FS.Get refuses to read more than 4 MiB in one call: 500 "out of memory" (as a device's failed malloc).
 * - FS.Sha256 `{filename, offset = 0, len = -1}` (remos extension, used by transfers to verify and resume)
 *   → `{sha256, size, offset, len}`: the hex SHA-256 of bytes [offset, offset+len) clamped at the end of the
 *   file, `size` the whole file's; errors as FS.Get. The file is hashed as a stream, except right after an
 *   upload: the whole file's checksum then comes from the digest the upload kept (device/write-digest.ts).
 * - FS.Mkdir `{path}` creates the directory and its parents (no error if it exists): 400 "path is
 *   required", 500 "mkdir failed".
 * - FS.Mkfs / FS.Mount / FS.Umount: after the firmware's argument checks (400), 501 "<method> is not
 *   supported: the remos device has one file system per firmware slot".
 */
import { createHash } from "node:crypto";
import { type Stats, constants, fstatSync, statSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { RpcError } from "../../errors.js";
import { debug } from "../../log.js";
import { Base64Text, knownAscii } from "../../rpc/frame.js";
import type { RpcServer } from "../../rpc/server.js";
import { FsHandles, type LentHandle } from "../fs-handles.js";
import { WriteBatcher } from "../write-batcher.js";
import type { FsRoot } from "../fsroot.js";

/** The most one FS.Get returns. */
export const FS_GET_MAX = 4 * 1024 * 1024;
/**
 * FS.Sha256 reads the file in pieces of this size (never the whole file at once). Hashing a cached 16 MB
 * file took 14.7 ms of CPU in 256 KiB pieces and 12.1 ms in 1 MiB pieces (fewer reads through the thread
 * pool); 4 MiB gained nothing more.
 */
const SHA256_READ_SIZE = 1024 * 1024;

type Params = Record<string, unknown>;

function asParams(p: unknown): Params {
  return typeof p === "object" && p !== null && !Array.isArray(p) ? (p as Params) : {};
}
function str(p: Params, k: string): string | undefined {
  return typeof p[k] === "string" ? (p[k] as string) : undefined;
}
function num(p: Params, k: string, def: number): number {
  return typeof p[k] === "number" && Number.isFinite(p[k]) ? Math.trunc(p[k] as number) : def;
}

/**
 * Strict base64: groups of 4 digits, then optionally 2 digits (+ optional `==`) or 3 digits (+ optional
 * `=`); anything else (other characters, `=` inside, a lone trailing digit) is 400 "invalid data".
 * The same language as /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/, but
 * that regex costs ~7 ms per MiB (it was the agent's biggest cost in transfers), and re-encoding the result
 * to compare it ~1 ms per MiB. Node's decoder takes the standard digits, `-` and `_` (base64url) and, in a
 * string with characters above U+00FF, the low byte of each; it skips every other character and stops at
 * `=`. So: the decoded length must be exactly what `end` digits give (a skipped or stopping character
 * makes it shorter), the text must be ASCII (its UTF-8 length equals its length; `knownAscii`: the frame
 * decoder already checked its bytes) and hold no `-` or `_`.
 */
export function decodeBase64(text: string, knownAscii = false): Buffer {
  let end = text.length;
  if (end > 0 && text.charCodeAt(end - 1) === 0x3d) {
    end--;
    if (end > 0 && text.charCodeAt(end - 1) === 0x3d) {
      end--;
      if (end % 4 !== 2) throw new RpcError(400, "invalid data");
    } else if (end % 4 !== 3) throw new RpcError(400, "invalid data");
  } else if (end % 4 === 1) throw new RpcError(400, "invalid data");
  const digits = end === text.length ? text : text.slice(0, end);
  const data = Buffer.from(digits, "base64");
  if (
    data.length !== Math.floor((end * 3) / 4) ||
    (!knownAscii && Buffer.byteLength(digits, "utf8") !== end) ||
    digits.indexOf("-") >= 0 ||
    digits.indexOf("_") >= 0
  ) {
    throw new RpcError(400, "invalid data");
  }
  return data;
}

export interface FsServiceDeps {
  /** The FS root of the running slot (read at each call: it changes after an OTA reboot). */
  root(): FsRoot;
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? String(e);
}

/** What the FS service leaves to its owner: closing the file handles it keeps (at reboot and stop). */
export interface FsServiceHandle {
  closeHandles(): void;
}

export function registerFsService(server: RpcServer, deps: FsServiceDeps): FsServiceHandle {
  // File handles kept between the chunks of a transfer (device/fs-handles.ts).
  const handles = new FsHandles();
  const list = async (params: unknown, ext: boolean): Promise<unknown[]> => {
    const p = asParams(params);
    const path = str(p, "path") ?? "/";
    const dir = await deps.root().resolve(path);
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (e) {
      debug("device", "FS.List: cannot open directory", { path, error: errno(e) });
      return []; // the firmware answers [] when opendir fails
    }
    if (!ext) return names;
    // one stat per entry, synchronous: a pool trip each would cost more than the stat (see fsroot.ts)
    const out: { name: string; size: number }[] = [];
    for (const name of names) {
      try {
        out.push({ name, size: statSync(join(dir, name)).size });
      } catch {
        // entries whose stat fails are skipped, as in the firmware
      }
    }
    return out;
  };

  server.addHandler("FS.List", (p) => list(p, false), {
    argsFmt: "{path: %Q}",
    description: "Names in a directory of the device file system (default /)",
    resultSchema: { type: "array", items: { type: "string" } },
  });
  server.addHandler("FS.ListExt", (p) => list(p, true), {
    argsFmt: "{path: %Q}",
    description: "Names and sizes in a directory of the device file system (default /)",
  });

  server.addHandler("FS.Get", async (params) => {
    const { fh, size, offset, len, release } = await openRange(handles, deps.root(), "FS.Get", params);
    try {
      if (len > FS_GET_MAX) throw new RpcError(500, "out of memory");
      const data = Buffer.allocUnsafe(len); // filled by the reads below, or not sent ("fread")
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(data, got, len - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got !== len) throw new RpcError(500, "fread");
      // Base64Text: the frame encoder splices the base64 in instead of JSON-escaping a copy of it.
      return { data: Base64Text.of(data), left: size - offset - len };
    } finally {
      await release();
    }
  }, {
    argsFmt: "{filename: %Q, offset: %ld, len: %ld}",
    description: "Read a chunk of a file: base64 data and the bytes left after it",
    resultSchema: { type: "object", properties: { data: { type: "string" }, left: { type: "integer" } } },
  });

  server.addHandler("FS.Sha256", async (params, ctx) => {
    const root = deps.root();
    const p = asParams(params);
    const name = str(p, "filename");
    if (name !== undefined && num(p, "offset", 0) === 0) {
      // The whole file just uploaded, whose write handle is kept: the upload hashed it as it wrote it
      // (device/write-digest.ts), so the check that ends an upload needs no open and no read.
      const up = handles.uploadedSha256(root, name);
      const asked = num(p, "len", -1);
      if (up !== undefined && (asked < 0 || asked >= up.size)) {
        const sha256 = await up.sha256.catch((e: unknown) => debug("device", "FS.Sha256: running digest failed; reading the file", { error: String(e) }));
        if (sha256 !== undefined) {
          debug("device", "FS.Sha256: answered from the upload's running digest", { size: up.size });
          return { sha256, size: up.size, offset: 0, len: up.size };
        }
      }
    }
    const { fh, size, offset, len, release } = await openRange(handles, root, "FS.Sha256", params);
    try {
      // Streamed in bounded pieces: a 200 MB file is hashed without being held in memory.
      const hash = createHash("sha256");
      const buf = Buffer.alloc(Math.min(SHA256_READ_SIZE, Math.max(1, len)));
      let done = 0;
      while (done < len) {
        ctx.signal.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, len - done), offset + done);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        done += bytesRead;
      }
      if (done !== len) throw new RpcError(500, "fread");
      return { sha256: hash.digest("hex"), size, offset, len };
    } finally {
      await release();
    }
  }, {
    argsFmt: "{filename: %Q, offset: %ld, len: %ld}",
    description: "SHA-256 of a file or of bytes [offset, offset+len) of it (remos extension; len -1 = to the end)",
    argsSchema: {
      type: "object",
      properties: { filename: { type: "string" }, offset: { type: "integer" }, len: { type: "integer" } },
    },
    validateArgs: false,
    resultSchema: {
      type: "object",
      properties: {
        sha256: { type: "string" },
        size: { type: "integer" },
        offset: { type: "integer" },
        len: { type: "integer" },
      },
      required: ["sha256", "size", "offset", "len"],
    },
  });

  server.addHandler("FS.Put", async (params) => {
    const p = asParams(params);
    const filename = str(p, "filename");
    const offset = num(p, "offset", -1);
    const append = p.append === true;
    if (filename === undefined) throw new RpcError(400, "filename is required");
    const text = str(p, "data") ?? "";
    const data = decodeBase64(text, knownAscii(p, text));
    const root = deps.root();
    const flags = offset < 0 ? (append ? "a" : "w") : offset === 0 ? "w" : "r+";
    const opener = async (path: string): Promise<FileHandle> => {
      try {
        return await open(path, flags, 0o644);
      } catch (e) {
        debug("device", "FS.Put: open failed", { filename, flags, error: errno(e) });
        throw new RpcError(400, `failed to open file "${filename}"`);
      }
    };
    const notAFile = (): RpcError => new RpcError(400, `failed to open file "${filename}"`);
    let lent: LentHandle;
    if (flags === "r+") {
      // a write in place (every chunk of a transfer after the first): the file's handle is kept between chunks
      const got = await handles.acquire(root, filename, "write", opener);
      if ("notAFile" in got) throw notAFile();
      lent = got;
    } else {
      const path = await root.resolve(filename);
      const fh = await opener(path);
      let st: Stats;
      try {
        st = fstatSync(fh.fd);
      } catch (e) {
        await fh.close();
        throw e;
      }
      if (!st.isFile()) {
        await fh.close();
        throw notAFile();
      }
      // offset 0 truncates and starts a transfer: keep the handle (and hash) for the chunks that follow
      lent =
        offset === 0
          ? handles.adopt(root, filename, path, fh, st)
          : { fh, stats: st, path, digest: undefined, write: (d, position) => new WriteBatcher(fh).write(d, position), release: () => fh.close() };
    }
    const at = offset > 0 ? offset : 0;
    // every write is announced: one that does not go through the file's upload digest gives it up
    const writeDone = handles.writeStarting(lent);
    let written = false;
    try {
      // joined with the chunks that arrive while an earlier one is being written (write-batcher.ts)
      await lent.write(data, flags === "a" ? null : at);
      written = true;
    } catch (e) {
      debug("device", "FS.Put: write failed", { filename, error: errno(e) });
      throw new RpcError(500, "failed to write data");
    } finally {
      writeDone(at, written ? data : undefined);
      await lent.release();
    }
    return null;
  }, {
    argsFmt: "{filename: %Q, offset: %ld, data: %V, append: %B}",
    description: "Write base64 data to a file: offset 0 truncates, offset > 0 writes in place, append appends",
  });

  server.addHandler("FS.Remove", async (params) => {
    const filename = str(asParams(params), "filename");
    if (filename === undefined) throw new RpcError(400, "filename is required");
    const path = await deps.root().resolve(filename);
    if (deps.root().parts(filename).length === 0) throw new RpcError(500, "remove failed");
    handles.forgetPath(path);
    try {
      await unlink(path);
    } catch (e) {
      const code = errno(e);
      if (code !== "EISDIR" && code !== "EPERM") {
        debug("device", "FS.Remove failed", { filename, error: code });
        throw new RpcError(500, "remove failed");
      }
      try {
        await rmdir(path); // remove() also removes an empty directory
      } catch (e2) {
        debug("device", "FS.Remove failed", { filename, error: errno(e2) });
        throw new RpcError(500, "remove failed");
      }
    }
    return null;
  }, { argsFmt: "{filename: %Q}", description: "Remove a file (or an empty directory)" });

  server.addHandler("FS.Rename", async (params) => {
    const p = asParams(params);
    const src = str(p, "src");
    const dst = str(p, "dst");
    if (src === undefined || dst === undefined) throw new RpcError(400, "src and dst are required");
    const from = await deps.root().resolve(src);
    const to = await deps.root().resolve(dst);
    if (deps.root().parts(src).length === 0 || deps.root().parts(dst).length === 0) throw new RpcError(500, "rename failed");
    handles.forgetPath(from);
    handles.forgetPath(to);
    try {
      await rename(from, to);
    } catch (e) {
      debug("device", "FS.Rename failed", { src, dst, error: errno(e) });
      throw new RpcError(500, "rename failed");
    }
    return null;
  }, { argsFmt: "{src: %Q, dst: %Q}", description: "Rename (move) a file" });

  server.addHandler("FS.Mkdir", async (params) => {
    const path = str(asParams(params), "path");
    if (path === undefined) throw new RpcError(400, "path is required");
    const host = await deps.root().resolve(path);
    try {
      await mkdir(host, { recursive: true });
      await deps.root().resolve(path); // re-check: a parent may have been a link created meanwhile
    } catch (e) {
      if (e instanceof RpcError) throw e;
      debug("device", "FS.Mkdir failed", { path, error: errno(e) });
      throw new RpcError(500, "mkdir failed");
    }
    return null;
  }, { argsFmt: "{path: %Q}", description: "Create a directory and its parents (remos extension)" });

  const unsupported = (method: string): never => {
    throw new RpcError(501, `${method} is not supported: the remos device has one file system per firmware slot`);
  };
  server.addHandler("FS.Mkfs", (params) => {
    const p = asParams(params);
    if ((str(p, "dev_type") === undefined && str(p, "dev_name") === undefined) || str(p, "fs_type") === undefined) {
      throw new RpcError(400, "fs_type is required");
    }
    return unsupported("FS.Mkfs");
  }, { argsFmt: "{dev_name: %Q, dev_type: %Q, dev_opts: %Q, fs_type: %Q, fs_opts: %Q}", description: "Not supported (501)" });
  server.addHandler("FS.Mount", (params) => {
    const p = asParams(params);
    if (str(p, "path") === undefined || (str(p, "dev_type") === undefined && str(p, "dev_name") === undefined) || str(p, "fs_type") === undefined) {
      throw new RpcError(400, "path and fs_type is required");
    }
    return unsupported("FS.Mount");
  }, { argsFmt: "{path: %Q, dev_name: %Q, dev_type: %Q, dev_opts: %Q, fs_type: %Q, fs_opts: %Q}", description: "Not supported (501)" });
  server.addHandler("FS.Umount", (params) => {
    if (str(asParams(params), "path") === undefined) throw new RpcError(400, "path is required");
    return unsupported("FS.Umount");
  }, { argsFmt: "{path: %Q}", description: "Not supported (501)" });
  return { closeHandles: () => handles.closeAll() };
}

interface OpenRange {
  fh: FileHandle;
  size: number;
  offset: number;
  len: number;
  /** The file's stat when the handle was lent. */
  stats: Stats;
  /** Give the handle back (it may be kept for the next chunk). */
  release(): Promise<void>;
}

/**
 * FS.Get and FS.Sha256 share their arguments and errors (spec §3.3): `filename` required, `offset` >= 0
 * (clamped to the size), `len` < 0 or past the end = the rest of the file. The caller releases the handle.
 */
async function openRange(handles: FsHandles, root: FsRoot, method: string, params: unknown): Promise<OpenRange> {
  const p = asParams(params);
  const filename = str(p, "filename");
  let offset = num(p, "offset", 0);
  let len = num(p, "len", -1);
  if (filename === undefined) throw new RpcError(400, "filename is required");
  if (offset < 0) throw new RpcError(400, "illegal offset");
  const got = await handles.acquire(root, filename, "read", async (path) => {
    try {
      return await open(path, constants.O_RDONLY);
    } catch (e) {
      debug("device", `${method}: open failed`, { filename, error: errno(e) });
      throw new RpcError(400, `failed to open file "${filename}"`);
    }
  });
  if ("notAFile" in got) throw new RpcError(400, `failed to open file "${filename}"`);
  const size = got.stats.size;
  if (offset > size) offset = size;
  if (len < 0 || offset + len > size) len = size - offset;
  return { fh: got.fh, size, offset, len, stats: got.stats, release: got.release };
}
