/**
 * `mos console`: the device's console.
 * - serial port: a raw terminal on the port (DTR/RTS as for RPC); what the device prints goes to stdout,
 *   stdin goes to the device byte by byte. Ctrl-C (or end of stdin when it is not a TTY) ends it.
 * - `mqtt(s)://HOST/DEVICE_ID`: subscribe `DEVICE_ID/log` and print each payload (the device must publish
 *   its log there: `debug.stdout_topic=DEVICE_ID/log`).
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { parsePort } from "../../transport/url.js";
import type { CliContext } from "../context.js";
import { deviceOptions } from "../options.js";

function untilInterrupted(close: () => Promise<void>, ended: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void close().finally(resolve);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    void ended.then(stop);
  });
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("console")
    .description("show the device console (serial: raw terminal; mqtt: the DEVICE_ID/log topic)")
    .action(async () => {
      const port = ctx.opts.port;
      if (!port || port === "auto") throw new UsageError("give --port: a serial device or mqtt(s)://HOST/DEVICE_ID");
      const url = parsePort(port);
      const scheme = url.protocol.slice(0, -1).toLowerCase();
      if (scheme.startsWith("mqtt")) {
        const { openMqttConsole } = await import("../../api/console.js");
        const stream = await ctx.step(`console ${port}`, () =>
          openMqttConsole(port, deviceOptions(ctx.opts), (data) => {
            process.stdout.write(data);
            if (data.length && data[data.length - 1] !== 0x0a) process.stdout.write("\n");
          }),
        );
        await untilInterrupted(() => stream.close(), stream.ended);
        return;
      }
      if (scheme === "serial") {
        throw new UsageError("console over a serial port is not available in this build (the serial transport has no raw mode yet)");
      }
      throw new UsageError(`console works over a serial port or mqtt(s)://HOST/DEVICE_ID, not ${scheme}://`);
    });
}
