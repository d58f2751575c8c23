/**
 * The global flags of mos (spec §5.2), each also settable as `MOS_<FLAG>` in the environment
 * (upper case, `-` → `_`, e.g. MOS_PORT), and their translation into API options.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { Option } from "commander";
import type { DeviceOptions } from "../api/device.js";
import { IoError, UsageError } from "../errors.js";

export interface GlobalOptions {
  port: string;
  baudRate: number;
  timeout: number; // ms
  certFile?: string;
  keyFile?: string;
  caCertFile?: string;
  insecure?: boolean;
  rpcCreds?: string;
  chunkSize?: number;
  fsOpAttempts: number;
  level: number;
  reboot: boolean; // --no-reboot
  save: boolean; // --no-save
  tryOnce?: boolean;
  verbose?: boolean;
  json?: boolean;
  rpcUartNoDelay?: boolean;
  hwFlowControl?: boolean;
  setControlLines: boolean;
  invertedControlLines?: boolean;
  mgrpcCompatArgs?: boolean;
}

/** Go-style durations (`20s`, `500ms`, `1m30s`) or a plain number of seconds → ms. */
export function parseDuration(value: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(v)) !== null) {
    const n = Number(m[1]);
    total += m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000;
    consumed += m[0].length;
  }
  if (consumed !== v.length || consumed === 0) throw new UsageError(`invalid duration "${value}" (e.g. 20s, 500ms, 1m)`);
  return Math.round(total);
}

function int(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new UsageError(`${name} must be an integer, got "${value}"`);
    return n;
  };
}

function envOption(flags: string, description: string): Option {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1] ?? "";
  return new Option(flags, description).env("MOS_" + long.toUpperCase().replace(/-/g, "_"));
}

/** Add the global flags to the program. */
export function addGlobalOptions(program: Command): void {
  program
    .addOption(envOption("--port <port>", "device port: /dev/ttyUSB0, serial://PATH, http://IP/rpc, ws://IP/rpc, mqtt(s)://HOST[:PORT]/DEVICE_ID").default("auto"))
    .addOption(envOption("--baud-rate <n>", "serial baud rate").default(115200).argParser(int("--baud-rate")))
    .addOption(envOption("--timeout <duration>", "timeout of every step (connect and each call), e.g. 20s").default(20_000, "20s").argParser(parseDuration))
    .addOption(envOption("--cert-file <file>", "TLS client certificate (mutual TLS)"))
    .addOption(envOption("--key-file <file>", "TLS client key"))
    .addOption(envOption("--ca-cert-file <file>", "CA certificate to verify the server (default: system roots)"))
    .addOption(envOption("--insecure", "DANGEROUS: do not verify the TLS server certificate"))
    .addOption(envOption("--rpc-creds <creds>", "RPC credentials user:pass, or @FILE holding user:pass"))
    .addOption(envOption("--chunk-size <bytes>", "transfer chunk size (default: chosen from the channel's frame limit)").argParser(int("--chunk-size")))
    .addOption(envOption("--fs-op-attempts <n>", "attempts per transfer chunk").default(3).argParser(int("--fs-op-attempts")))
    .addOption(envOption("--level <n>", "config level for config-get/config-set (-1 = live)").default(-1).argParser(int("--level")))
    .addOption(envOption("--no-reboot", "config-set: do not reboot after saving"))
    .addOption(envOption("--no-save", "config-set: apply without saving"))
    .addOption(envOption("--try-once", "config-set: save as conf9.json.try (used for one boot)"))
    .addOption(envOption("--rpc-uart-no-delay", "serial: no 16-byte/5 ms write pacing"))
    .addOption(envOption("--hw-flow-control", "serial: RTS/CTS hardware flow control (no write pacing)"))
    .addOption(envOption("--no-set-control-lines", "serial: leave DTR and RTS as they are (mos --set-control-lines=false)"))
    .addOption(envOption("--inverted-control-lines", "serial: drive DTR and RTS high instead of low"))
    .addOption(envOption("--mgrpc-compat-args", "send the deprecated args field instead of params"))
    .addOption(envOption("--json", "machine-readable JSON output"))
    .addOption(envOption("-v, --verbose", "trace every frame (and MQTT topics); stack traces on errors"));
}

/**
 * Go's flag syntax for booleans that default to true, as mos documents them: `--set-control-lines=false`
 * becomes `--no-set-control-lines`, `--set-control-lines[=true]` the default.
 */
export function normaliseGoBooleans(argv: string[]): string[] {
  return argv.flatMap((a) => {
    const m = /^--set-control-lines(?:=(true|false|1|0))?$/i.exec(a);
    if (!m) return [a];
    return /^(false|0)$/i.test(m[1] ?? "") ? ["--no-set-control-lines"] : [];
  });
}

/** DTR/RTS handling of the serial flags: low by default, high when inverted, untouched when not set. */
export function serialControlLines(o: Pick<GlobalOptions, "setControlLines" | "invertedControlLines">): "low" | "high" | "untouched" {
  if (o.setControlLines === false) return "untouched";
  return o.invertedControlLines ? "high" : "low";
}

/** Read `--rpc-creds user:pass` or `@file`. */
export function parseCreds(value: string | undefined): { username: string; password: string } | undefined {
  if (!value) return undefined;
  let text = value;
  if (value.startsWith("@")) {
    try {
      text = readFileSync(value.slice(1), "utf8").trim();
    } catch (e) {
      throw new IoError(`cannot read --rpc-creds file ${value.slice(1)}: ${(e as Error).message}`);
    }
  }
  const i = text.indexOf(":");
  if (i <= 0) throw new UsageError("--rpc-creds must be user:pass or @FILE containing user:pass");
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

/** The API options the global flags stand for. */
export function deviceOptions(o: GlobalOptions): DeviceOptions {
  const d: DeviceOptions = {
    timeoutMs: o.timeout,
    baudRate: o.baudRate,
    credentials: parseCreds(o.rpcCreds),
    compatArgs: o.mgrpcCompatArgs,
    noPacing: o.rpcUartNoDelay,
    hwFlowControl: o.hwFlowControl,
    controlLines: serialControlLines(o),
  };
  if (o.certFile || o.keyFile || o.caCertFile || o.insecure) {
    d.tls = { certFile: o.certFile, keyFile: o.keyFile, caFile: o.caCertFile, insecure: o.insecure };
  }
  return d;
}
