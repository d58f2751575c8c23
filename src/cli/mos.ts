#!/usr/bin/env node
/**
 * `mos`: the command line. Parses the global flags, loads only the command being run, runs it, prints one
 * clear line on failure (with the failing step) and exits with a documented code (src/cli/exit.ts).
 */
import { Command, CommanderError } from "commander";
import { COMMANDS } from "./commands/index.js";
import { CliContext } from "./context.js";
import { EXIT, reportError } from "./exit.js";
import { addGlobalOptions, normaliseGoBooleans } from "./options.js";

const VALUE_FLAGS = new Set([
  "--port", "--baud-rate", "--timeout", "--cert-file", "--key-file", "--ca-cert-file", "--rpc-creds",
  "--chunk-size", "--fs-op-attempts", "--level",
]);

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

async function main(argv: string[]): Promise<number> {
  const program = new Command("mos");
  program
    .description("remos: manage Mongoose OS-compatible devices over serial, HTTP, WebSocket and MQTT")
    .version("0.1.0")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  addGlobalOptions(program);
  const ctx = new CliContext(program);
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

main(normaliseGoBooleans(process.argv.slice(2))).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = reportError(e, true);
  },
);
