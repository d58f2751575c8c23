#!/usr/bin/env node
/**
 * `mos`: the command line. A plain `mos [global flags] call METHOD [JSON]` (the common case, and issue
 * 7's cold-start target) is read by fast-call.ts and run directly; every other command line goes to
 * commander (program.ts), which loads only the command being run. Either way a failure prints one clear
 * line (with the failing step) and the process exits with a documented code (src/cli/exit.ts).
 */
import { enableCompileCache } from "./compile-cache.js";
import { CliContext } from "./context.js";
import { EXIT, reportError } from "./exit.js";
import { parseFastCall } from "./fast-call.js";
import { normaliseGoBooleans } from "./options.js";

async function main(argv: string[]): Promise<number> {
  enableCompileCache(); // Node ≥ 22.1: the modules imported below compile from the cache on the next run
  const fast = parseFastCall(argv, process.env);
  if (!fast) return (await import("./program.js")).runProgram(argv);
  const opts = fast.opts;
  const { runCall } = await import("./commands/call.js");
  const ctx = new CliContext(() => opts);
  try {
    ctx.applyGlobalEffects(); // what commander's preAction hook does
    await runCall(ctx, fast.method, fast.json);
    return EXIT.OK;
  } catch (e) {
    return reportError(e, Boolean(opts.verbose));
  } finally {
    await ctx.finish();
  }
}

main(normaliseGoBooleans(process.argv.slice(2), process.env)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = reportError(e, true);
  },
);
