/**
 * `mos call METHOD [JSON]`: call any method with JSON params and print the result as 2-space indented
 * JSON (`null` when there is none), as mos does. `runCall` is also what mos.ts runs for a plain `mos call`
 * read without commander (fast-call.ts).
 */
import type { Command } from "commander";
import { RemosError, UsageError } from "../../errors.js";
import { RpcClient } from "../../rpc/client.js";
import { openChannel } from "../../transport/url.js";
import type { CliContext } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("call")
    .description("call a device method with optional JSON params and print its result")
    .argument("<method>", "method name, e.g. Sys.GetInfo")
    .argument("[json]", "params as a JSON string")
    .action((method: string, json: string | undefined) => runCall(ctx, method, json));
}

/** Call `method` with the params in `json` (none when absent or empty) and print the result. */
export async function runCall(ctx: CliContext, method: string, json: string | undefined): Promise<void> {
  let params: unknown;
  if (json !== undefined && json !== "") {
    try {
      params = JSON.parse(json);
    } catch {
      throw new UsageError(`Args [${json}] is not a valid JSON string`);
    }
  }
  const rpc = await ctx.connectRpc({ openChannel, RpcClient });
  try {
    const result = await rpc.call(method, params, { timeout: ctx.opts.timeout });
    ctx.printJson(result);
    // as mos: give a rebooting device a moment before the link is closed under it
    if (/^sys\.reboot$/i.test(method)) await new Promise((r) => setTimeout(r, 200));
  } catch (e) {
    throw e instanceof RemosError ? e.inStep(`call ${method}`) : e;
  }
}
