/**
 * The global flags (options.ts GLOBAL_FLAGS) as commander options, each with its `MOS_*` environment
 * variable. The only module of the flag handling that loads commander.
 */
import { type Command, Option } from "commander";
import { GLOBAL_FLAGS, envName } from "./options.js";

/** Add the global flags to the program. */
export function addGlobalOptions(program: Command): void {
  for (const flag of GLOBAL_FLAGS) {
    const option = new Option(flag.flags, flag.description).env(envName(flag));
    if (flag.default !== undefined) option.default(flag.default, flag.defaultDescription);
    if (flag.parse) option.argParser(flag.parse);
    program.addOption(option);
  }
}
