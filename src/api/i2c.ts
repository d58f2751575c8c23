/**
 * `device.i2c`: the I2C.* service (spec §3.6); data travels as lowercase hex, here as bytes.
 */
import { TransportError } from "../errors.js";
import type { CallOpts, DeviceCore } from "./core.js";

export interface I2cOpts extends CallOpts {
  /** Bus number (default 0). */
  bus?: number;
}

function withBus(params: Record<string, unknown>, opts: I2cOpts): Record<string, unknown> {
  if (opts.bus !== undefined) params.bus = opts.bus;
  return params;
}

function valueOf(r: unknown, method: string): number {
  const v = (r as { value?: unknown } | null)?.value;
  if (typeof v !== "number") throw new TransportError(`${method}: no value in the result`);
  return v;
}

export class I2cApi {
  private readonly core: DeviceCore;

  constructor(core: DeviceCore) {
    this.core = core;
  }

  /** `I2C.Scan` → 7-bit addresses that answered. */
  async scan(opts: I2cOpts = {}): Promise<number[]> {
    const r = await this.core.call<unknown>("I2C.Scan", withBus({}, opts), opts);
    return Array.isArray(r) ? r.filter((a): a is number => typeof a === "number") : [];
  }

  /** `I2C.Read {addr, len}` → bytes. */
  async read(addr: number, len: number, opts: I2cOpts = {}): Promise<Buffer> {
    const r = await this.core.call<{ data_hex?: unknown } | null>("I2C.Read", withBus({ addr, len }, opts), opts);
    if (typeof r?.data_hex !== "string") throw new TransportError("I2C.Read: no data_hex in the result");
    return Buffer.from(r.data_hex, "hex");
  }

  /** `I2C.Write {addr, data_hex}`. */
  async write(addr: number, data: Uint8Array, opts: I2cOpts = {}): Promise<void> {
    await this.core.call("I2C.Write", withBus({ addr, data_hex: Buffer.from(data).toString("hex") }, opts), opts);
  }

  async readRegB(addr: number, reg: number, opts: I2cOpts = {}): Promise<number> {
    return valueOf(await this.core.call("I2C.ReadRegB", withBus({ addr, reg }, opts), opts), "I2C.ReadRegB");
  }

  async readRegW(addr: number, reg: number, opts: I2cOpts = {}): Promise<number> {
    return valueOf(await this.core.call("I2C.ReadRegW", withBus({ addr, reg }, opts), opts), "I2C.ReadRegW");
  }

  async writeRegB(addr: number, reg: number, value: number, opts: I2cOpts = {}): Promise<void> {
    await this.core.call("I2C.WriteRegB", withBus({ addr, reg, value }, opts), opts);
  }

  async writeRegW(addr: number, reg: number, value: number, opts: I2cOpts = {}): Promise<void> {
    await this.core.call("I2C.WriteRegW", withBus({ addr, reg, value }, opts), opts);
  }
}
