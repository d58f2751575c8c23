/**
 * `mos get FILE`: the file's raw bytes to stdout (as mos), fetched by the chunk pump (windowed FS.Get by
 * offset/len, per-chunk retries). `-o LOCAL` writes a local file instead, resumable after an interruption
 * (`LOCAL.part`) and checked by SHA-256 when the device offers FS.Sha256.
 */
import type { Command } from "commander";
import type { TransferResult } from "../../api/fs-transfer.js";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";
import { progressReporter } from "../progress.js";

interface GetFlags {
  output?: string;
  resume: boolean;
  window?: string;
  verify: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("get")
    .description("print a device file to stdout (or save it with -o, resumable)")
    .argument("<file>", "file on the device")
    .option("-o, --output <local>", "write to this local file (resumes a previous partial download)")
    .option("--no-resume", "with -o: start over instead of resuming LOCAL.part")
    .option("--window <n>", "chunks in flight (default: 8 for remos devices, 1 for real firmware)")
    .option("--verify <mode>", "auto (SHA-256 via FS.Sha256 when offered) or none", "auto")
    .action(async (file: string, o: GetFlags) => {
      const tuning = ctx.tuning();
      if (o.window !== undefined) tuning.window = positive(o.window, "--window");
      if (o.verify !== "auto" && o.verify !== "none") throw new UsageError("--verify must be auto or none");
      const dev = await ctx.connect();
      const progress = progressReporter(`get ${file}`, { quiet: !o.output || ctx.opts.json });
      let r: TransferResult;
      try {
        const opts = { ...tuning, verify: o.verify as "auto" | "none", onProgress: progress.update };
        r = await ctx.step(`get ${file}`, () =>
          o.output ? dev.fs.download(file, o.output, { ...opts, resume: o.resume }) : dev.fs.getToStream(file, process.stdout, opts),
        );
      } finally {
        progress.done();
      }
      if (o.output && ctx.opts.json) ctx.printJson(r);
    });
}

export function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}
