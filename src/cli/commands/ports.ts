/**
 * `mos ports`: list the serial ports a device may be on, one per line (`--json`: an array of
 * `{"path": ...}`), in the order `--port auto` tries them. Reads /dev directly: it never runs udevadm,
 * which serialport's own listing needs (and crashes without).
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("ports")
    .description("list serial ports (Linux /dev/ttyUSB*, /dev/ttyACM*; macOS /dev/cu.* without Bluetooth)")
    .action(async () => {
      const { listSerialPorts } = await import("../ports.js");
      const ports = await listSerialPorts();
      if (ctx.opts.json) {
        ctx.printJson(ports);
        return;
      }
      for (const p of ports) ctx.print(p.path);
    });
}
