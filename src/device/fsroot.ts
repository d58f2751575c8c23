/**
 * The device file system root: maps device file names to host paths and guarantees the root is never
 * escaped. Refused with RpcError 400 (the FS service answers it as is):
 * - absolute names (`/etc/passwd`, `C:\x`, `\\host\share`), except the bare `/` (and `""`/`.`) which
 *   name the root itself (the firmware's FS.List default);
 * - any `..` component (even one that would stay inside), and NUL bytes;
 * - names whose existing part resolves, through symlinks, outside the root (checked with realpath on the
 *   deepest existing ancestor and, for an existing final symlink, on its target; a dangling symlink is
 *   refused).
 * Decision: device names are relative to the root, as `mos put` sends them (basename). A race between the
 * check and the use (a symlink swapped in between by a local user of the host) is outside this guard's
 * scope: the root belongs to the agent.
 *
 * The check's lstat and realpath are synchronous: on a local file system each takes microseconds, where a
 * trip through libuv's thread pool costs a thread wake-up and a loop wake-up (70-100 µs on the bench VM)
 * before every FS request can start. The file I/O itself (open, read, write) stays in the pool.
 */
import { lstatSync, realpathSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { RpcError } from "../errors.js";
import { debug } from "../log.js";

function refuse(name: string, reason: string): RpcError {
  debug("device", "file name refused", { name: name.slice(0, 200), reason });
  return new RpcError(400, `invalid path "${name}": ${reason}`);
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

export class FsRoot {
  /** The root as given (absolute). */
  readonly root: string;
  private realRoot: string | undefined;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private real(): string {
    this.realRoot ??= realpathSync.native(this.root);
    return this.realRoot;
  }

  private inside(realRoot: string, p: string): boolean {
    return p === realRoot || p.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
  }

  /** The components of a device name, or a 400 for a refused one. */
  parts(name: string): string[] {
    if (name.includes("\u0000")) throw refuse(name, "NUL byte");
    if (name === "/" || name === "" || name === ".") return [];
    if (name.startsWith("/") || name.startsWith("\\") || /^[a-zA-Z]:/.test(name)) throw refuse(name, "absolute paths are not allowed");
    const parts = name.split(/[/\\]/).filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) throw refuse(name, "'..' is not allowed");
    return parts;
  }

  /**
   * The host path for a device name, after the symlink check. The file itself need not exist (writes
   * create it); its directory may be missing too (the caller's open then fails as the firmware's does).
   */
  async resolve(name: string): Promise<string> {
    const parts = this.parts(name);
    const realRoot = this.real();
    const host = join(this.root, ...parts);
    // Walk up to the deepest existing ancestor (the file itself included) and check where it really is.
    for (let n = parts.length; n >= 0; n--) {
      const p = join(this.root, ...parts.slice(0, n));
      let st;
      try {
        st = lstatSync(p);
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      let real: string;
      try {
        real = realpathSync.native(p);
      } catch (e) {
        if (st.isSymbolicLink() && isMissing(e)) throw refuse(name, "dangling symbolic link");
        throw e;
      }
      if (!this.inside(realRoot, real)) throw refuse(name, "resolves outside the file system");
      return host;
    }
    return host;
  }
}
