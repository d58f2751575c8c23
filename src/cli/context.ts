/**
 * What every command gets: the parsed global flags, a way to connect to the device they name, and output
 * helpers that honour --json and --verbose.
 */
import type { Device } from "../api/device.js";
import type { TransferTuning } from "../api/transfer.js";
import { RemosError, UsageError } from "../errors.js";
import { setDebugAreas } from "../log.js";
import type { RpcClient } from "../rpc/client.js";
import type { openChannel } from "../transport/url.js";
import { type GlobalOptions, deviceOptions } from "./options.js";

/**
 * What `connectRpc` uses from the transport and RPC layers. `mos call` passes them, imported statically
 * with the command, so they load together with it rather than in one more round of dynamic imports.
 */
export interface RpcLinkParts {
  openChannel: typeof openChannel;
  RpcClient: typeof RpcClient;
}

export class CliContext {
  private readonly readOpts: () => GlobalOptions;
  private device: Device | undefined;
  private rpcOnly: RpcClient | undefined;

  /** `readOpts` gives the global flags as parsed so far (commander's `program.opts()`, or fast-call's). */
  constructor(readOpts: () => GlobalOptions) {
    this.readOpts = readOpts;
  }

  get opts(): GlobalOptions {
    return this.readOpts();
  }

  /** Apply flags that act before any command runs (--verbose turns on the frame trace). */
  applyGlobalEffects(): void {
    if (this.opts.verbose) setDebugAreas("*");
    if (this.opts.insecure) {
      process.stderr.write(
        "mos: WARNING: --insecure: the TLS server certificate is NOT verified. Anyone on the network path can\n" +
          "mos: WARNING: pose as the server and read or change everything sent, credentials included.\n",
      );
    }
  }

  /** Resolve `--port auto` (the first serial port) and connect. The link is closed by `finish`. */
  async connect(): Promise<Device> {
    if (this.device) return this.device;
    let port = this.opts.port;
    if (!port || port === "auto") port = await autoPort();
    const p = port;
    // imported here, not at the top: `mos --help` and commands that never connect load none of the API
    const { connect } = await import("../api/device.js");
    this.device = await this.step(`connect ${redactPort(p)}`, () => connect(p, deviceOptions(this.opts)));
    return this.device;
  }

  /**
   * Just an RPC client on the port's channel, for commands that only call methods (`mos call`): the same
   * link `connect()` makes (src "mos", the global timeout, credentials, compat args, as Device does), without
   * loading the Device helper APIs (fs, config, ota, transfer...) — a third of `mos call`'s start-up.
   */
  async connectRpc(parts?: RpcLinkParts): Promise<RpcClient> {
    if (this.device) return this.device.rpc;
    if (this.rpcOnly) return this.rpcOnly;
    let port = this.opts.port;
    if (!port || port === "auto") port = await autoPort();
    const p = port;
    const { openChannel: open, RpcClient: Client } = parts ?? (await loadRpcLinkParts());
    const o = deviceOptions(this.opts);
    const timeoutMs = o.timeoutMs ?? 20_000;
    const channel = await this.step(`connect ${redactPort(p)}`, () => open(p, { ...o, timeoutMs }));
    this.rpcOnly = new Client(channel, { src: o.src ?? "mos", timeoutMs, compatArgs: o.compatArgs, credentials: o.credentials });
    return this.rpcOnly;
  }

  /** Chunk size, attempts and per-call timeout for transfers, from --chunk-size/--fs-op-attempts/--timeout. */
  tuning(): TransferTuning {
    const o = this.opts;
    const t: TransferTuning = { attempts: o.fsOpAttempts, timeoutMs: o.timeout };
    if (o.chunkSize !== undefined) {
      if (o.chunkSize <= 0) throw new UsageError("--chunk-size must be a positive number of bytes");
      t.chunkSize = o.chunkSize;
    }
    if (o.fsOpAttempts < 1) throw new UsageError("--fs-op-attempts must be at least 1");
    return t;
  }

  /** Run a step; a RemosError it throws gets the step name first (`put init.js: chunk at offset 0: ...`). */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw e instanceof RemosError ? e.inStep(name) : e;
    }
  }

  /** Print a result: JSON with --json, else the command's text. */
  print(text: string): void {
    process.stdout.write(text.endsWith("\n") ? text : text + "\n");
  }

  printJson(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + "\n");
  }

  async finish(): Promise<void> {
    const d = this.device;
    this.device = undefined;
    if (d) await d.close().catch(() => undefined);
    const r = this.rpcOnly;
    this.rpcOnly = undefined;
    if (r) await r.close().catch(() => undefined);
  }
}

async function loadRpcLinkParts(): Promise<RpcLinkParts> {
  const [{ openChannel: open }, { RpcClient: Client }] = await Promise.all([import("../transport/url.js"), import("../rpc/client.js")]);
  return { openChannel: open, RpcClient: Client };
}

async function autoPort(): Promise<string> {
  const { listSerialPorts } = await import("./ports.js");
  const ports = await listSerialPorts();
  if (ports.length === 0) throw new UsageError("no serial port found: give --port (e.g. --port /dev/ttyUSB0 or --port http://IP/rpc)");
  return ports[0].path;
}

/** A port for messages: `mqtt://user:secret@host/dev` → `mqtt://user:***@host/dev`. */
export function redactPort(port: string): string {
  return port.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@:]*):([^/@]*)@/i, "$1$2:***@");
}
