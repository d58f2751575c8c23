/**
 * The command table. Each command lives in its own file and is imported only when it runs, so
 * `mos call` loads neither the broker nor the CA. A command module exports `register(program, ctx)`.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<CommandModule>;
}

export const COMMANDS: CommandEntry[] = [
  { name: "call", summary: "call a device method: mos call METHOD [JSON]", load: () => import("./call.js") },
];
