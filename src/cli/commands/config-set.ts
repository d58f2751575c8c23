/**
 * `mos config-set KEY=VALUE ...`: Config.Get, values typed like the existing ones, then `Config.Set
 * {config, save, reboot, try_once?, level?}` (honouring --no-save, --no-reboot, --try-once, --level), with
 * the Config.Save fallback for firmware that does not answer `saved:true`. 3 attempts per call.
 */
import type { Command } from "commander";
import { type ConfigSetResult, parseAssignments } from "../../api/config.js";
import type { CliContext } from "../context.js";

/** The config-set flow shared with `mos wifi`. */
export async function runConfigSet(ctx: CliContext, assignments: Record<string, string>, stepName: string): Promise<ConfigSetResult> {
  const o = ctx.opts;
  const dev = await ctx.connect();
  const r = await ctx.step(stepName, () =>
    dev.config.setValues(assignments, {
      save: o.save !== false,
      reboot: o.reboot !== false,
      tryOnce: o.tryOnce,
      level: o.level,
      timeout: o.timeout,
      attempts: 3,
    }),
  );
  if (r.rebooting) await new Promise((res) => setTimeout(res, 200)); // as mos: let the reply settle before the link drops
  if (o.json) ctx.printJson(r);
  return r;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("config-set")
    .description("set config values (typed like the current ones), save and reboot")
    .argument("<assignments...>", "KEY=VALUE pairs, e.g. wifi.sta.enable=true")
    .action(async (words: string[]) => {
      await runConfigSet(ctx, parseAssignments(words), "config-set");
    });
}
