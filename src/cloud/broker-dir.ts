/**
 * The broker's directory (`mos broker --dir DIR`, default `~/.remos`):
 *   DIR/ca/          the local CA (src/cloud/ca.ts), unless `--ca-dir` points elsewhere
 *   DIR/broker/      what a broker process reads, world-readable so mosquitto (which drops to user
 *                    `mosquitto` when started as root) can read it:
 *     ca.crt.pem, crl.pem      copies of the CA certificate and CRL (refreshed on every start)
 *     server.crt.pem           the broker's server certificate (role server, SANs for its host names)
 *     server.key.pem           its key: mode 0600 (chowned to user mosquitto when we run as root and
 *                              that user exists, so a root-started mosquitto can still read it)
 *     server.json              the host names the certificate was issued for (reissued when they change)
 */
import { chmod, chown, mkdir, readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { writeFileAtomic } from "../device/atomic.js";
import type { BrokerTls } from "./broker.js";
import { LocalCa } from "./ca.js";
import { certIdentity } from "../pki/x509.js";

export function defaultRemosDir(): string {
  return process.env.REMOS_DIR || join(homedir(), ".remos");
}

export interface BrokerFiles {
  dir: string;
  caDir: string;
  caCertFile: string;
  crlFile: string;
  certFile: string;
  keyFile: string;
}

export interface PreparedBroker {
  ca: LocalCa;
  files: BrokerFiles;
  tls: BrokerTls;
}

export interface PrepareOptions {
  /** Where the CA lives (default DIR/ca); created when absent. */
  caDir?: string;
  /** Host names and IPs the server certificate is valid for (default localhost, 127.0.0.1, ::1, hostname). */
  hostnames?: string[];
}

/** uid/gid of user `mosquitto` when we are root and it exists. */
export function mosquittoOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("mosquitto:"));
    if (!line) return undefined;
    const [, , uid, gid] = line.split(":");
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** Make sure DIR holds a CA and a current server certificate; refresh the CRL copy. */
export async function prepareBrokerDir(dir: string, options: PrepareOptions = {}): Promise<PreparedBroker> {
  const caDir = options.caDir ?? join(dir, "ca");
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const ca = await LocalCa.openOrInit(caDir);
  await ca.refreshCrl();
  const bdir = join(dir, "broker");
  await mkdir(bdir, { recursive: true, mode: 0o755 });
  await chmod(bdir, 0o755);
  const files: BrokerFiles = {
    dir,
    caDir,
    caCertFile: join(bdir, "ca.crt.pem"),
    crlFile: join(bdir, "crl.pem"),
    certFile: join(bdir, "server.crt.pem"),
    keyFile: join(bdir, "server.key.pem"),
  };
  await writeFileAtomic(files.caCertFile, ca.certPem, 0o644);
  await writeFileAtomic(files.crlFile, ca.crlPem, 0o644);

  const names = [...new Set(options.hostnames ?? ["localhost", "127.0.0.1", "::1", hostname()])].sort();
  let certPem: string | undefined;
  let keyPem: string | undefined;
  try {
    const meta = JSON.parse(await readFile(join(bdir, "server.json"), "utf8")) as { hostnames?: string[]; caSerial?: string };
    certPem = await readFile(files.certFile, "utf8");
    keyPem = await readFile(files.keyFile, "utf8");
    const id = certIdentity(certPem);
    const revoked = ca.list().some((c) => c.serial === id.serial && c.revoked);
    const fresh = id.notAfter.getTime() - Date.now() > 30 * 86_400_000;
    const sameCa = meta.caSerial === ca.cert.serialNumber;
    if (revoked || !fresh || !sameCa || JSON.stringify(meta.hostnames) !== JSON.stringify(names)) certPem = undefined;
  } catch {
    certPem = undefined;
  }
  if (!certPem || !keyPem) {
    const issued = await ca.issueWithKey("remos-broker", {
      role: "server",
      dnsNames: names.filter((n) => !isIP(n)),
      ips: names.filter((n) => isIP(n)),
    });
    certPem = issued.certPem;
    keyPem = issued.keyPem;
    await writeFileAtomic(files.keyFile, keyPem, 0o600);
    await writeFileAtomic(files.certFile, certPem, 0o644);
    await writeFileAtomic(join(bdir, "server.json"), JSON.stringify({ hostnames: names, caSerial: ca.cert.serialNumber }) + "\n", 0o644);
  }
  const owner = mosquittoOwner();
  if (owner) await chown(files.keyFile, owner.uid, owner.gid).catch(() => undefined);
  return { ca, files, tls: { caPem: ca.certPem, crlPem: ca.crlPem, certPem, keyPem } };
}
