/**
 * The device's RPC security (spec §4.2 steps 2-6): a pre-handler for RpcServer that applies `rpc.acl` /
 * `rpc.acl_file` and in-frame digest auth (`rpc.auth_domain`, `rpc.auth_file`, `rpc.auth_algo`), and the
 * HttpDigestAuthority that the HTTP/WS transports use for `Authorization: Digest` headers. Both share one
 * replay store (rpc/auth.ts), so a credential accepted once is refused afterwards on every channel.
 *
 * Decisions where the firmware is silent or unhelpful (docs/SECURITY.md):
 * - `rpc.acl` and `rpc.acl_file` both set: the firmware silently drops every request; remos answers every
 *   request 500 "both rpc.acl and rpc.acl_file are set" (fails closed, but visibly).
 * - A malformed ACL or an unreadable ACL file: the firmware drops every request; remos answers 500
 *   "invalid RPC ACL" / "failed to read ACL file" (fails closed; 500 rather than 403 because it is a
 *   device misconfiguration, not a denial of this user).
 * - An unreadable password file: 500 "failed to open password file" (as the firmware).
 * - The reboot lockout (418) is the agent's pre-handler, not this one.
 *
 * Files are read through `deps.readFsFile` and their parsed form is cached; with `deps.statFsFile` a file
 * is re-read only when its size, mtime or inode changes, without it on every use (parsing is still cached
 * by content).
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { RpcError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import { type Acl, AclSyntaxError, aclDecision, aclSource, parseAcl, userAllowed } from "../rpc/acl.js";
import {
  type AuthResult,
  type DigestRealm,
  type Htdigest,
  ReplayStore,
  algorithmFromConfig,
  frameChallengeMessage,
  httpChallengeHeader,
  parseHtdigest,
  verifyFrameAuth,
  verifyHttpAuthorization,
} from "../rpc/auth.js";
import type { HttpDigestAuthority } from "../rpc/digest.js";
import type { PreHandler, RequestContext } from "../rpc/server.js";

/** The `rpc.*` config values security reads (spec §4.1). */
export interface RpcSecurityConfig {
  acl: string;
  acl_file: string;
  auth_domain: string;
  auth_file: string;
  auth_algo: number;
}

/** What a file's identity looks like for cache invalidation. */
export interface FsFileStat {
  size: number;
  mtimeMs: number;
  ino?: number;
}

export interface SecurityDeps {
  /** The current `rpc` config (read on every request, so config changes apply at once). */
  rpcConfig(): RpcSecurityConfig;
  /** Read a file from the device FS root, refusing path traversal. */
  readFsFile(name: string): Promise<string>;
  /** Optional: stat a file in the device FS root, so files are re-read only when they change. */
  statFsFile?(name: string): Promise<FsFileStat>;
  /** Clock in milliseconds (default Date.now). Nonces are its unix seconds. */
  now?: () => number;
  /**
   * Optional: an explicit replay store to share. By default one per deps object, created with the first
   * factory call and refusing nonces from before that moment (credentials captured before a restart).
   */
  replayStore?: ReplayStore;
}

// ---------------------------------------------------------------------------------------------- file cache

interface CachedFile<T> {
  name: string;
  stat?: FsFileStat;
  text: string;
  value: T;
}

/** Loads a file through deps and keeps its parsed value until the file changes. */
class ParsedFileCache<T> {
  private cached: CachedFile<T> | undefined;

  constructor(
    private readonly deps: SecurityDeps,
    private readonly parse: (text: string) => T,
  ) {}

  async get(name: string): Promise<T> {
    const c = this.cached;
    let st: FsFileStat | undefined;
    if (this.deps.statFsFile) {
      st = await this.deps.statFsFile(name);
      if (c && c.name === name && c.stat && sameStat(c.stat, st)) return c.value;
    }
    const text = await this.deps.readFsFile(name);
    if (c && c.name === name && c.text === text) {
      c.stat = st;
      return c.value;
    }
    const value = this.parse(text);
    this.cached = { name, stat: st, text, value };
    return value;
  }
}

function sameStat(a: FsFileStat, b: FsFileStat): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

// ---------------------------------------------------------------------------------------------- shared state

interface SecurityState {
  replay: ReplayStore;
  aclFile: ParsedFileCache<Acl>;
  htdigest: ParsedFileCache<Htdigest>;
  inline: { text: string; acl: Acl } | undefined;
}

