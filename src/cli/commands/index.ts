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
  { name: "ls", summary: "list device files: mos ls [-l] [PATH]", load: () => import("./ls.js") },
  { name: "get", summary: "download a device file: mos get FILE [-o LOCAL]", load: () => import("./get.js") },
  { name: "put", summary: "upload a file: mos put HOSTFILE|URL [DEVFILE]", load: () => import("./put.js") },
  { name: "rm", summary: "remove a device file: mos rm FILE", load: () => import("./rm.js") },
  { name: "config-get", summary: "print config: mos config-get [KEY]", load: () => import("./config-get.js") },
  { name: "config-set", summary: "set config: mos config-set KEY=VALUE ...", load: () => import("./config-set.js") },
  { name: "wifi", summary: "join a WiFi network: mos wifi SSID PASS", load: () => import("./wifi.js") },
  { name: "ota", summary: "update firmware: mos ota FILE|URL [BEGIN_JSON] [--commit]", load: () => import("./ota.js") },
  { name: "ports", summary: "list serial ports, one per line", load: () => import("./ports.js") },
  { name: "console", summary: "device console (serial, or MQTT DEVICE_ID/log)", load: () => import("./console.js") },
  { name: "info", summary: "device information (Sys.GetInfo)", load: () => import("./info.js") },
  { name: "reboot", summary: "reboot the device", load: () => import("./reboot.js") },
  { name: "create-fw-bundle", summary: "build a firmware bundle: mos create-fw-bundle --dir APPDIR --name N --version V -o out.zip", load: () => import("./create-fw-bundle.js") },
  { name: "device", summary: "run a simulated device (or fleet): mos device --dir DIR", load: () => import("./device.js") },
  { name: "ca", summary: "local certificate authority: mos ca init|issue|revoke|list", load: () => import("./ca.js") },
  { name: "broker", summary: "run the mutual-TLS MQTT broker (or --mosquitto-conf OUT)", load: () => import("./broker.js") },
  { name: "iot-setup", summary: "provision the device for the remos broker: mos iot-setup --broker mqtts://HOST:PORT", load: () => import("./iot-setup.js") },
  { name: "demo", summary: "the secure-cloud walkthrough end to end: CA, broker, device on serial, iot-setup, mos over mqtts", load: () => import("./demo.js") },
  { name: "aws-iot-setup", summary: "provision the device for AWS IoT (certificate, policy, thing, endpoint, config)", load: () => import("./aws-iot-setup.js") },
];
