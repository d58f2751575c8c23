/**
 * Device-side verification of digest credentials (spec §4.3 in-frame `auth`, §4.4 HTTP Digest), the htdigest
 * password file parser, and the replay store. Pure logic over strings: the caller reads the files and owns
 * the clock (device/security.ts wires it to the device's config and file system).
 *
 * Beyond Mongoose OS: every accepted credential — (user, realm, nonce, cnonce, nc, and for HTTP the method
 * and uri) — is remembered for the nonce's freshness window and accepted only once, on any channel, so a
 * captured authenticated frame or HTTP request cannot be replayed. mos sends a fresh cnonce on every retry
 * and clients may choose their own recent nonce (DOCS userguide/rpc.md); both keep working because each
 * request carries a new cnonce.
 *
 * Failures never tell an unknown user from a wrong password: both are "not authenticated", and an unknown
 * user costs the same hash work as a known one.
 */
import { timingSafeEqual } from "node:crypto";
import { type DigestAlgorithm, digestResponse, normaliseAlgorithm, parseDigestHeader } from "./digest.js";

/** A nonce (unix seconds) is fresh when `now >= nonce && now - nonce < NONCE_WINDOW_SECONDS` (spec §4.3). */
export const NONCE_WINDOW_SECONDS = 3600;

// ---------------------------------------------------------------------------------------------- htdigest

/** A parsed htdigest file: `user:realm` → lowercase HA1 hex. The first line for a user and realm wins. */
export interface Htdigest {
  readonly entries: ReadonlyMap<string, string>;
  /** Lines that were neither blank, a `#` comment, nor `user:realm:HA1hex`: ignored. */
  readonly skippedLines: number;
}

const HA1_RE = /^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{64})$/;

/**
 * Parse an Apache htdigest file (`user:realm:HA1hex` lines, as `htdigest` writes and Mongoose reads).
 * Never throws: malformed lines (wrong field count, empty user, HA1 not 32 or 64 hex digits) are skipped.
 */
export function parseHtdigest(text: string): Htdigest {
  const entries = new Map<string, string>();
  let skippedLines = 0;
  for (const rawLine of text.split(/\r?\n|\r/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(":");
    if (parts.length !== 3 || parts[0] === "" || !HA1_RE.test(parts[2])) {
      skippedLines++;
      continue;
    }
    const key = entryKey(parts[0], parts[1]);
    if (!entries.has(key)) entries.set(key, parts[2].toLowerCase());
  }
  return { entries, skippedLines };
}

function entryKey(user: string, realm: string): string {
  return `${user}\u0000${realm}`;
}

/** The HA1 of a user in a realm when the file has one of the right length for the algorithm. */
export function lookupHa1(db: Htdigest, user: string, realm: string, algorithm: DigestAlgorithm): string | undefined {
  const h = db.entries.get(entryKey(user, realm));
  if (h === undefined) return undefined;
  return h.length === (algorithm === "MD5" ? 32 : 64) ? h : undefined;
}

// ---------------------------------------------------------------------------------------------- replay store

export interface ReplayStoreOptions {
  /** Entries are kept this long after their nonce time (default: the 1 h freshness window). */
  windowSeconds?: number;
  /** Upper bound on remembered credentials (default 100 000, a few MB at most). */
  maxEntries?: number;
  /**
   * Refuse every nonce before this unix second. A store that starts empty (after a restart) sets it to
   * its start time, so credentials captured before the restart cannot be replayed into the new store.
   */
  notBeforeSeconds?: number;
}

/**
 * Remembers accepted credentials so that each is accepted once. Entries are grouped by nonce time and
 * forgotten once the nonce is stale anyway. Memory is bounded: when full, the oldest nonce second is
 * evicted and every nonce at or before it is refused from then on (a raised floor), so evicting never
 * reopens a replay; honest clients just get a fresh challenge. Only verified credentials get in, so only
 * a holder of a valid password can fill it.
 */
export class ReplayStore {
  private readonly windowSeconds: number;
  private readonly maxEntries: number;
  private readonly buckets = new Map<number, Set<string>>();
  private count = 0;
  private floor = -Infinity;
  private prunedAt = -Infinity;

  constructor(options: ReplayStoreOptions = {}) {
    this.windowSeconds = options.windowSeconds ?? NONCE_WINDOW_SECONDS;
    this.maxEntries = Math.max(1, options.maxEntries ?? 100_000);
    if (options.notBeforeSeconds !== undefined) this.floor = options.notBeforeSeconds - 1;
  }

  /** Number of remembered credentials. */
  get size(): number {
    return this.count;
  }

  /**
   * True (and remembered) when `key` with nonce time `nonceSeconds` was not seen before; false for a
   * replay, or a nonce at or below the eviction floor.
   */
  useOnce(key: string, nonceSeconds: number, nowSeconds: number): boolean {
    this.prune(nowSeconds);
    if (nonceSeconds <= this.floor) return false;
    let bucket = this.buckets.get(nonceSeconds);
    if (bucket?.has(key)) return false;
    while (this.count >= this.maxEntries) this.evictOldest();
    if (nonceSeconds <= this.floor) return false;
    bucket = this.buckets.get(nonceSeconds);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(nonceSeconds, bucket);
    }
    bucket.add(key);
    this.count++;
    return true;
  }

  private prune(nowSeconds: number): void {
    if (nowSeconds === this.prunedAt) return; // at most one sweep per second
    this.prunedAt = nowSeconds;
    const limit = nowSeconds - this.windowSeconds;
    for (const [t, b] of this.buckets) {
      if (t <= limit) {
        this.count -= b.size;
        this.buckets.delete(t);
      }
    }
  }

  private evictOldest(): void {
    let oldest = Infinity;
    for (const t of this.buckets.keys()) if (t < oldest) oldest = t;
    if (oldest === Infinity) return;
    const b = this.buckets.get(oldest);
    this.count -= b ? b.size : 0;
    this.buckets.delete(oldest);
    this.floor = Math.max(this.floor, oldest);
  }
}