const states = new WeakMap<SecurityDeps, SecurityState>();

function stateFor(deps: SecurityDeps): SecurityState {
  let s = states.get(deps);
  if (!s) {
    s = {
      // Nonces older than this process are refused: its memory of used credentials starts now.
      replay: deps.replayStore ?? new ReplayStore({ notBeforeSeconds: nowSeconds(deps) }),
      aclFile: new ParsedFileCache(deps, parseAcl),
      htdigest: new ParsedFileCache(deps, parseHtdigest),
      inline: undefined,
    };
    states.set(deps, s);
  }
  return s;
}

function nowSeconds(deps: SecurityDeps): number {
  return Math.floor((deps.now ?? Date.now)() / 1000);
}

function realmOf(cfg: RpcSecurityConfig): DigestRealm {
  return { realm: cfg.auth_domain ?? "", algorithm: algorithmFromConfig(cfg.auth_algo ?? 0) };
}

function authConfigured(cfg: RpcSecurityConfig): boolean {
  return !!cfg.auth_domain && !!cfg.auth_file;
}

async function loadAcl(deps: SecurityDeps, state: SecurityState, cfg: RpcSecurityConfig): Promise<Acl | undefined> {
  const src = aclSource(cfg.acl, cfg.acl_file);
  switch (src.kind) {
    case "none":
      return undefined;
    case "conflict":
      debug("auth", "refused: both rpc.acl and rpc.acl_file are set");
      throw new RpcError(500, "both rpc.acl and rpc.acl_file are set");
    case "inline": {
      if (state.inline?.text === src.text) return state.inline.acl;
      const acl = parseAclOr500(src.text);
      state.inline = { text: src.text, acl };
      return acl;
    }
    case "file":
      try {
        return await state.aclFile.get(src.name);
      } catch (e) {
        if (e instanceof AclSyntaxError) {
          debug("auth", "refused: ACL file is malformed", { file: src.name, error: e.message });
          throw new RpcError(500, e.message);
        }
        debug("auth", "refused: ACL file unreadable", { file: src.name, error: errorMessage(e) });
        throw new RpcError(500, "failed to read ACL file");
      }
  }
}

function parseAclOr500(text: string): Acl {
  try {
    return parseAcl(text);
  } catch (e) {
    debug("auth", "refused: rpc.acl is malformed", { error: errorMessage(e) });
    throw new RpcError(500, errorMessage(e));
  }
}

async function loadHtdigest(state: SecurityState, file: string): Promise<Htdigest> {
  try {
    const db = await state.htdigest.get(file);
    if (db.skippedLines > 0) debug("auth", "password file has malformed lines (ignored)", { file, lines: db.skippedLines });
    return db;
  } catch (e) {
    debug("auth", "password file unreadable", { file, error: errorMessage(e) });
    throw new RpcError(500, "failed to open password file");
  }
}

function refuse(ctx: RequestContext, why: string, user?: string): void {
  debug("auth", "refused", { user, method: ctx.method, channel: ctx.channel.type, peer: ctx.channel.peer, why });
}

// ---------------------------------------------------------------------------------------------- factories

/**
 * The pre-handler of spec §4.2 steps 2-6. Sets `ctx.user` when a user was authenticated; throws RpcError
 * 400 "bad request" (malformed `auth`), 401 with the JSON challenge, 403 "unauthorized", or 500 (see the
 * file comment).
 */
