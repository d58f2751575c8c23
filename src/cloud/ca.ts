/**
 * The local certificate authority of `mos ca`: a self-signed CA (ECDSA P-256 by default, RSA-2048 on
 * request) that issues device, operator and server certificates from CSRs and keeps a CRL.
 *
 * Directory layout (default `~/.remos/ca`, mode 0700):
 *   ca.crt.pem     the CA certificate (0644)
 *   ca.key.pem     the CA private key (0600)
 *   index.json     every certificate issued: serial, CN, role, validity, revocation time
 *   crl.pem        the current CRL, PEM label `X509 CRL` (openssl, mosquitto and node read it)
 *   certs/<serial>.crt.pem  each issued certificate
 * Every write is atomic (temp + fsync + rename). The CRL is re-signed on every revoke and whenever
 * `refreshCrl()` runs (the broker does at start), valid for CRL_DAYS.
 */
import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../device/atomic.js";
import { IoError, UsageError } from "../errors.js";
import { debug } from "../log.js";
import {
  type CertRole,
  type CryptoKey,
  type KeyType,
  checkCn,
  generateKeyPair,
  importPrivateKey,
  privateKeyPem,
  signingAlgorithm,
  subjectFor,
  x509,
} from "../pki/x509.js";

export const CRL_DAYS = 365;
const DAY = 86_400_000;

export function defaultCaDir(): string {
  return process.env.REMOS_CA_DIR || join(homedir(), ".remos", "ca");
}

export interface IssuedRecord {
  serial: string;
  cn: string;
  role: CertRole;
  notBefore: string;
  notAfter: string;
  /** ISO time of revocation, when revoked. */
  revoked?: string;
}

interface IndexFile {
  version: 1;
  certs: IssuedRecord[];
}

export interface CaInitOptions {
  /** CA subject CN (default "remos local CA"). */
  cn?: string;
  keyType?: KeyType;
  /** Validity in days (default 3650). */
  days?: number;
}

export interface IssueOptions {
  role: CertRole;
  /** Validity in days (default 825). */
  days?: number;
  /** Server certificates: DNS names and IPs for the SAN (default localhost, 127.0.0.1, ::1). */
  dnsNames?: string[];
  ips?: string[];
  /** Override the CN of the CSR (must then be given); otherwise the CSR's CN is used. */
  cn?: string;
  /** Backdate/forward-date (tests of expired certificates). */
  notBefore?: Date;
  notAfter?: Date;
}

export interface IssuedCert {
  serial: string;
  cn: string;
  role: CertRole;
  certPem: string;
}

