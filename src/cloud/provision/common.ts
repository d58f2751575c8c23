/**
 * Steps shared by `mos iot-setup` and `mos aws-iot-setup` (spec §5.4): read the device (Sys.GetInfo and
 * Config.Get, with 3 attempts each), get a key pair + CSR (on the device when it offers
 * Crypto.GenerateCSR, else on the host), upload files with the FS methods, and apply the MQTT settings
 * with the mos config-set flow (Config.Set save + reboot).
 */
import type { Device } from "../../api/device.js";
import { DeviceError, UsageError } from "../../errors.js";
import { debug } from "../../log.js";
import { CSR_METHOD } from "../../device/services/csr.js";
import { type KeyType, generateKeyAndCsr } from "../../pki/x509.js";

export type StepLogger = (message: string) => void;

export interface DeviceFacts {
  id: string;
  arch: string;
  app: string;
  config: Record<string, unknown>;
}

async function attempts<T>(what: string, n: number, fn: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < n; i++) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      if (e instanceof DeviceError) break; // the device answered: retrying will not change it
      debug("provision", `${what} failed, retrying`, { attempt: i + 1 });
    }
  }
  throw last;
}

/** Sys.GetInfo + Config.Get; the device must have an `mqtt` config section. */
export async function readDevice(device: Device, timeoutMs: number): Promise<DeviceFacts> {
  const info = await attempts("Sys.GetInfo", 3, () => device.sys.getInfo({ timeout: timeoutMs }));
  const config = await attempts("Config.Get", 3, () => device.config.get<Record<string, unknown>>(undefined, { timeout: timeoutMs }));
  if (!config || typeof config !== "object" || typeof config.mqtt !== "object" || config.mqtt === null) {
    throw new UsageError("the device has no mqtt config section (is the mqtt library in its firmware?)");
  }
  const dev = config.device as { id?: unknown } | undefined;
  const id = typeof dev?.id === "string" && dev.id ? dev.id : info.id;
  return { id, arch: info.arch ?? "", app: (info as { app?: string }).app ?? "", config };
}

export interface KeyMaterial {
  csrPem: string;
  /** The key when it was generated on the host (it must then be uploaded); undefined when made on the device. */
  keyPem?: string;
  generatedOn: "device" | "host";
}

/** A CSR for `cn`: from the device's Crypto.GenerateCSR (key stays on the device as `keyFile`), else from the host. */
export async function obtainCsr(device: Device, cn: string, keyFile: string, keyType: KeyType, timeoutMs: number): Promise<KeyMaterial> {
  let methods: string[] = [];
  try {
    methods = await device.call<string[]>("RPC.List", undefined, { timeout: timeoutMs });
  } catch (e) {
    debug("provision", "RPC.List failed; generating the key on the host", { error: (e as Error).message });
  }
  if (Array.isArray(methods) && methods.includes(CSR_METHOD)) {
    const r = await device.call<{ csr?: unknown }>(CSR_METHOD, { cn, key_file: keyFile, key_type: keyType }, { timeout: Math.max(timeoutMs, 30_000) });
    if (typeof r?.csr !== "string") throw new UsageError(`${CSR_METHOD} returned no csr`);
    return { csrPem: r.csr, generatedOn: "device" };
  }
  const { keyPem, csrPem } = await generateKeyAndCsr(cn, keyType);
  return { csrPem, keyPem, generatedOn: "host" };
}

/** Upload a file with FS.Put (chunked, retried, verified by the api layer). */
export async function uploadFile(device: Device, name: string, content: string, timeoutMs: number): Promise<void> {
  await device.fs.put(name, content, { timeoutMs });
}

/** mos config-set: typed by the device's current values, Config.Set with save + reboot. */
export async function setConfigAndReboot(device: Device, values: Record<string, string>, timeoutMs: number, reboot = true): Promise<void> {
  await device.config.setValues(values, { save: true, reboot, timeout: timeoutMs });
}

/** The first 16 characters of the CN, for file names (as mos's `aws-<cn16>.crt.pem`). */
export function short(cn: string): string {
  return cn.slice(0, 16);
}