export function createSecurityPreHandler(deps: SecurityDeps): PreHandler {
  const state = stateFor(deps);
  const check = async (ctx: RequestContext, cfg: RpcSecurityConfig): Promise<void> => {
    const acl = await loadAcl(deps, state, cfg);
    if (!acl) return; // no ACL: everything allowed, no authentication at all
    const decision = aclDecision(acl, ctx.method, ctx.channel.type);
    if (decision.kind === "allow") return;
    if (decision.kind === "deny") {
      refuse(ctx, decision.entry ? "ACL entry denies all" : "no ACL entry matches", ctx.user);
      throw new RpcError(403, "unauthorized");
    }
    const now = nowSeconds(deps);
    const realm = realmOf(cfg);
    let user = ctx.user;
    if (user === undefined && ctx.frame.auth !== undefined) {
      if (authConfigured(cfg)) {
        const db = await loadHtdigest(state, cfg.auth_file);
        const r: AuthResult = verifyFrameAuth(ctx.frame.auth, realm, db, state.replay, now);
        if (r.ok) user = r.user;
        else {
          refuse(ctx, `in-frame auth: ${r.reason}`, r.user);
          if (r.reason === "malformed") throw new RpcError(400, "bad request");
        }
      } else {
        refuse(ctx, "in-frame auth ignored: rpc.auth_domain / rpc.auth_file not set");
      }
    }
    if (user === undefined || user === "") {
      if (ctx.frame.auth === undefined) debug("auth", "authentication required", { method: ctx.method, channel: ctx.channel.type });
      throw new RpcError(401, frameChallengeMessage(realm, now));
    }
    if (!userAllowed(user, decision.entry.acl)) {
      refuse(ctx, "user not allowed by the ACL entry", user);
      throw new RpcError(403, "unauthorized");
    }
    ctx.user = user;
  };
  // No ACL configured (the usual case): settled synchronously, so the request takes no extra turn.
  return (ctx: RequestContext): Promise<void> | undefined => {
    const cfg = deps.rpcConfig();
    if (!cfg.acl && !cfg.acl_file) return undefined;
    return check(ctx, cfg);
  };
}

/**
 * HTTP Digest for the `/rpc` endpoint and the WS upgrade (spec §4.4), from `rpc.auth_domain` /
 * `rpc.auth_file` / `rpc.auth_algo`. `verify` resolves undefined (never rejects) when the header is not a
 * valid, fresh, first-use digest or when auth is not configured; an unreadable password file is logged
 * and counts as not authenticated. Shares the replay store with the pre-handler made from the same deps.
 */
export function createHttpDigestAuthority(deps: SecurityDeps): HttpDigestAuthority {
  const state = stateFor(deps);
  return {
    async verify(authorization: string, method: string, uri: string): Promise<string | undefined> {
      const cfg = deps.rpcConfig();
      if (!authConfigured(cfg)) return undefined;
      let db: Htdigest;
      try {
        db = await loadHtdigest(state, cfg.auth_file);
      } catch {
        return undefined;
      }
      const r = verifyHttpAuthorization(authorization, method, uri, realmOf(cfg), db, state.replay, nowSeconds(deps));
      if (r.ok) return r.user;
      debug("auth", "refused", { user: r.user, method, uri: uri.length > 100 ? uri.slice(0, 100) + "…" : uri, channel: "HTTP", why: `HTTP digest: ${r.reason}` });
      return undefined;
    },
    challenge(): string {
      return httpChallengeHeader(realmOf(deps.rpcConfig()), nowSeconds(deps));
    },
  };
}

/** Both halves from one deps object (they then share the replay store and file caches). */
export function createSecurity(deps: SecurityDeps): { preHandler: PreHandler; httpAuthority: HttpDigestAuthority } {
  return { preHandler: createSecurityPreHandler(deps), httpAuthority: createHttpDigestAuthority(deps) };
}

// ---------------------------------------------------------------------------------------------- fs root helper

/**
 * `readFsFile` / `statFsFile` over a directory that is the device's FS root. Names are relative to the
 * root (a leading `/` is allowed); `..`, absolute escapes and symlinks leading out of the root are refused.
 */
export function fsRootFileAccess(root: string): Pick<SecurityDeps, "readFsFile" | "statFsFile"> {
  const rootAbs = resolve(root);
  const inside = async (name: string): Promise<string> => {
    if (name.includes("\u0000")) throw new RpcError(400, "invalid file name");
    const p = resolve(rootAbs, name.replace(/^\/+/, ""));
    const rel = relative(rootAbs, p);
    if (rel === "" || rel === ".." || rel.startsWith(".." + sep) || isAbsolute(rel)) throw new RpcError(400, `path outside the device FS: ${name}`);
    const real = await realpath(p);
    const realRoot = await realpath(rootAbs);
    if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new RpcError(400, `path outside the device FS: ${name}`);
    return real;
  };
  return {
    async readFsFile(name: string): Promise<string> {
      return readFile(await inside(name), "utf8");
    },
    async statFsFile(name: string): Promise<FsFileStat> {
      const st = await stat(await inside(name));
      return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
    },
  };
}
