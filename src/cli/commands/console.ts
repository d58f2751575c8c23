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
import { deviceOptions, serialControlLines } from "../options.js";

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
        const { openRawSerial, portPath } = await import("../../transport/serial.js");
        const path = portPath(url);
        const serial = await ctx.step(`console ${path}`, () => openRawSerial(path, { baudRate: ctx.opts.baudRate, hwFlowControl: ctx.opts.hwFlowControl, controlLines: serialControlLines(ctx.opts) }));
        serial.on("data", (d: Buffer) => process.stdout.write(d));
        const ended = new Promise<void>((resolve) => {
          serial.once("close", () => resolve());
          serial.once("error", () => resolve());
        });
        const stdin = process.stdin;
        if (stdin.isTTY) stdin.setRawMode(true);
        const onKey = (d: Buffer): void => {
          if (stdin.isTTY && d.length === 1 && d[0] === 0x03) process.emit("SIGINT"); // raw mode swallows Ctrl-C
          else serial.write(d);
        };
        stdin.on("data", onKey);
        const stdinEnded = new Promise<void>((resolve) => stdin.once("end", () => resolve()));
        await untilInterrupted(
          async () => {
            stdin.off("data", onKey);
            if (stdin.isTTY) stdin.setRawMode(false);
            stdin.pause();
            await new Promise<void>((resolve) => serial.end(() => resolve()));
            serial.destroy();
          },
          stdin.isTTY ? ended : Promise.race([ended, stdinEnded.then(() => new Promise<void>((r) => setTimeout(r, 500)))]),
        );
        if (!stdin.isTTY) stdin.destroy();
        // The serial binding may still have a read pending in libuv's thread pool (a silent pty), which
        // keeps the process alive after the port closed: once everything is flushed, leave anyway.
        setTimeout(() => process.exit(), 1000).unref();
        return;
      }
      throw new UsageError(`console works over a serial port or mqtt(s)://HOST/DEVICE_ID, not ${scheme}://`);
    });
}
