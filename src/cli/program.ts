/**
 * The commander side of `mos`: the global flags, the one command being run (loaded from the lazy command
 * table), help, version and usage errors. mos.ts loads it for every command line but a plain `mos call`
 * (fast-call.ts), so the common call path does not load commander.
 */
import { Command, CommanderError } from "commander";
import { COMMANDS } from "./commands/index.js";
import { CliContext } from "./context.js";
import { EXIT, reportError } from "./exit.js";
import { addGlobalOptions } from "./global-flags.js";
import { GLOBAL_FLAGS, type GlobalOptions, longName } from "./options.js";

/** The global flags that take a value (`--port <port>`...): their value is not a command name. */
const VALUE_FLAGS = new Set(GLOBAL_FLAGS.filter((f) => /<[^>]+>/.test(f.flags)).map((f) => "--" + longName(f)));

/** The first argument that names a command (global flags and their values may come before it). */
function commandName(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") return undefined;
    if (a.startsWith("-")) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

/** Parse `argv` (after normaliseGoBooleans) with commander and run the command; resolves with the exit code. */
export async function runProgram(argv: string[]): Promise<number> {
  const program = new Command("mos");
  program
    .description("remos: manage Mongoose OS-compatible devices over serial, HTTP, WebSocket and MQTT")
    .version("0.1.0")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  addGlobalOptions(program);
  const ctx = new CliContext(() => program.opts<GlobalOptions>());
  const name = commandName(argv);
  const entry = name ? COMMANDS.find((c) => c.name === name) : undefined;
  if (entry) {
    const mod = await entry.load();
    mod.register(program, ctx);
  } else {
    for (const c of COMMANDS) program.command(c.name).description(c.summary);
    if (name) {
      process.stderr.write(`mos: unknown command "${name}" (see mos --help)\n`);
      return EXIT.USAGE;
    }
  }
  program.hook("preAction", () => ctx.applyGlobalEffects());
  try {
    await program.parseAsync(argv, { from: "user" });
    if (!entry && !name) program.outputHelp();
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return EXIT.OK;
      return EXIT.USAGE; // commander already printed the message
    }
    return reportError(e, Boolean(program.opts().verbose));
  } finally {
    await ctx.finish();
  }
}