// ---------------------------------------------------------------------------------------------- common

/** The device's digest settings: `rpc.auth_domain` and `rpc.auth_algo`. */
export interface DigestRealm {
  realm: string;
  algorithm: DigestAlgorithm;
}

/** `rpc.auth_algo`: 0 = MD5, anything else = SHA-256 (as the firmware maps it). */
export function algorithmFromConfig(authAlgo: number): DigestAlgorithm {
  return authAlgo === 0 ? "MD5" : "SHA-256";
}

/** Why a credential was not accepted (for the debug log; never sent to the peer). */
export type AuthRefusal = "malformed" | "stale nonce" | "unknown user or wrong password" | "replayed";

export type AuthResult = { ok: true; user: string } | { ok: false; reason: AuthRefusal; user?: string };

function isFresh(nonce: number, now: number): boolean {
  return Number.isSafeInteger(nonce) && now >= nonce && now - nonce < NONCE_WINDOW_SECONDS;
}

/** Constant-time comparison of the expected and received responses (hex; case-insensitive). */
function responseMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected, "latin1");
  const b = Buffer.from(received.toLowerCase(), "latin1");
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** An HA1 of the right length that no password produces in practice: unknown users cost the same work. */
function dummyHa1(algorithm: DigestAlgorithm): string {
  return "0".repeat(algorithm === "MD5" ? 32 : 64);
}

function checkResponse(
  db: Htdigest,
  cfg: DigestRealm,
  user: string,
  inputs: { nonce: string; nc: string; cnonce: string; qop: string; method: string; uri: string },
  response: string,
): boolean {
  const known = lookupHa1(db, user, cfg.realm, cfg.algorithm);
  const expected = digestResponse({ algorithm: cfg.algorithm, ha1: known ?? dummyHa1(cfg.algorithm), ...inputs });
  return responseMatches(expected, response) && known !== undefined;
}

function replayKey(parts: string[]): string {
  return parts.map((p) => p.replace(/\\/g, "\\\\").replace(/\u0000/g, "\\0")).join("\u0000");
}

function clip(s: string): string {
  return s.length > 64 ? s.slice(0, 64) + "…" : s;
}

// ---------------------------------------------------------------------------------------------- in-frame

/** A number or a string as the firmware takes a JSON token's text. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

/**
 * Verify an in-frame `auth` object (spec §4.3). `malformed` (answer 400 "bad request"): not an object, a
 * missing or non-scalar realm/username/nonce/cnonce/response, an algorithm other than the configured one,
 * or another realm. Every other failure means "not authenticated" (answer 401 with a new challenge).
 */
