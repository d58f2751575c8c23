/**
 * The RPC access control list of spec §4.2 (Mongoose OS `rpc.acl` / `rpc.acl_file`). Pure: no files.
 *
 * An ACL is a JSON array of entries `{"method": <glob>, "ch_type": <channel type>?, "acl": <user list>}`.
 * The first entry whose `method` glob matches the whole method name (case-insensitive, rpc/glob.ts) and
 * whose `ch_type`, when present, equals the channel type exactly (`UART`, `HTTP`, `WS_in`, `MQTT`...)
 * decides. As in the firmware, an entry may leave out `method` when it has a `ch_type` (it then matches
 * every method on that channel type). No matching entry ⇒ deny (403).
 *
 * The `acl` user list: `*` or `+*` ⇒ allowed without authentication; `-*` ⇒ denied; anything else needs
 * an authenticated user, checked against the comma list in order as Mongoose's `mgos_conf_check_access_n`
 * does: each item is a glob with an optional `+` (allow, the default) or `-` (deny) prefix, the first item
 * that matches the user name decides, none ⇒ deny. Like the firmware, user globs are case-insensitive.
 * remos trims blanks around items (`"+admin, guest"` works; the firmware would not match ` guest`).
 *
 * Parsing is strict where the firmware is lenient (it logs and skips bad entries, or stops at a non-object
 * element): a malformed ACL is an AclSyntaxError at load time, so the device refuses every request (fails
 * closed, see device/security.ts) instead of silently applying half a policy.
 */
import { UsageError } from "../errors.js";
import type { ChannelType } from "./channel.js";
import { globMatch } from "./glob.js";

/** One ACL entry. At least one of `method` / `chType` is present. */
export interface AclEntry {
  method?: string;
  chType?: string;
  acl: string;
}

/** A parsed ACL: the entries in order. */
export interface Acl {
  entries: AclEntry[];
}

/** The ACL text is not a valid ACL. Code ERR_USAGE: a configuration mistake the user must fix. */
export class AclSyntaxError extends UsageError {
  constructor(message: string) {
    super(`invalid RPC ACL: ${message}`);
    this.name = "AclSyntaxError";
  }
}

/** Where the ACL comes from, from the `rpc.acl` and `rpc.acl_file` config values. */
export type AclSource =
  | { kind: "none" }
  | { kind: "inline"; text: string }
  | { kind: "file"; name: string }
  | { kind: "conflict" };

/**
 * `rpc.acl` holds the JSON inline or `@filename`; the deprecated `rpc.acl_file` holds a file name.
 * Both empty ⇒ no ACL (everything allowed); both set ⇒ a conflict (the firmware then refuses everything).
 */
export function aclSource(acl: string | undefined, aclFile: string | undefined): AclSource {
  const a = acl ?? "";
  const f = aclFile ?? "";
  if (a === "" && f === "") return { kind: "none" };
  if (a !== "" && f !== "") return { kind: "conflict" };
  if (f !== "") return { kind: "file", name: f };
  if (a.startsWith("@")) return { kind: "file", name: a.slice(1) };
  return { kind: "inline", text: a };
}

/** Parse ACL JSON text. Throws AclSyntaxError (and nothing else) on anything that is not a valid ACL. */
export function parseAcl(text: string): Acl {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AclSyntaxError(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!Array.isArray(value)) throw new AclSyntaxError("the root must be a JSON array of {method, ch_type?, acl} objects");
  const entries: AclEntry[] = [];
  value.forEach((item: unknown, i: number) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw new AclSyntaxError(`entry ${i} is not an object`);
    }
    const o = item as Record<string, unknown>;
    const entry: AclEntry = { acl: "" };
    if (typeof o.acl !== "string" || o.acl.trim() === "") throw new AclSyntaxError(`entry ${i}: "acl" must be a non-empty string`);
    entry.acl = o.acl.trim();
    if (o.method !== undefined) {
      if (typeof o.method !== "string" || o.method === "") throw new AclSyntaxError(`entry ${i}: "method" must be a non-empty string`);
      entry.method = o.method;
    }
    if (o.ch_type !== undefined) {
      if (typeof o.ch_type !== "string" || o.ch_type === "") throw new AclSyntaxError(`entry ${i}: "ch_type" must be a non-empty string`);
      entry.chType = o.ch_type;
    }
    if (entry.method === undefined && entry.chType === undefined) {
      throw new AclSyntaxError(`entry ${i}: needs "method" or "ch_type"`);
    }
    entries.push(entry);
  });
  return { entries };
}

/** The first entry that applies to a method called on a channel type; undefined when none does. */
export function findAclEntry(acl: Acl, method: string, channelType: ChannelType | string): AclEntry | undefined {
  return acl.entries.find(
    (e) => (e.chType === undefined || e.chType === channelType) && (e.method === undefined || globMatch(e.method, method)),
  );
}

/** What the ACL says about a request before knowing who sent it. */
export type AclDecision =
  /** Open entry (`*` / `+*`): no authentication needed. */
  | { kind: "allow"; entry: AclEntry }
  /** `-*` entry, or no entry matched. */
  | { kind: "deny"; entry?: AclEntry }
  /** A user list: authenticate, then `userAllowed(user, entry.acl)`. */
  | { kind: "auth"; entry: AclEntry };

export function aclDecision(acl: Acl, method: string, channelType: ChannelType | string): AclDecision {
  const entry = findAclEntry(acl, method, channelType);
  if (!entry) return { kind: "deny" };
  if (entry.acl === "*" || entry.acl === "+*") return { kind: "allow", entry };
  if (entry.acl === "-*") return { kind: "deny", entry };
  return { kind: "auth", entry };
}

/**
 * Is `user` allowed by the user list `list` (`mgos_conf_check_access_n`)? Items in order, first match wins,
 * `-` denies, `+` or no prefix allows, no match denies; empty items are skipped.
 */
export function userAllowed(user: string, list: string): boolean {
  if (user === "") return false;
  for (const raw of list.split(",")) {
    let item = raw.trim();
    if (item === "") continue;
    const allow = item[0] !== "-";
    if (item[0] === "-" || item[0] === "+") item = item.slice(1);
    if (item === "") continue;
    if (globMatch(item, user)) return allow;
  }
  return false;
}
