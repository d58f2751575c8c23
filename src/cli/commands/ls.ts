/**
 * `mos ls [-l] [PATH]`: FS.List (FS.ListExt with -l); names sorted, one per line as `name[ size]` with
 * mos's `\r\n` line ends; `--json` prints an array.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("ls")
    .description("list files on the device (sorted; -l adds sizes)")
    .argument("[path]", "directory on the device", "/")
    .option("-l, --long", "show sizes (FS.ListExt)")
    .action(async (path: string, o: { long?: boolean }) => {
      const dev = await ctx.connect();
      const t = { timeout: ctx.opts.timeout };
      if (o.long) {
        const entries = await ctx.step(`ls ${path}`, () => dev.fs.listExt(path, t));
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        if (ctx.opts.json) ctx.printJson(entries);
        else process.stdout.write(entries.map((e) => `${e.name} ${e.size}\r\n`).join(""));
      } else {
        const names = await ctx.step(`ls ${path}`, () => dev.fs.list(path, t));
        names.sort();
        if (ctx.opts.json) ctx.printJson(names);
        else process.stdout.write(names.map((n) => `${n}\r\n`).join(""));
      }
    });
}
