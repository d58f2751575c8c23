/**
 * `mos ota FILE|URL [BEGIN_JSON]`: push a firmware bundle: OTA.Status (refuse unless idle or error) →
 * OTA.Begin {timeout, commit_timeout, size} → chunked OTA.Write → OTA.End. With `--commit`: wait for the
 * device to come back from its reboot, then OTA.Commit.
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";
import { parseDuration } from "../options.js";
import { progressReporter } from "../progress.js";
import { openSource } from "../source.js";
import type { ByteSource } from "../../api/byte-source.js";
import type { OtaUploadOptions } from "../../api/ota.js";
import { positive } from "./get.js";

interface OtaFlags {
  commitTimeout: string;
  updateTimeout: string;
  commit?: boolean;
  window?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("ota")
    .description("update the firmware from a .zip bundle (file or http(s) URL)")
    .argument("<bundle>", "firmware .zip file or http(s) URL")
    .argument("[beginJson]", "OTA.Begin params as JSON, instead of the default {timeout, commit_timeout, size}")
    .option("--commit-timeout <duration>", "time to commit after the reboot before the device reverts", "300s")
    .option("--update-timeout <duration>", "time the device allows for the whole update", "600s")
    .option("--commit", "wait for the device to come back, then commit the new firmware (OTA.Commit)")
    .option("--window <n>", "chunks in flight (default 1: the device parses the bundle in order)")
    .action(async (bundle: string, beginJson: string | undefined, o: OtaFlags) => {
      const tuning = ctx.tuning();
      if (o.window !== undefined) tuning.window = positive(o.window, "--window");
      const commitTimeoutS = Math.round(parseDuration(o.commitTimeout) / 1000);
      const updateTimeoutS = Math.round(parseDuration(o.updateTimeout) / 1000);
      let beginParams: Record<string, unknown> | undefined;
      if (beginJson !== undefined && beginJson !== "") {
        try {
          const v: unknown = JSON.parse(beginJson);
          if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
          beginParams = v as Record<string, unknown>;
        } catch {
          throw new UsageError(`BEGIN_JSON [${beginJson}] is not a valid JSON object`);
        }
      }
      const src = await ctx.step("ota", () => openSource(bundle, ctx.opts.timeout));
      try {
        await pushAndCommit(ctx, src, { ...tuning, beginParams, commitTimeoutS, updateTimeoutS }, Boolean(o.commit));
      } finally {
        await src.close();
      }
    });
}

async function pushAndCommit(ctx: CliContext, src: ByteSource, opts: OtaUploadOptions, commit: boolean): Promise<void> {
  const commitTimeoutS = opts.commitTimeoutS ?? 300;
  const dev = await ctx.connect();
  const before = commit ? await ctx.step("ota: Sys.GetInfo", () => dev.sys.getInfo({ timeout: ctx.opts.timeout })) : undefined;
  const since = Date.now();
  const progress = progressReporter("ota", { quiet: ctx.opts.json });
  let r;
  try {
    r = await ctx.step("ota", () => dev.ota.upload(src, { ...opts, onProgress: progress.update }));
  } finally {
    progress.done();
  }
  let committed = false;
  if (commit) {
    if (!ctx.opts.json) process.stderr.write("ota: waiting for the device to reboot into the new firmware...\n");
    await ctx.step("ota: waiting for the device", () =>
      dev.waitForReboot({ uptimeBefore: before?.uptime, since, timeoutMs: Math.max(ctx.opts.timeout, commitTimeoutS * 1000 / 2) }),
    );
    await ctx.step("ota: OTA.Commit", () => dev.ota.commit({ timeout: ctx.opts.timeout }));
    committed = true;
    if (!ctx.opts.json) process.stderr.write("ota: committed\n");
  }
  if (ctx.opts.json) ctx.printJson({ ...r, committed });
}

