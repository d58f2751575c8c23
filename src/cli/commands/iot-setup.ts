/**
 * `mos iot-setup --broker mqtts://HOST:PORT [--ca-dir DIR] [--cert-cn CN] [--cert-type ECDSA|RSA]
 * [--operator-cn CN]`: provision the device on `--port` (e.g. a serial cable) for the remos broker with
 * the local CA (src/cloud/provision/iot-setup.ts), then print the alias line that manages it over mqtts.
 * Honours the global `--no-reboot` and `--timeout`.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

interface Flags {
  broker: string;
  caDir?: string;
  certCn?: string;
  certType: string;
  operatorCn?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("iot-setup")
    .description("provision the device for the remos MQTT broker: key + certificate from the local CA, mqtt.* config, reboot")
    .requiredOption("--broker <url>", "the broker the device will use: mqtts://HOST[:PORT]")
    .option("--ca-dir <dir>", "local CA directory (default ~/.remos/ca; created when missing)")
    .option("--cert-cn <cn>", "certificate CN (default: the device's device.id)")
    .option("--cert-type <type>", "ECDSA (P-256) or RSA (2048)", "ECDSA")
    .option("--operator-cn <cn>", "CN of the operator certificate made for this CLI when none exists", "remos-operator")
    .action(async (f: Flags) => {
      const { LocalCa, defaultCaDir } = await import("../../cloud/ca.js");
      const { parseKeyType } = await import("../../pki/x509.js");
      const { iotSetup } = await import("../../cloud/provision/iot-setup.js");
      const ca = await LocalCa.openOrInit(f.caDir ?? defaultCaDir());
      const device = await ctx.connect();
      const r = await iotSetup(device, {
        broker: f.broker,
        ca,
        cn: f.certCn,
        keyType: parseKeyType(f.certType),
        operatorCn: f.operatorCn,
        timeoutMs: ctx.opts.timeout,
        reboot: ctx.opts.reboot !== false,
        log: (m) => ctx.print(m),
      });
      if (ctx.opts.json) return ctx.printJson(r);
      ctx.print(`\ndevice ${r.deviceId} is set up for ${r.port}; manage it with:\n${r.alias}`);
    });
}