export function verifyFrameAuth(
  auth: unknown,
  cfg: DigestRealm,
  db: Htdigest,
  replay: ReplayStore,
  nowSeconds: number,
): AuthResult {
  if (auth === null || typeof auth !== "object" || Array.isArray(auth)) return { ok: false, reason: "malformed" };
  const a = auth as Record<string, unknown>;
  const realm = typeof a.realm === "string" ? a.realm : undefined;
  const user = typeof a.username === "string" && a.username !== "" ? a.username : undefined;
  const nonce = tokenText(a.nonce);
  const cnonce = tokenText(a.cnonce);
  const response = typeof a.response === "string" && a.response !== "" ? a.response : undefined;
  if (realm === undefined || user === undefined || nonce === undefined || cnonce === undefined || response === undefined) {
    return { ok: false, reason: "malformed", user: user && clip(user) };
  }
  const algorithm = normaliseAlgorithm(typeof a.algorithm === "string" ? a.algorithm : a.algorithm === undefined ? undefined : "?");
  if (algorithm !== cfg.algorithm || realm !== cfg.realm) return { ok: false, reason: "malformed", user: clip(user) };
  const nonceSeconds = /^[0-9]{1,15}$/.test(nonce) ? Number(nonce) : NaN;
  if (!isFresh(nonceSeconds, nowSeconds)) return { ok: false, reason: "stale nonce", user: clip(user) };
  const inputs = { nonce, nc: "1", cnonce, qop: "auth", method: "dummy_method", uri: "dummy_uri" };
  if (!checkResponse(db, cfg, user, inputs, response)) {
    return { ok: false, reason: "unknown user or wrong password", user: clip(user) };
  }
  if (!replay.useOnce(replayKey(["frame", user, realm, nonce, cnonce]), nonceSeconds, nowSeconds)) {
    return { ok: false, reason: "replayed", user: clip(user) };
  }
  return { ok: true, user };
}

/**
 * The 401 error message that asks for in-frame digest (spec §4.2 step 5): a JSON string of
 * `{"auth_type":"digest","nonce":<unix seconds>,"nc":1,"realm":..,"algorithm":"MD5"|"SHA-256"}`.
 */
export function frameChallengeMessage(cfg: DigestRealm, nowSeconds: number): string {
  return JSON.stringify({ auth_type: "digest", nonce: Math.floor(nowSeconds), nc: 1, realm: cfg.realm, algorithm: cfg.algorithm });
}

// ---------------------------------------------------------------------------------------------- HTTP

/** `WWW-Authenticate` value for an HTTP 401 (spec §4.4): nonce = unix seconds in lowercase hex. */
export function httpChallengeHeader(cfg: DigestRealm, nowSeconds: number): string {
  const realm = cfg.realm.replace(/["\\]/g, "\\$&");
  return `Digest qop="auth", realm="${realm}", nonce="${Math.floor(nowSeconds).toString(16)}", algorithm=${cfg.algorithm}`;
}

/**
 * Verify an HTTP `Authorization: Digest ...` header (RFC 7616 with qop=auth, as mos and curl send it) for
 * a request `method uri`. Requires username, realm (= the configured one), nonce (hex unix seconds, fresh),
 * uri (= the request's), qop=auth, nc, cnonce, response; an algorithm other than the configured one fails.
 */
export function verifyHttpAuthorization(
  authorization: string,
  method: string,
  uri: string,
  cfg: DigestRealm,
  db: Htdigest,
  replay: ReplayStore,
  nowSeconds: number,
): AuthResult {
  const h = parseDigestHeader(authorization);
  if (!h) return { ok: false, reason: "malformed" };
  const user = h.username;
  const { realm, nonce, nc, cnonce, response, qop } = h;
  if (!user || realm === undefined || !nonce || !nc || !cnonce || !response || h.uri === undefined) {
    return { ok: false, reason: "malformed", user: user && clip(user) };
  }
  if (normaliseAlgorithm(h.algorithm) !== cfg.algorithm || realm !== cfg.realm || qop !== "auth" || h.uri !== uri) {
    return { ok: false, reason: "malformed", user: clip(user) };
  }
  if (!/^[0-9a-fA-F]{1,8}$/.test(nc)) return { ok: false, reason: "malformed", user: clip(user) };
  const nonceSeconds = /^[0-9a-fA-F]{1,12}$/.test(nonce) ? parseInt(nonce, 16) : NaN;
  if (!isFresh(nonceSeconds, nowSeconds)) return { ok: false, reason: "stale nonce", user: clip(user) };
  if (!checkResponse(db, cfg, user, { nonce, nc, cnonce, qop, method, uri }, response)) {
    return { ok: false, reason: "unknown user or wrong password", user: clip(user) };
  }
  if (!replay.useOnce(replayKey(["http", user, realm, nonce, cnonce, nc.toLowerCase(), method, uri]), nonceSeconds, nowSeconds)) {
    return { ok: false, reason: "replayed", user: clip(user) };
  }
  return { ok: true, user };
}
