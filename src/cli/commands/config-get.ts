/**
 * `mos config-get [KEY]`: Config.Get (at `--level` when given), KEY picked out locally as mos does; strings
 * print raw, numbers and booleans plain, objects as 2-space indented JSON (`--json`: always JSON).
 */
import type { Command } from "commander";
import { configValueAt } from "../../api/config.js";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";

export function formatConfigValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return JSON.stringify(v, null, 2);
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("config-get")
    .description("print the device config, or the value at KEY (e.g. mqtt.ssl_cert)")
    .argument("[key]", "dot-separated config path")
    .action(async (key: string | undefined) => {
      const dev = await ctx.connect();
      const config = await ctx.step("config-get", () => dev.config.get(undefined, { level: ctx.opts.level, timeout: ctx.opts.timeout }));
      const v = configValueAt(config, key);
      if (v === undefined) throw new UsageError(`no config value at path "${key ?? ""}"`, { step: "config-get" });
      if (ctx.opts.json) ctx.printJson(v);
      else ctx.print(formatConfigValue(v));
    });
}
