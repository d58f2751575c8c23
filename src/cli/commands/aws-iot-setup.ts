/**
 * `mos aws-iot-setup`: provision the device on `--port` for AWS IoT (spec §5.4, src/cloud/provision/
 * aws-iot-setup.ts). Credentials and region come from the AWS SDK's usual chain (env, ~/.aws, profile).
 *
 *   --aws-region R  --aws-profile P  --aws-iot-policy NAME|-  --aws-iot-policy-least-privilege
 *   --aws-iot-thing NAME|-  --cert-type ECDSA|RSA  --cert-cn CN  --aws-cert-file F --aws-key-file F
 *   --aws-mqtt-server HOST:PORT  --aws-endpoint URL (control-plane override, e.g. a VPC endpoint)
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

interface Flags {
  awsRegion?: string;
  awsProfile?: string;
  awsIotPolicy?: string;
  awsIotPolicyLeastPrivilege?: boolean;
  awsIotThing?: string;
  certType?: string;
  certCn?: string;
  awsCertFile?: string;
  awsKeyFile?: string;
  awsMqttServer?: string;
  awsEndpoint?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("aws-iot-setup")
    .description("provision the device for AWS IoT: certificate from a CSR, policy, thing, endpoint, mqtt.* config")
    .option("--aws-region <region>", "AWS region (default: AWS_REGION / the profile's)")
    .option("--aws-profile <name>", "AWS credentials profile")
    .option("--aws-iot-policy <name>", "policy to attach (default mos-default, created permissive when absent; - = none)")
    .option("--aws-iot-policy-least-privilege", "create/attach a least-privilege policy: own client id (thing name) and own topics only")
    .option("--aws-iot-thing <name>", "thing to attach the certificate to (default: the CN; - = none)")
    .option("--cert-type <type>", "ECDSA or RSA (default ECDSA; RSA on cc320*)")
    .option("--cert-cn <cn>", "certificate CN (default: device.id)")
    .option("--aws-cert-file <file>", "use this existing certificate instead of making one")
    .option("--aws-key-file <file>", "the existing certificate's key")
    .option("--aws-mqtt-server <host:port>", "skip DescribeEndpoint and use this MQTT server")
    .option("--aws-endpoint <url>", "AWS IoT control-plane endpoint override")
    .action(async (f: Flags) => {
      const { awsIotSetup } = await import("../../cloud/provision/aws-iot-setup.js");
      const { parseKeyType } = await import("../../pki/x509.js");
      if (f.awsProfile) process.env.AWS_PROFILE = f.awsProfile;
      const region = f.awsRegion ?? process.env.AWS_DEFAULT_REGION; // else the SDK's chain (AWS_REGION, profile)
      const device = await ctx.connect();
      const r = await awsIotSetup(device, {
        region,
        policy: f.awsIotPolicy,
        leastPrivilege: f.awsIotPolicyLeastPrivilege,
        thing: f.awsIotThing,
        certType: f.certType ? parseKeyType(f.certType) : undefined,
        certCn: f.certCn,
        awsCertFile: f.awsCertFile,
        awsKeyFile: f.awsKeyFile,
        mqttServer: f.awsMqttServer,
        client: f.awsEndpoint ? { endpoint: f.awsEndpoint } : undefined,
        timeoutMs: ctx.opts.timeout,
        reboot: ctx.opts.reboot !== false,
        log: (m) => ctx.print(m),
      });
      if (ctx.opts.json) return ctx.printJson(r);
      ctx.print(`\ndevice ${r.cn} is set up for AWS IoT at ${r.mqttServer} (certificate ${r.certificateId})`);
    });
}
