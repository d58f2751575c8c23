/** `mos info`: Sys.GetInfo as a short aligned table (`--json`: the raw result). */
import type { Command } from "commander";
import type { SysInfo } from "../../api/sys.js";
import type { CliContext } from "../context.js";

function size(n: unknown): string {
  return typeof n === "number" ? `${n} (${(n / 1024).toFixed(0)} KiB)` : "-";
}

export function infoTable(i: SysInfo): string {
  const rows: [string, string][] = [
    ["id", String(i.id ?? "-")],
    ["app", `${i.app ?? "-"} ${i.fw_version ?? ""}`.trim()],
    ["fw_id", String(i.fw_id ?? "-")],
    ["arch", String(i.arch ?? "-")],
    ["mac", String(i.mac ?? "-")],
    ["uptime", typeof i.uptime === "number" ? `${i.uptime} s` : "-"],
    ["ram", `${size(i.ram_free)} free of ${size(i.ram_size)}, min free ${size(i.ram_min_free)}`],
    ["fs", `${size(i.fs_free)} free of ${size(i.fs_size)}`],
  ];
  if (i.mg_version) rows.push(["mg_version", String(i.mg_version)]);
  if (i.wifi) rows.push(["wifi", `${i.wifi.status}${i.wifi.ssid ? ` ssid=${i.wifi.ssid}` : ""}${i.wifi.sta_ip ? ` ip=${i.wifi.sta_ip}` : ""}`]);
  if (i.eth?.ip) rows.push(["eth", i.eth.ip]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("info")
    .description("show device information (Sys.GetInfo)")
    .action(async () => {
      const dev = await ctx.connect();
      const info = await ctx.step("info", () => dev.sys.getInfo({ timeout: ctx.opts.timeout }));
      if (ctx.opts.json) ctx.printJson(info);
      else ctx.print(infoTable(info));
    });
}
