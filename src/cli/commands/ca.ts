/**
 * `mos ca init|issue|revoke|list`: the local certificate authority (src/cloud/ca.ts), default dir
 * `~/.remos/ca` (`--ca-dir`, or REMOS_CA_DIR).
 *
 *   mos ca init [--key-type ECDSA|RSA] [--cn NAME] [--days N]
 *   mos ca issue --role device|operator (--csr FILE | --cn CN) [--out FILE] [--key-out FILE] [--days N]
 *   mos ca revoke SERIAL|CN
 *   mos ca list
 */
import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";

interface CaFlags {
  caDir?: string;
}

async function caDir(flags: CaFlags): Promise<string> {
  const { defaultCaDir } = await import("../../cloud/ca.js");
  return flags.caDir ?? defaultCaDir();
}

function role(v: string | undefined): "device" | "operator" {
  if (v === "device" || v === "operator") return v;
  throw new UsageError(`--role must be device or operator, got "${v ?? ""}"`);
}

export function register(program: Command, ctx: CliContext): void {
  const ca = program.command("ca").description("the local certificate authority: init, issue, revoke, list");
  const dirOpt = ["--ca-dir <dir>", "CA directory (default ~/.remos/ca)"] as const;

  ca.command("init")
    .description("create a CA (key mode 0600, directory 0700)")
    .option(...dirOpt)
    .option("--key-type <type>", "ECDSA (P-256) or RSA (2048)", "ECDSA")
    .option("--cn <name>", "CA name", "remos local CA")
    .option("--days <n>", "validity in days", "3650")
    .action(async (f: CaFlags & { keyType: string; cn: string; days: string }) => {
      const { LocalCa } = await import("../../cloud/ca.js");
      const { parseKeyType } = await import("../../pki/x509.js");
      const dir = await caDir(f);
      const c = await LocalCa.init(dir, { keyType: parseKeyType(f.keyType), cn: f.cn, days: Number(f.days) });
      ctx.print(`CA created in ${dir}\ncertificate: ${c.caCertFile}\nCRL:         ${c.crlFile}`);
    });

  ca.command("issue")
    .description("issue a certificate from a CSR (--csr) or with a new key (--cn, key written with mode 0600)")
    .option(...dirOpt)
    .requiredOption("--role <role>", "device or operator")
    .option("--csr <file>", "PEM certificate request")
    .option("--cn <cn>", "common name (= MQTT client id); required without --csr")
    .option("--key-type <type>", "key type when no CSR is given", "ECDSA")
    .option("--out <file>", "write the certificate here (default: stdout)")
    .option("--key-out <file>", "write the new key here (needed without --csr)")
    .option("--days <n>", "validity in days", "825")
    .action(async (f: CaFlags & { role: string; csr?: string; cn?: string; keyType: string; out?: string; keyOut?: string; days: string }) => {
      const { LocalCa } = await import("../../cloud/ca.js");
      const { parseKeyType } = await import("../../pki/x509.js");
      const { writeFileAtomic } = await import("../../device/atomic.js");
      const c = await LocalCa.open(await caDir(f));
      const r = role(f.role);
      const days = Number(f.days);
      let certPem: string;
      let serial: string;
      if (f.csr) {
        const issued = await c.issueFromCsr(await readFile(f.csr, "utf8"), { role: r, cn: f.cn, days });
        certPem = issued.certPem;
        serial = issued.serial;
      } else {
        if (!f.cn) throw new UsageError("give --csr FILE, or --cn CN to generate a key");
        if (!f.keyOut) throw new UsageError("--key-out FILE is needed when the key is generated here");
        const issued = await c.issueWithKey(f.cn, { role: r, days, keyType: parseKeyType(f.keyType) });
        await writeFileAtomic(f.keyOut, issued.keyPem, 0o600);
        certPem = issued.certPem;
        serial = issued.serial;
      }
      if (f.out) {
        await writeFileAtomic(f.out, certPem, 0o644);
        ctx.print(`issued serial ${serial} → ${f.out}`);
      } else process.stdout.write(certPem);
    });

  ca.command("revoke")
    .description("revoke a certificate by serial or every live certificate of a CN; re-signs the CRL")
    .option(...dirOpt)
    .argument("<serial-or-cn>")
    .action(async (what: string, f: CaFlags) => {
      const { LocalCa } = await import("../../cloud/ca.js");
      const c = await LocalCa.open(await caDir(f));
      const revoked = await c.revoke(what);
      for (const r of revoked) ctx.print(`revoked ${r.serial} ${r.cn} (${r.role})`);
      ctx.print(`CRL updated: ${c.crlFile} (a running mos broker reloads it; mosquitto needs SIGHUP)`);
    });

  ca.command("list")
    .description("list issued certificates: serial, CN, role, expiry, revoked")
    .option(...dirOpt)
    .action(async (f: CaFlags) => {
      const { LocalCa } = await import("../../cloud/ca.js");
      const c = await LocalCa.open(await caDir(f));
      const rows = c.list();
      if (ctx.opts.json) return ctx.printJson(rows);
      const lines = [["SERIAL", "CN", "ROLE", "EXPIRES", "REVOKED"]];
      for (const r of rows) lines.push([r.serial, r.cn, r.role, r.notAfter.slice(0, 10), r.revoked ? r.revoked.slice(0, 19) + "Z" : "-"]);
      const w = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
      ctx.print(lines.map((l) => l.map((v, i) => v.padEnd(w[i])).join("  ").trimEnd()).join("\n"));
    });
}
