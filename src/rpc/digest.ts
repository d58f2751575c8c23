/**
 * Digest authentication of spec §4: the in-frame `auth` object (a 401 challenge carried as a JSON string
 * in `error.message`) and HTTP Digest (RFC 2617/7616, `WWW-Authenticate: Digest`). Pure computation.
 */
import type * as Crypto from "node:crypto";

/** node:crypto, loaded the first time a digest is computed (a plain `mos call` never needs it). */
let cryptoModule: typeof Crypto | undefined;
function crypto(): typeof Crypto {
  return (cryptoModule ??= process.getBuiltinModule("node:crypto"));
}
import type { FrameAuth } from "./frame.js";

export type DigestAlgorithm = "MD5" | "SHA-256";

export interface Credentials {
  username: string;
  password: string;
}

/** The challenge a device puts in a 401 error message (spec §4.2 step 5). */
export interface FrameChallenge {
  auth_type: "digest";
  nonce: number;
  nc?: number;
  realm: string;
  algorithm?: string;
}

export function hashHex(algorithm: DigestAlgorithm, text: string): string {
  return crypto().createHash(algorithm === "SHA-256" ? "sha256" : "md5").update(text).digest("hex");
}

export function normaliseAlgorithm(a: string | undefined): DigestAlgorithm | null {
  if (a === undefined || a === "" || a.toUpperCase() === "MD5") return "MD5";
  if (a.toUpperCase() === "SHA-256") return "SHA-256";
  return null;
}

/** HA1 = H(username:realm:password), as stored in htdigest files (`user:realm:HA1`). */
export function ha1(algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hashHex(algorithm, `${username}:${realm}:${password}`);
}

export interface DigestInputs {
  algorithm: DigestAlgorithm;
  ha1: string;
  nonce: string;
  nc: string;
  cnonce: string;
  qop: string;
  method: string;
  uri: string;
}

/** response = H(HA1:nonce:nc:cnonce:qop:H(method:uri)) */
export function digestResponse(i: DigestInputs): string {
  const ha2 = hashHex(i.algorithm, `${i.method}:${i.uri}`);
  return hashHex(i.algorithm, `${i.ha1}:${i.nonce}:${i.nc}:${i.cnonce}:${i.qop}:${ha2}`);
}

/** Parse a 401 error message as an in-frame digest challenge; null when it is not one. */
export function parseFrameChallenge(message: string | undefined): FrameChallenge | null {
  if (!message) return null;
  try {
    const c = JSON.parse(message) as Partial<FrameChallenge>;
    if (c && c.auth_type === "digest" && typeof c.realm === "string" && c.nonce !== undefined) {
      return { auth_type: "digest", nonce: Number(c.nonce), realm: c.realm, nc: c.nc, algorithm: c.algorithm };
    }
  } catch {
    // not a challenge
  }
  return null;
}

/** The `auth` object mos sends back (spec §4.3): nonce and cnonce as numbers, method/uri dummies. */
export function frameAuthFor(challenge: FrameChallenge, creds: Credentials): FrameAuth | null {
  const algorithm = normaliseAlgorithm(challenge.algorithm);
  if (!algorithm) return null;
  const cnonce = crypto().randomInt(0, 2 ** 32 - 1);
  const response = digestResponse({
    algorithm,
    ha1: ha1(algorithm, creds.username, challenge.realm, creds.password),
    nonce: String(challenge.nonce),
    nc: "1",
    cnonce: String(cnonce),
    qop: "auth",
    method: "dummy_method",
    uri: "dummy_uri",
  });
  const auth: FrameAuth = { realm: challenge.realm, username: creds.username, nonce: challenge.nonce, cnonce, response };
  if (challenge.algorithm) auth.algorithm = algorithm;
  return auth;
}

/** Parse `Digest k="v", k2=v2` (WWW-Authenticate or Authorization) into a map; null if not Digest. */
export function parseDigestHeader(header: string | undefined): Record<string, string> | null {
  if (!header) return null;
  const m = /^\s*Digest\s+(.*)$/is.exec(header);
  if (!m) return null;
  const out: Record<string, string> = {};
  const re = /([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[1])) !== null) out[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
  return out;
}

/** The `Authorization: Digest ...` header answering a `WWW-Authenticate: Digest ...` challenge. */
export function httpDigestAuthorization(
  challengeHeader: string,
  creds: Credentials,
  method: string,
  uri: string,
): string | null {
  const c = parseDigestHeader(challengeHeader);
  if (!c || !c.nonce || c.realm === undefined) return null;
  const algorithm = normaliseAlgorithm(c.algorithm);
  if (!algorithm) return null;
  const cnonce = String(crypto().randomInt(0, 2 ** 32 - 1));
  const nc = "00000001";
  const qop = "auth";
  const response = digestResponse({
    algorithm,
    ha1: ha1(algorithm, creds.username, c.realm, creds.password),
    nonce: c.nonce,
    nc,
    cnonce,
    qop,
    method,
    uri,
  });
  const parts = [
    `username="${creds.username}"`,
    `realm="${c.realm}"`,
    `uri="${uri}"`,
    `algorithm=${algorithm}`,
    `nonce="${c.nonce}"`,
    `nc=${nc}`,
    `cnonce="${cnonce}"`,
    `qop=${qop}`,
    `response="${response}"`,
  ];
  if (c.opaque) parts.push(`opaque="${c.opaque}"`);
  return "Digest " + parts.join(", ");
}

/**
 * What a transport's device end needs to do HTTP Digest (on `/rpc` and on the WS upgrade, spec §4.4):
 * verify an `Authorization` header, and produce the `WWW-Authenticate` value for a 401. The device
 * builds one from its `rpc.auth_domain` / `rpc.auth_file` config (src/rpc/auth.ts).
 */
export interface HttpDigestAuthority {
  /** The user name when `authorization` is a valid, fresh, not-replayed digest for (method, uri). */
  verify(authorization: string, method: string, uri: string): Promise<string | undefined>;
  /** The `WWW-Authenticate` header value: `Digest qop="auth", realm="...", nonce="<hex>", algorithm=MD5`. */
  challenge(): string;
}
