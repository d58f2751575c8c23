/**
 * The global flags of mos (spec §5.2), each also settable as `MOS_<FLAG>` in the environment
 * (upper case, `-` → `_`, e.g. MOS_PORT), as one table (GLOBAL_FLAGS), and their translation into API
 * options. No commander here: global-flags.ts turns the table into commander options, fast-call.ts reads
 * a plain `mos call` with it, so `mos call` does not load commander at all.
 */
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

/** One global flag: its commander-style `flags` text and what a value given on the command line or in env means. */
export interface GlobalFlag {
  /** As commander spells it: `--port <port>`, `-v, --verbose`, `--no-reboot`. */
  flags: string;
  description: string;
  /** Default value (absent: the option is unset unless given). */
  default?: string | number;
  /** How help shows the default, when not the value itself (`20s` for 20000 ms). */
  defaultDescription?: string;
  /** Turns the text of a value into the option value; throws UsageError on bad input. */
  parse?: (value: string) => number;
}

/** The global flags, in the order help lists them (and commander applies MOS_* env values). */
export const GLOBAL_FLAGS: readonly GlobalFlag[] = [
  { flags: "--port <port>", description: "device port: /dev/ttyUSB0, serial://PATH, http://IP/rpc, ws://IP/rpc, mqtt(s)://HOST[:PORT]/DEVICE_ID", default: "auto" },
  { flags: "--baud-rate <n>", description: "serial baud rate", default: 115200, parse: int("--baud-rate") },
  { flags: "--timeout <duration>", description: "timeout of every step (connect and each call), e.g. 20s", default: 20_000, defaultDescription: "20s", parse: parseDuration },
  { flags: "--cert-file <file>", description: "TLS client certificate (mutual TLS)" },
  { flags: "--key-file <file>", description: "TLS client key" },
  { flags: "--ca-cert-file <file>", description: "CA certificate to verify the server (default: system roots)" },
  { flags: "--insecure", description: "DANGEROUS: do not verify the TLS server certificate" },
  { flags: "--rpc-creds <creds>", description: "RPC credentials user:pass, or @FILE holding user:pass" },
  { flags: "--chunk-size <bytes>", description: "transfer chunk size (default: chosen from the channel's frame limit)", parse: int("--chunk-size") },
  { flags: "--fs-op-attempts <n>", description: "attempts per transfer chunk", default: 3, parse: int("--fs-op-attempts") },
  { flags: "--level <n>", description: "config level for config-get/config-set (-1 = live)", default: -1, parse: int("--level") },
  { flags: "--no-reboot", description: "config-set: do not reboot after saving" },
  { flags: "--no-save", description: "config-set: apply without saving" },
  { flags: "--try-once", description: "config-set: save as conf9.json.try (used for one boot)" },
  { flags: "--rpc-uart-no-delay", description: "serial: no 16-byte/5 ms write pacing" },
  { flags: "--hw-flow-control", description: "serial: RTS/CTS hardware flow control (no write pacing)" },
  { flags: "--no-set-control-lines", description: "serial: leave DTR and RTS as they are (mos --set-control-lines=false)" },
  { flags: "--inverted-control-lines", description: "serial: drive DTR and RTS high instead of low" },
  { flags: "--mgrpc-compat-args", description: "send the deprecated args field instead of params" },
  { flags: "--json", description: "machine-readable JSON output" },
  { flags: "-v, --verbose", description: "trace every frame (and MQTT topics); stack traces on errors" },
];

/** The long name of a flag (`--baud-rate <n>` → `baud-rate`, `--no-reboot` → `no-reboot`). */
export function longName(flag: GlobalFlag): string {
  return /--([a-z0-9-]+)/.exec(flag.flags)?.[1] ?? "";
}

/** The environment variable of a flag: `MOS_` + long name upper-cased, `-` → `_` (MOS_BAUD_RATE, MOS_NO_REBOOT). */
export function envName(flag: GlobalFlag): string {
  return "MOS_" + longName(flag).toUpperCase().replace(/-/g, "_");
}

/**
 * Go's flag syntax for booleans that default to true, as mos documents them: `--set-control-lines=false`
 * becomes `--no-set-control-lines`, `--set-control-lines[=true]` the default. Its environment form
 * `MOS_SET_CONTROL_LINES=false` (or 0) counts too, unless the command line says otherwise.
 */
export function normaliseGoBooleans(argv: string[], env: NodeJS.ProcessEnv = {}): string[] {
  let explicit = false;
  const out = argv.flatMap((a) => {
    const m = /^--(no-)?set-control-lines(?:=(true|false|1|0))?$/i.exec(a);
    if (!m) return [a];
    explicit = true;
    if (m[1]) return [a];
    return /^(false|0)$/i.test(m[2] ?? "") ? ["--no-set-control-lines"] : [];
  });
  if (!explicit && /^(false|0)$/i.test(env.MOS_SET_CONTROL_LINES ?? "")) out.unshift("--no-set-control-lines");
  return out;
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
      // not an `import` of node:fs: its ESM facade would load fs streams on every `mos call`
      text = process.getBuiltinModule("node:fs").readFileSync(value.slice(1), "utf8").trim();
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
