/**
 * Test certificates made on the fly with @peculiar/x509 (ECDSA P-256): a CA, server certificates for
 * loopback (SAN localhost, 127.0.0.1, ::1), client certificates, expired ones, and a CRL. Written to a
 * temp directory as PEM files readable by mosquitto (mode 0644 for certs; keys 0600 unless asked).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface TestCa {
  name: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  certPem: string;
  keyPem: string;
}

export interface TestCert {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  serial: string;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

let serialCounter = Date.now();
function nextSerial(): string {
  serialCounter++;
  return serialCounter.toString(16).padStart(16, "0");
}

export async function makeCa(name = "remos test CA"): Promise<TestCa> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 365 * 86400_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { name, cert, keys, certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey) };
}

export interface IssueOptions {
  cn: string;
  /** "server" adds SANs for loopback and serverAuth; "client" adds clientAuth. Default both. */
  usage?: "server" | "client" | "both";
  dnsNames?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

export async function issueCert(ca: TestCa, o: IssueOptions): Promise<TestCert> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const usage = o.usage ?? "both";
  const eku: string[] = [];
  if (usage !== "client") eku.push(x509.ExtendedKeyUsage.serverAuth);
  if (usage !== "server") eku.push(x509.ExtendedKeyUsage.clientAuth);
  const sans: x509.JsonGeneralName[] = [];
  if (usage !== "client") {
    for (const d of o.dnsNames ?? ["localhost"]) sans.push({ type: "dns", value: d });
    for (const ip of o.ips ?? ["127.0.0.1", "::1"]) sans.push({ type: "ip", value: ip });
  }
  const serial = nextSerial();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension(eku),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
  ];
  if (sans.length) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${o.cn}`,
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(now - 3600_000),
    notAfter: o.notAfter ?? new Date(now + 30 * 86400_000),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return { cert, certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey), serial };
}

/** A CRL (PEM label `X509 CRL`, as openssl and mosquitto expect) revoking the given serials. */
export async function makeCrl(ca: TestCa, revokedSerials: string[]): Promise<string> {
  const now = Date.now();
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 7 * 86400_000),
    entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(now - 60_000) })),
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
  });
  return x509.PemConverter.encode(crl.rawData, "X509 CRL");
}

/** A temp directory (world-readable, so mosquitto can read it) for PEM files. */
export function tempPemDir(prefix = "remos-certs-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Write a PEM file; mode 0644 so a broker running as another user can read it. */
export function writePem(dir: string, name: string, pem: string, mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, pem, { mode });
  chmodSync(p, mode);
  return p;
}
