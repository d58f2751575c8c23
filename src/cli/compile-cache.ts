/**
 * The V8 compile cache for the CLI's modules: Node ≥ 22.1 has `module.enableCompileCache(dir)`, which keeps
 * compiled code of every module loaded afterwards, so the next `mos` run skips compiling them. Node 20 has
 * no such API: there this does nothing and costs nothing (the version is checked before `node:module`, which
 * `mos call` does not otherwise load, is touched; builtins come from `process.getBuiltinModule`, not an
 * `import` that would build an ESM facade).
 *
 * The cache is a directory the user owns: `<tmpdir>/remos-compile-cache-<uid>`, made with mode 0700 and
 * used only if it is a real directory (not a link) owned by this user and writable by nobody else, since
 * a cache someone else can write to could hand us their code. `NODE_COMPILE_CACHE` (Node's own switch, which
 * Node has then already acted on) and `NODE_DISABLE_COMPILE_CACHE` are respected.
 */
import type * as FsModule from "node:fs";

interface ModuleWithCache {
  enableCompileCache?: (dir?: string) => unknown;
}

export type CompileCacheState = "unsupported" | "enabled" | "refused" | "off";

/**
 * The cache directory under `tmp` for user `uid`, created (0700) if missing; undefined when what is there is
 * not a directory of this user's that only this user can write to.
 */
export function ownedCacheDir(fs: typeof FsModule, tmp: string, uid: number): string | undefined {
  const dir = `${tmp.replace(/\/+$/, "")}/remos-compile-cache-${uid}`;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as { code?: unknown }).code !== "EEXIST") return undefined;
  }
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return dir;
}

/** Turn the compile cache on for the modules loaded from now on, where Node supports it. Never throws. */
export function enableCompileCache(): CompileCacheState {
  try {
    const [major, minor] = process.versions.node.split(".").map(Number);
    if (major < 22 || (major === 22 && minor < 1)) return "unsupported";
    const mod = process.getBuiltinModule("node:module") as ModuleWithCache;
    if (typeof mod.enableCompileCache !== "function") return "unsupported";
    if (process.env.NODE_COMPILE_CACHE || process.env.NODE_DISABLE_COMPILE_CACHE) return "off";
    if (typeof process.getuid !== "function") return "off"; // Windows: no ownership check to make, leave it off
    const fs = process.getBuiltinModule("node:fs");
    const tmp = process.getBuiltinModule("node:os").tmpdir();
    const dir = ownedCacheDir(fs, tmp, process.getuid());
    if (!dir) return "refused";
    mod.enableCompileCache(dir);
    return "enabled";
  } catch {
    return "off";
  }
}
