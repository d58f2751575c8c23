/** `mos reboot [--delay MS]`: Sys.Reboot, then the 200 ms pause mos makes. */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { positive } from "./get.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("reboot")
    .description("reboot the device")
    .option("--delay <ms>", "delay before the reboot in ms (device default 100)")
    .action(async (o: { delay?: string }) => {
      const dev = await ctx.connect();
      const delayMs = o.delay !== undefined ? positive(o.delay, "--delay") : undefined;
      await ctx.step("reboot", () => dev.sys.reboot({ delayMs, timeout: ctx.opts.timeout }));
      await new Promise((r) => setTimeout(r, 200));
      if (ctx.opts.json) ctx.printJson({ rebooting: true });
    });
}