function newSerial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive
  if (b[0] === 0) b[0] = 1; // no leading zero byte, so the hex form is stable
  return b.toString("hex");
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export class LocalCa {
  readonly dir: string;
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  private readonly key: CryptoKey;
  private readonly keyType: KeyType;
  private index: IndexFile;
  private crl: string;

  private constructor(dir: string, certPem: string, key: CryptoKey, keyType: KeyType, index: IndexFile, crl: string) {
    this.dir = dir;
    this.certPem = certPem;
    this.cert = new x509.X509Certificate(certPem);
    this.key = key;
    this.keyType = keyType;
    this.index = index;
    this.crl = crl;
  }

  get caCertFile(): string {
    return join(this.dir, "ca.crt.pem");
  }
  get crlFile(): string {
    return join(this.dir, "crl.pem");
  }
  get crlPem(): string {
    return this.crl;
  }

  static async exists(dir: string): Promise<boolean> {
    return exists(join(dir, "ca.key.pem"));
  }

  /** Create a new CA in `dir`; refuses to overwrite an existing one. */
  static async init(dir: string, options: CaInitOptions = {}): Promise<LocalCa> {
    if (await LocalCa.exists(dir)) throw new UsageError(`a CA already exists in ${dir} (remove it first to start over)`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    await mkdir(join(dir, "certs"), { recursive: true, mode: 0o700 });
    const keyType = options.keyType ?? "ECDSA";
    const keys = await generateKeyPair(keyType);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: `CN=${options.cn ?? "remos local CA"}, O=remos`,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + (options.days ?? 3650) * DAY),
      keys,
      signingAlgorithm: signingAlgorithm(keyType),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    await writeFileAtomic(join(dir, "ca.key.pem"), await privateKeyPem(keys.privateKey), 0o600);
    await writeFileAtomic(join(dir, "ca.crt.pem"), cert.toString("pem"), 0o644);
    const index: IndexFile = { version: 1, certs: [] };
    await writeFileAtomic(join(dir, "index.json"), JSON.stringify(index, null, 2) + "\n", 0o644);
    const ca = await LocalCa.open(dir);
    debug("ca", "CA created", { dir, keyType });
    return ca;
  }

  /** Open the CA in `dir` (re-signs the CRL when it is missing). */
  static async open(dir: string): Promise<LocalCa> {
    let certPem: string, keyPem: string, index: IndexFile;
    try {
      certPem = await readFile(join(dir, "ca.crt.pem"), "utf8");
      keyPem = await readFile(join(dir, "ca.key.pem"), "utf8");
      index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as IndexFile;
    } catch (e) {
      throw new IoError(`no usable CA in ${dir}: ${(e as Error).message} (create one with: mos ca init --ca-dir ${dir})`);
    }
    if (!index || !Array.isArray(index.certs)) throw new IoError(`${join(dir, "index.json")} is corrupt`);
    const { key, type } = await importPrivateKey(keyPem);
    let crl = "";
    try {
      crl = await readFile(join(dir, "crl.pem"), "utf8");
    } catch {
      // made below
    }
    const ca = new LocalCa(dir, certPem, key, type, index, crl);
    if (!crl) await ca.refreshCrl();
    return ca;
  }

  /** Open the CA in `dir`, creating it first when there is none. */
  static async openOrInit(dir: string, options: CaInitOptions = {}): Promise<LocalCa> {
    return (await LocalCa.exists(dir)) ? LocalCa.open(dir) : LocalCa.init(dir, options);
  }

  list(): IssuedRecord[] {
    return this.index.certs.map((c) => ({ ...c }));
  }

  /** Issue a certificate for the public key in a PEM CSR (its signature is checked). */
  async issueFromCsr(csrPem: string, options: IssueOptions): Promise<IssuedCert> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (e) {
      throw new UsageError(`not a PEM certificate request: ${(e as Error).message}`);
    }
    if (!(await csr.verify())) throw new UsageError("the certificate request's signature does not verify");
    const csrCn = csr.subjectName.getField("CN")[0];
    const cn = options.cn ?? csrCn;
    if (!cn) throw new UsageError("the certificate request has no CN; give one");
    if (options.cn && csrCn && csrCn !== options.cn) throw new UsageError(`the request is for CN "${csrCn}", not "${options.cn}"`);
    return this.issue(cn, csr.publicKey, options);
  }

  /** Generate a key pair here and issue a certificate for it (operator and server certificates). */
  async issueWithKey(cn: string, options: IssueOptions & { keyType?: KeyType }): Promise<IssuedCert & { keyPem: string }> {
    const keys = await generateKeyPair(options.keyType ?? "ECDSA");
    const issued = await this.issue(cn, keys.publicKey, options);
    return { ...issued, keyPem: await privateKeyPem(keys.privateKey) };
  }

  private async issue(cn: string, publicKey: x509.PublicKey | CryptoKey, o: IssueOptions): Promise<IssuedCert> {
    checkCn(cn);
    const clash = this.index.certs.find((c) => c.cn === cn && !c.revoked && c.role !== o.role);
    if (clash) throw new UsageError(`CN "${cn}" is already a ${clash.role} (serial ${clash.serial}); one identity, one role`);
    const now = Date.now();
    const notBefore = o.notBefore ?? new Date(now - 3600_000);
    const notAfter = o.notAfter ?? new Date(now + (o.days ?? 825) * DAY);
    const serial = newSerial();
    const eku =
      o.role === "server" ? [x509.ExtendedKeyUsage.serverAuth] : [x509.ExtendedKeyUsage.clientAuth];
    // digitalSignature for (EC)DHE, keyEncipherment for RSA key exchange, keyAgreement for ECDH.
    const usage = x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement;
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usage, true),
      new x509.ExtendedKeyUsageExtension(eku),
      await x509.AuthorityKeyIdentifierExtension.create(this.cert),
    ];
    if (o.role === "server") {
      const sans: x509.JsonGeneralName[] = [];
      for (const d of o.dnsNames ?? ["localhost"]) sans.push({ type: "dns", value: d });
      for (const ip of o.ips ?? ["127.0.0.1", "::1"]) sans.push({ type: "ip", value: ip });
      extensions.push(new x509.SubjectAlternativeNameExtension(sans));
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: subjectFor(cn, o.role),
      issuer: this.cert.subject,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.key,
      signingAlgorithm: signingAlgorithm(this.keyType),
      extensions,
    });
    const certPem = cert.toString("pem");
    await mkdir(join(this.dir, "certs"), { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.dir, "certs", `${serial}.crt.pem`), certPem, 0o644);
    this.index.certs.push({ serial, cn, role: o.role, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() });
    await this.saveIndex();
    debug("ca", "certificate issued", { serial, cn, role: o.role });
    return { serial, cn, role: o.role, certPem };
  }

  /**
   * Revoke by serial (hex) or by CN (every live certificate of that CN). Returns what was revoked and
   * re-signs the CRL.
   */
  async revoke(serialOrCn: string): Promise<IssuedRecord[]> {
    const needle = serialOrCn.toLowerCase().replace(/:/g, "");
    const hits = this.index.certs.filter((c) => !c.revoked && (c.serial === needle || c.cn === serialOrCn));
    if (hits.length === 0) throw new UsageError(`no live certificate with serial or CN "${serialOrCn}" (see mos ca list)`);
    const when = new Date().toISOString();
    for (const h of hits) h.revoked = when;
    await this.saveIndex();
    await this.refreshCrl();
    debug("ca", "certificates revoked", { serials: hits.map((h) => h.serial) });
    return hits.map((h) => ({ ...h }));
  }

  /** Re-sign the CRL (all revoked serials, valid CRL_DAYS) and write it. */
  async refreshCrl(): Promise<string> {
    const now = Date.now();
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.cert.subject,
      thisUpdate: new Date(now - 60_000),
      nextUpdate: new Date(now + CRL_DAYS * DAY),
      entries: this.index.certs
        .filter((c) => c.revoked)
        .map((c) => ({ serialNumber: c.serial, revocationDate: new Date(c.revoked as string) })),
      signingKey: this.key,
      signingAlgorithm: signingAlgorithm(this.keyType),
    });
    this.crl = x509.PemConverter.encode(crl.rawData, "X509 CRL");
    await writeFileAtomic(this.crlFile, this.crl, 0o644);
    return this.crl;
  }

  private async saveIndex(): Promise<void> {
    await writeFileAtomic(join(this.dir, "index.json"), JSON.stringify(this.index, null, 2) + "\n", 0o644);
  }
}
