/**
 * `mos device --dir DIR [--id ID] [--set K=V]... [--serial PATH] [--http-listen ADDR] [--count N]`: run a
 * Mongoose OS-compatible device agent (or a fleet of N in one process) until SIGINT/SIGTERM. Prints one
 * line per started device on stdout: `<id> <http://host:port/rpc | ->` (again after each reboot); the
 * device console goes to stderr (`--quiet` drops it; a fleet prints it only with `--log`).
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";

interface DeviceFlags {
  dir?: string;
  id?: string;
  set: string[];
  serial?: string;
  httpListen?: string;
  count?: string;
  arch?: string;
  quiet?: boolean;
  log?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function httpUrl(a: { host: string; port: number } | undefined): string {
  if (!a) return "-";
  const host = a.host.includes(":") ? `[${a.host}]` : a.host;
  return `http://${host}:${a.port}/rpc`;
}

/** Resolves at the first SIGINT or SIGTERM (and keeps the process alive until then). */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const on = (sig: string): void => {
      clearInterval(keepAlive);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(sig);
    };
    const onInt = (): void => on("SIGINT");
    const onTerm = (): void => on("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("device")
    .description("run a simulated Mongoose OS device (or a fleet of them) until interrupted")
    .option("--dir <dir>", "state directory (created if missing); a fleet puts each device in DIR/<id>")
    .option("--id <id>", "device.id (for a fleet: the id prefix)")
    .option("--set <key=value>", "set a config value at start and save it (repeatable)", collect, [])
    .option("--serial <path>", "serve RPC and the console on this serial device")
    .option("--http-listen <addr>", "HTTP/WS listen address, overrides http.listen_addr (e.g. 127.0.0.1:8080, :8080; off)")
    .option("--count <n>", "run a fleet of N devices in this process")
    .option("--arch <arch>", "arch reported by Sys.GetInfo and used in the default id (default: the host's)")
    .option("--quiet", "do not print the device console")
    .option("--log", "fleet: print every device's console")
    .action(async (flags: DeviceFlags) => {
      if (!flags.dir) throw new UsageError("mos device needs --dir DIR (the state directory)");
      const out = (line: string): void => ctx.print(line);
      // The console goes to stderr, so stdout carries only the device lines (scripts read them).
      const toStderr = (_fd: 1 | 2, text: string): void => void process.stderr.write(text + "\n");
      if (flags.count !== undefined) {
        const count = Number(flags.count);
        if (!Number.isInteger(count) || count < 1) throw new UsageError(`--count must be a positive integer, got "${flags.count}"`);
        if (flags.serial) throw new UsageError("--serial cannot be shared by a fleet");
        const { startFleet } = await import("../../device/fleet.js");
        const fleet = await startFleet({
          dir: flags.dir,
          count,
          prefix: flags.id,
          set: flags.set,
          arch: flags.arch,
          httpListen: flags.httpListen,
          log: flags.log ? toStderr : false,
          onStarted: (a) => out(`${a.id} ${httpUrl(a.httpAddress)}`),
        });
        await untilSignal();
        await fleet.stop();
        return;
      }
      const { startDevice } = await import("../../device/agent.js");
      const agent = await startDevice({
        dir: flags.dir,
        id: flags.id,
        set: flags.set,
        serial: flags.serial,
        httpListen: flags.httpListen,
        arch: flags.arch,
        log: flags.quiet ? false : toStderr,
      });
      out(`${agent.id} ${httpUrl(agent.httpAddress)}`);
      agent.onBoot(() => out(`${agent.id} ${httpUrl(agent.httpAddress)}`));
      await untilSignal();
      await agent.stop();
    });
}
