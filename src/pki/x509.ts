/**
 * X.509 building blocks for the local CA and provisioning: key pairs (ECDSA P-256 or RSA-2048), CSRs,
 * PEM import/export, and reading the remos identity (CN and role) out of a certificate.
 *
 * The role of a certificate is its subject OU: `OU=device`, `OU=operator` or `OU=server`. The CN is the
 * identity: a device's `device.id` (= its MQTT client id), an operator's MQTT client id.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from "node:crypto";
import { UsageError } from "../errors.js";

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const subtle = webcrypto.subtle;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

export type KeyType = "ECDSA" | "RSA";
export type CertRole = "device" | "operator" | "server";
export const CERT_ROLES: readonly CertRole[] = ["device", "operator", "server"];

const EC_GEN = { name: "ECDSA", namedCurve: "P-256" } as const;
const RSA_GEN = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" } as const;

/** The signature algorithm a key of this type signs with. */
export function signingAlgorithm(type: KeyType): { name: string; hash: string } {
  return type === "ECDSA" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

export function parseKeyType(value: string | undefined): KeyType {
  const v = (value ?? "ECDSA").toUpperCase();
  if (v === "ECDSA" || v === "EC") return "ECDSA";
  if (v === "RSA") return "RSA";
  throw new UsageError(`unknown key type "${value}" (ECDSA or RSA)`);
}

export async function generateKeyPair(type: KeyType): Promise<CryptoKeyPair> {
  const alg = type === "ECDSA" ? EC_GEN : RSA_GEN;
  return (await subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** Import a PKCS#8 (or SEC1/PKCS#1) PEM private key for signing; tells which type it is. */
export async function importPrivateKey(pem: string): Promise<{ key: CryptoKey; type: KeyType }> {
  const nodeKey = createPrivateKey(pem);
  const type: KeyType = nodeKey.asymmetricKeyType === "rsa" ? "RSA" : "ECDSA";
  if (nodeKey.asymmetricKeyType !== "rsa" && nodeKey.asymmetricKeyType !== "ec") {
    throw new UsageError(`unsupported key type ${nodeKey.asymmetricKeyType ?? "?"} (ECDSA P-256 or RSA)`);
  }
  const der = nodeKey.export({ format: "der", type: "pkcs8" });
  const alg = type === "ECDSA" ? EC_GEN : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const key = await subtle.importKey("pkcs8", der, alg, false, ["sign"]);
  return { key, type };
}

/** CNs become MQTT client ids and topic levels: no wildcards, no slashes, no spaces, at most 64 chars. */
const CN_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;

export function checkCn(cn: string): string {
  if (!CN_RE.test(cn)) {
    throw new UsageError(`invalid common name "${cn}": use 1-64 of A-Z a-z 0-9 _ . : @ - (it becomes an MQTT client id and topic level)`);
  }
  return cn;
}

/** Subject DN for a remos certificate. */
export function subjectFor(cn: string, role?: CertRole): string {
  checkCn(cn);
  return role ? `CN=${cn}, OU=${role}, O=remos` : `CN=${cn}`;
}

export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
}

/** A fresh key pair and a CSR for it with Subject `CN=<cn>` only (as mos builds it, spec §5.4 step 5). */
export async function generateKeyAndCsr(cn: string, type: KeyType = "ECDSA"): Promise<KeyAndCsr> {
  checkCn(cn);
  const keys = await generateKeyPair(type);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${cn}`,
    keys,
    signingAlgorithm: signingAlgorithm(type),
  });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: csr.toString("pem") };
}

export interface CertIdentity {
  cn: string;
  role: CertRole | undefined;
  serial: string;
  notAfter: Date;
}

function roleOf(ou: string | undefined): CertRole | undefined {
  return ou && (CERT_ROLES as readonly string[]).includes(ou) ? (ou as CertRole) : undefined;
}

/** CN, role (OU), serial and expiry of a PEM certificate (node's parser: fast, no webcrypto). */
export function certIdentity(pem: string | Buffer): CertIdentity {
  const c = new NodeX509(pem);
  const fields = parseDn(c.subject);
  return { cn: fields.CN ?? "", role: roleOf(fields.OU), serial: c.serialNumber.toLowerCase(), notAfter: new Date(c.validTo) };
}

/** Node prints subjects as `CN=x\nOU=y` lines. */
function parseDn(subject: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of subject.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0 && out[line.slice(0, i)] === undefined) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** Role from the `subject` object node's TLS gives for a peer certificate. */
export function roleFromPeerSubject(subject: { OU?: string | string[] } | undefined): CertRole | undefined {
  const ou = subject?.OU;
  return roleOf(Array.isArray(ou) ? ou[0] : ou);
}
