/**
 * `mos create-fw-bundle --dir APPDIR --name N --version V [--sign-key key.pem ...] -o out.zip`: build a
 * remos firmware bundle (format: src/device/ota/bundle.ts) from an app directory, optionally signed.
 * `--sign-key` may repeat: the Nth one makes signature N; an empty value skips that index (as mos does).
 */
import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { IoError, UsageError, errorMessage } from "../../errors.js";
import { writeFileAtomic } from "../../device/atomic.js";
import { createBundleFromDir } from "../../device/ota/bundle.js";
import type { CliContext } from "../context.js";

interface Opts {
  dir?: string;
  name?: string;
  version?: string;
  description?: string;
  buildId?: string;
  signKey: string[];
  output?: string;
}

/**
 * The root program's `--version` flag would swallow this command's `--version V` (commander consumes
 * known program options anywhere on the line). This module is loaded only when create-fw-bundle runs, so
 * it drops the root flag for this invocation.
 */
function releaseVersionFlag(program: Command): void {
  const root = program as unknown as {
    options: { long?: string }[];
    _versionOptionName?: string;
    removeAllListeners(event: string): void;
  };
  root.options = root.options.filter((o) => o.long !== "--version");
  root.removeAllListeners("option:version");
  root._versionOptionName = undefined;
}

export function register(program: Command, ctx: CliContext): void {
  releaseVersionFlag(program);
  program
    .command("create-fw-bundle")
    .description("build a firmware bundle (.zip) of an app directory for OTA")
    .requiredOption("--dir <appdir>", "directory of the app's files (installed as the device FS)")
    .requiredOption("--name <name>", "firmware (app) name")
    .requiredOption("--version <version>", "firmware version")
    .option("--description <text>", "manifest description")
    .option("--build-id <id>", "build id (default: <timestamp>/remos@<fs sha256 prefix>)")
    .option("--sign-key <pem>", "ECDSA P-256 private key file (repeat for sig1, sig2...; empty skips one)", (v: string, acc: string[]) => [...acc, v], [])
    .requiredOption("-o, --output <file>", "where to write the bundle")
    .action(async (o: Opts) => {
      if (!o.dir || !o.name || !o.version || !o.output) throw new UsageError("--dir, --name, --version and -o are required");
      const signKeys: (string | undefined)[] = [];
      for (const f of o.signKey) {
        if (f === "") {
          signKeys.push(undefined);
          continue;
        }
        try {
          signKeys.push(await readFile(f, "utf8"));
        } catch (e) {
          throw new IoError(`cannot read signing key ${f}: ${errorMessage(e)}`);
        }
      }
      let built;
      try {
        built = await createBundleFromDir(resolve(o.dir), {
          name: o.name,
          version: o.version,
          description: o.description,
          build_id: o.buildId,
          signKeys,
        });
      } catch (e) {
        if (e instanceof UsageError) throw e;
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES") throw new IoError(`cannot read ${o.dir}: ${errorMessage(e)}`);
        throw new UsageError(errorMessage(e));
      }
      try {
        await writeFileAtomic(resolve(o.output), built.zip);
      } catch (e) {
        throw new IoError(`cannot write ${o.output}: ${errorMessage(e)}`);
      }
      const sigs = signKeys.map((k, i) => (k ? `sig${i}` : "")).filter(Boolean);
      if (ctx.opts.json) ctx.printJson({ file: o.output, size: built.zip.length, manifest: built.manifest, signatures: sigs });
      else ctx.print(`${o.output}: ${built.manifest.name} ${built.manifest.version} (${built.manifest.build_id}), ${built.zip.length} bytes${sigs.length ? `, signed: ${sigs.join(", ")}` : ", unsigned"}`);
    });
}
