/**
 * `mos iot-setup --broker mqtts://HOST:PORT`: provision a device, over whatever link reaches it now (a
 * serial cable typically), for the remos broker and the local CA:
 *   1. Sys.GetInfo + Config.Get (the device must have the mqtt library);
 *   2. a key pair and CSR (CN = device.id): made ON the device when it offers Crypto.GenerateCSR, the key
 *      never leaving it; otherwise made here and the key uploaded, as mos does;
 *   3. the certificate issued by the local CA (role device);
 *   4. certificate (and key, and the CA certificate) put with FS.Put;
 *   5. mqtt.server, mqtt.ssl_cert, mqtt.ssl_key, mqtt.ssl_ca_cert, mqtt.enable=true via Config.Set with
 *      save + reboot;
 *   6. an operator certificate for this CLI in the CA dir (`operator/<CN>.crt.pem`/`.key.pem`) if none;
 *   7. the `alias` line that manages the device over mqtts.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Device } from "../../api/device.js";
import { writeFileAtomic } from "../../device/atomic.js";
import { UsageError } from "../../errors.js";
import type { LocalCa } from "../ca.js";
import { type KeyType, certIdentity, checkCn } from "../../pki/x509.js";
import { type StepLogger, obtainCsr, readDevice, setConfigAndReboot, short, uploadFile } from "./common.js";

export const DEFAULT_OPERATOR_CN = "remos-operator";

export interface IotSetupOptions {
  /** `mqtts://HOST[:PORT]` of the broker the device will use (port default 8883). */
  broker: string;
  ca: LocalCa;
  /** Certificate CN (default: the device's device.id). */
  cn?: string;
  keyType?: KeyType;
  /** CN of the operator certificate made for this CLI when there is none (default remos-operator). */
  operatorCn?: string;
  /** Per-call timeout (ms). */
  timeoutMs?: number;
  /** Reboot after saving (default true). */
  reboot?: boolean;
  log?: StepLogger;
}

export interface OperatorCredentials {
  cn: string;
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface IotSetupResult {
  deviceId: string;
  keyGeneratedOn: "device" | "host";
  serial: string;
  /** `mqtts://HOST:PORT/DEVICE_ID`. */
  port: string;
  operator: OperatorCredentials;
  /** `alias mos1="mos --port ... --cert-file ... --key-file ... --ca-cert-file ..."`. */
  alias: string;
}

/** `mqtts://HOST[:PORT]` → `HOST:PORT`. */
export function brokerAddress(broker: string): { host: string; port: number; hostPort: string } {
  let u: URL;
  try {
    u = new URL(broker);
  } catch {
    throw new UsageError(`--broker "${broker}" is not a URL (e.g. mqtts://broker.example.com:8883)`);
  }
  if (u.protocol !== "mqtts:") throw new UsageError(`--broker must be an mqtts:// URL (mutual TLS), got ${u.protocol}//`);
  if (u.pathname && u.pathname !== "/") throw new UsageError("--broker takes no path (the device id is added for you)");
  const port = u.port ? Number(u.port) : 8883;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return { host, port, hostPort: `${host.includes(":") ? `[${host}]` : host}:${port}` };
}

/** The operator certificate in the CA dir, issued when missing, expired or revoked. */
export async function ensureOperator(ca: LocalCa, cn: string = DEFAULT_OPERATOR_CN): Promise<OperatorCredentials & { issued: boolean }> {
  checkCn(cn);
  const dir = join(ca.dir, "operator");
  const certFile = join(dir, `${cn}.crt.pem`);
  const keyFile = join(dir, `${cn}.key.pem`);
  const creds = { cn, certFile, keyFile, caFile: ca.caCertFile };
  if (existsSync(certFile) && existsSync(keyFile)) {
    const id = certIdentity(await readFile(certFile));
    const live = ca.list().some((c) => c.serial === id.serial && !c.revoked);
    if (live && id.notAfter.getTime() > Date.now() + 86_400_000) return { ...creds, issued: false };
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const op = await ca.issueWithKey(cn, { role: "operator" });
  await writeFileAtomic(keyFile, op.keyPem, 0o600);
  await writeFileAtomic(certFile, op.certPem, 0o644);
  return { ...creds, issued: true };
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function aliasLine(name: string, port: string, op: OperatorCredentials): string {
  const args = ["mos", "--port", port, "--cert-file", op.certFile, "--key-file", op.keyFile, "--ca-cert-file", op.caFile].map(shellQuote);
  return `alias ${name}="${args.join(" ")}"`;
}

export async function iotSetup(device: Device, o: IotSetupOptions): Promise<IotSetupResult> {
  const log = o.log ?? (() => undefined);
  const timeoutMs = o.timeoutMs ?? 20_000;
  const broker = brokerAddress(o.broker);

  log("reading the device (Sys.GetInfo, Config.Get)");
  const facts = await readDevice(device, timeoutMs);
  const cn = checkCn(o.cn ?? facts.id);
  const base = `remos-${short(cn)}`;
  const files = { cert: `${base}.crt.pem`, key: `${base}.key.pem`, ca: "remos-ca.crt.pem" };

  log(`making a key pair and a certificate request for CN=${cn}`);
  const km = await obtainCsr(device, cn, files.key, o.keyType ?? "ECDSA", timeoutMs);
  log(km.generatedOn === "device" ? `  the key was generated on the device (${files.key}, mode 0600); only the CSR left it` : "  the device cannot make keys: generated here, to be uploaded");

  const issued = await o.ca.issueFromCsr(km.csrPem, { role: "device", cn });
  log(`issued certificate serial ${issued.serial} (role device) from the local CA`);

  log(`uploading ${files.cert}${km.keyPem ? `, ${files.key}` : ""} and ${files.ca} (FS.Put)`);
  await uploadFile(device, files.cert, issued.certPem, timeoutMs);
  if (km.keyPem) await uploadFile(device, files.key, km.keyPem, timeoutMs);
  await uploadFile(device, files.ca, o.ca.certPem, timeoutMs);

  const values: Record<string, string> = {
    "mqtt.server": broker.hostPort,
    "mqtt.ssl_cert": files.cert,
    "mqtt.ssl_key": files.key,
    "mqtt.ssl_ca_cert": files.ca,
    "mqtt.enable": "true",
  };
  const devId = (facts.config.device as { id?: unknown } | undefined)?.id;
  if (devId === "" || devId === undefined) values["device.id"] = cn;
  log(`setting ${Object.keys(values).join(", ")} (Config.Set, save${o.reboot === false ? "" : " + reboot"})`);
  await setConfigAndReboot(device, values, timeoutMs, o.reboot !== false);

  const op = await ensureOperator(o.ca, o.operatorCn);
  log(op.issued ? `issued an operator certificate for this CLI: ${op.certFile}` : `using the operator certificate ${op.certFile}`);
  const port = `mqtts://${broker.hostPort}/${cn}`;
  return {
    deviceId: cn,
    keyGeneratedOn: km.generatedOn,
    serial: issued.serial,
    port,
    operator: { cn: op.cn, certFile: op.certFile, keyFile: op.keyFile, caFile: op.caFile },
    alias: aliasLine("mos1", port, op),
  };
}
