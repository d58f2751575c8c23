/**
 * `mos demo [--serial auto|socat|in-process]`: the secure-cloud walkthrough end to end in one command
 * (src/cloud/demo.ts): local CA + embedded broker, a fresh device on a serial link, iot-setup over serial,
 * then `mos ls` and `mos call Sys.GetInfo` over mutual-TLS MQTT (run as real `mos` child processes).
 * Cleans up everything it started; exit 0 on success.
 */
import { spawn } from "node:child_process";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";

function runSelf(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1], ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description("the secure-cloud walkthrough in one command: CA, broker, device on serial, iot-setup, then mos over mqtts")
    .option("--serial <mode>", "serial link: auto (socat when installed), socat, in-process", "auto")
    .action(async (f: { serial: string }) => {
      if (f.serial !== "auto" && f.serial !== "socat" && f.serial !== "in-process") throw new UsageError("--serial must be auto, socat or in-process");
      const { runDemo } = await import("../../cloud/demo.js");
      const timeoutMs = ctx.opts.timeout;
      await runDemo({
        out: (line) => void process.stdout.write(line + "\n"),
        runMos: (args) => runSelf(args, timeoutMs * 3),
        serial: f.serial,
        timeoutMs,
      });
    });
}
