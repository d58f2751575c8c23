/**
 * The device identity kept forever in `DIR/device.json`: `{"mac":"02AABBCCDDEE","created":"<ISO>"}`.
 * Generated once with a random locally-administered unicast MAC (first octet: bit 1 set, bit 0 clear);
 * written atomically, so a crash during the first start leaves no half identity. Other fields a later
 * version adds are preserved.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { debug } from "../log.js";
import { writeFileAtomic } from "./atomic.js";

export interface DeviceIdentity {
  /** 12 uppercase hex digits, no separators (as Sys.GetInfo reports it). */
  mac: string;
  created?: string;
  [key: string]: unknown;
}

const MAC_RE = /^[0-9A-F]{12}$/;

export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] | 0x02) & 0xfe;
  return b.toString("hex").toUpperCase();
}

/** Read `DIR/device.json`, creating DIR and the identity on first use. */
export async function loadIdentity(dir: string): Promise<DeviceIdentity> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, "device.json");
  try {
    const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
    if (typeof parsed === "object" && parsed !== null) {
      const id = parsed as DeviceIdentity;
      if (typeof id.mac === "string" && MAC_RE.test(id.mac.toUpperCase())) return { ...id, mac: id.mac.toUpperCase() };
    }
    debug("device", "device.json has no valid mac: a new identity is written");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") debug("device", "device.json unreadable: a new identity is written", { error: (e as Error).message });
  }
  const identity: DeviceIdentity = { mac: randomMac(), created: new Date().toISOString() };
  await writeFileAtomic(path, JSON.stringify(identity, null, 2) + "\n");
  return identity;
}
