/**
 * `mos wifi SSID PASS`: the config-set of wifi.ap.enable=false wifi.sta.enable=true wifi.sta.ssid=SSID
 * wifi.sta.pass=PASS (saved; reboots unless --no-reboot), as mos.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { runConfigSet } from "./config-set.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("wifi")
    .description("join a WiFi network: save station settings (AP off) and reboot")
    .argument("<ssid>", "network name")
    .argument("<pass>", "password")
    .action(async (ssid: string, pass: string) => {
      await runConfigSet(ctx, { "wifi.ap.enable": "false", "wifi.sta.enable": "true", "wifi.sta.ssid": ssid, "wifi.sta.pass": pass }, "wifi");
    });
}
