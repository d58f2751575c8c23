/** `mos rm FILE`: FS.Remove. */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("rm")
    .description("remove a file on the device")
    .argument("<file>", "file on the device")
    .action(async (file: string) => {
      const dev = await ctx.connect();
      await ctx.step(`rm ${file}`, () => dev.fs.remove(file, { timeout: ctx.opts.timeout }));
      if (ctx.opts.json) ctx.printJson({ removed: file });
    });
}
