/**
 * `mos put HOSTFILE [DEVFILE]`: upload a local file or an http(s) URL (DEVFILE defaults to its base name;
 * read from disk chunk by chunk, never whole) through the chunk pump: windowed FS.Put by offset, per-chunk retries, resume of an interrupted upload,
 * and an end-to-end size + SHA-256 check (FS.Sha256, or a read-back on real firmware).
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";
import { progressReporter } from "../progress.js";
import { baseName, openSource } from "../source.js";
import { positive } from "./get.js";

interface PutFlags {
  resume: boolean;
  window?: string;
  verify: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("put")
    .description("upload a local file or http(s) URL to the device")
    .argument("<hostfile>", "local file or http(s) URL")
    .argument("[devfile]", "name on the device (default: the base name of HOSTFILE)")
    .option("--no-resume", "always upload from the start")
    .option("--window <n>", "chunks in flight (default: 8 for remos devices, 1 for real firmware)")
    .option("--verify <mode>", "auto (FS.Sha256, else read back), readback, or none", "auto")
    .action(async (hostfile: string, devfile: string | undefined, o: PutFlags) => {
      const tuning = ctx.tuning();
      if (o.window !== undefined) tuning.window = positive(o.window, "--window");
      if (!["auto", "readback", "none"].includes(o.verify)) throw new UsageError("--verify must be auto, readback or none");
      const target = devfile ?? baseName(hostfile);
      if (!target) throw new UsageError(`cannot tell the device file name from "${hostfile}": give DEVFILE`);
      const src = await ctx.step(`put ${target}`, () => openSource(hostfile, ctx.opts.timeout));
      const progress = progressReporter(`put ${target}`, { quiet: ctx.opts.json });
      try {
        const dev = await ctx.connect();
        const r = await ctx.step(`put ${target}`, () =>
          dev.fs.put(target, src, { ...tuning, resume: o.resume, verify: o.verify as "auto" | "readback" | "none", onProgress: progress.update }),
        );
        progress.done();
        if (ctx.opts.json) ctx.printJson({ file: target, ...r });
      } finally {
        progress.done();
        await src.close();
      }
    });
}
