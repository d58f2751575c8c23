/**
 * The per-identity MQTT policy of the remos broker, as pure functions (no broker, no sockets), so the
 * embedded broker and the mosquitto ACL generator state the same rules and tests can check them alone.
 *
 * Identity = the client certificate's CN (which must equal the MQTT client id) and role (its OU).
 * Topics follow spec §2.4: a request for device D goes to `D/rpc` (or `D/rpc/<Method>`); the reply goes
 * to `<src>/rpc` where src = `D/rpc-resp/<clientId>`, i.e. under the DEVICE's own prefix.
 *
 *   device D    publish    D/<anything>                (replies, logs, its own events)
 *               subscribe  D/rpc, D/rpc/#  (and narrower filters under D/rpc/)
 *   operator O  publish    +/rpc, +/rpc/#              (requests to any device)
 *               subscribe  +/rpc-resp/O/rpc, +/log     (its own replies; device consoles)
 *   anyone else nothing.
 *
 * Checks are string compares on a few levels: cheap enough for 10,000 clients.
 */
import type { CertRole } from "../pki/x509.js";

export interface Identity {
  cn: string;
  role: CertRole;
}

function hasWildcard(s: string): boolean {
  return s.includes("+") || s.includes("#");
}

/** One topic level that names a device: non-empty, no wildcard, no `$` system prefix. */
function isDeviceLevel(level: string): boolean {
  return level.length > 0 && !hasWildcard(level) && !level.startsWith("$");
}

export function mayPublish(id: Identity, topic: string): boolean {
  if (topic.length === 0 || hasWildcard(topic)) return false;
  if (id.role === "device") return topic.length > id.cn.length + 1 && topic.startsWith(id.cn + "/");
  if (id.role === "operator") {
    const levels = topic.split("/");
    return levels.length >= 2 && isDeviceLevel(levels[0]) && levels[1] === "rpc" && (levels.length === 2 || levels[2] !== "");
  }
  return false;
}

/** Is the requested filter within `pattern`? Both are MQTT filters; `+` in the pattern covers any one level. */
function covered(pattern: string[], filter: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === "#") return true; // covers the rest, including a requested `#`
    if (i >= filter.length) return false;
    const f = filter[i];
    if (p === "+") {
      if (f === "#" || (f !== "+" && !isDeviceLevel(f))) return false;
      continue;
    }
    if (f !== p) return false;
  }
  return filter.length === pattern.length;
}

export function maySubscribe(id: Identity, filter: string): boolean {
  if (filter.length === 0) return false;
  const levels = filter.split("/");
  if (id.role === "device") {
    return covered([id.cn, "rpc"], levels) || covered([id.cn, "rpc", "#"], levels);
  }
  if (id.role === "operator") {
    return covered(["+", "rpc-resp", id.cn, "rpc"], levels) || covered(["+", "log"], levels);
  }
  return false;
}

/** Roles that may connect to the broker at all. */
export function mayConnect(role: CertRole | undefined): role is "device" | "operator" {
  return role === "device" || role === "operator";
}
