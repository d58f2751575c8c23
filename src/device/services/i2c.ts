/**
 * The I2C.* RPC service (spec §3.6) over an I2cHal (hal/i2c.ts).
 *
 * What the agent passes: its RpcServer and an I2cHal — `createSimulatedI2c(dir, () => config.i2c.enable)
 * .bus` from hal/sim-i2c.ts (there is no Linux /dev/i2c-N adapter; see hal/i2c.ts).
 *
 * `bus` defaults to 0. Results: Scan → array of 7-bit addresses; Read → `{data_hex}` (lowercase);
 * ReadRegB/ReadRegW → `{value}` (16-bit registers are big-endian, MSB first, as mgos_i2c_read_reg_w);
 * writes → null. Errors: 400 missing/invalid args; 503 "I2C is disabled" (bus absent or i2c.enable false),
 * "I2C read failed" / "I2C write failed" (NACK on raw transfers), "error reading value" / "error writing
 * value" (register access).
 */
import { RpcError } from "../../errors.js";
import type { RpcServer } from "../../rpc/server.js";
import { I2cNackError, type I2cHal } from "../hal/i2c.js";

const MAX_LEN = 4096;

function params(p: unknown): Record<string, unknown> {
  return p && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

function intIn(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

export function registerI2cService(server: RpcServer, i2c: I2cHal): void {
  const busOf = (p: Record<string, unknown>): number => {
    const bus = p.bus ?? 0;
    if (!intIn(bus, 0, 255)) throw new RpcError(400, "bus must be a non-negative integer");
    if (!i2c.enabled(bus)) throw new RpcError(503, "I2C is disabled");
    return bus;
  };
  const addrOf = (p: Record<string, unknown>, required: string): number => {
    if (p.addr === undefined) throw new RpcError(400, `${required} required`);
    if (!intIn(p.addr, 0, 0x7f)) throw new RpcError(400, "addr must be a 7-bit address (0..127)");
    return p.addr;
  };
  /** Run a transfer; a NACK becomes 503 `failure`. */
  const xfer = async <T>(failure: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof I2cNackError) throw new RpcError(503, failure);
      throw e;
    }
  };

  server.addHandler("I2C.Scan", async (raw) => i2c.scan(busOf(params(raw))), {
    argsFmt: "{bus: %d}",
    description: "7-bit addresses that acknowledge on the bus",
  });

  server.addHandler("I2C.Read", async (raw) => {
    const p = params(raw);
    const bus = busOf(p);
    const addr = addrOf(p, "addr and len are");
    if (p.len === undefined) throw new RpcError(400, "addr and len are required");
    if (!intIn(p.len, 1, MAX_LEN)) throw new RpcError(400, `len must be 1..${MAX_LEN}`);
    const len = p.len;
    const data = await xfer("I2C read failed", () => i2c.read(bus, addr, len));
    return { data_hex: Buffer.from(data).toString("hex") };
  }, { argsFmt: "{bus: %d, addr: %d, len: %d}", description: "Read len bytes from a device" });

  server.addHandler("I2C.Write", async (raw) => {
    const p = params(raw);
    const bus = busOf(p);
    const addr = addrOf(p, "addr and data_hex are");
    if (typeof p.data_hex !== "string") throw new RpcError(400, "addr and data_hex are required");
    if (!/^([0-9a-fA-F]{2})*$/.test(p.data_hex) || p.data_hex.length > MAX_LEN * 2) throw new RpcError(400, "data_hex must be an even number of hex digits");
    const data = Buffer.from(p.data_hex, "hex");
    await xfer("I2C write failed", () => i2c.write(bus, addr, data));
    return null;
  }, { argsFmt: "{bus: %d, addr: %d, data_hex: %H}", description: "Write bytes (hex) to a device" });

  const regArgs = (p: Record<string, unknown>, withValue: number | undefined): { bus: number; addr: number; reg: number; value: number } => {
    const bus = busOf(p);
    const need = withValue === undefined ? "addr and reg are" : "addr, reg and value are";
    const addr = addrOf(p, need);
    if (p.reg === undefined || (withValue !== undefined && p.value === undefined)) throw new RpcError(400, `${need} required`);
    if (!intIn(p.reg, 0, 255)) throw new RpcError(400, "reg must be 0..255");
    if (withValue !== undefined && !intIn(p.value, 0, withValue)) throw new RpcError(400, `value must be 0..${withValue}`);
    return { bus, addr, reg: p.reg, value: (p.value as number | undefined) ?? 0 };
  };

  server.addHandler("I2C.ReadRegB", async (raw) => {
    const a = regArgs(params(raw), undefined);
    const d = await xfer("error reading value", () => i2c.writeRead(a.bus, a.addr, Uint8Array.of(a.reg), 1));
    return { value: d[0] };
  }, { argsFmt: "{bus: %d, addr: %d, reg: %d}", description: "Read an 8-bit register" });

  server.addHandler("I2C.ReadRegW", async (raw) => {
    const a = regArgs(params(raw), undefined);
    const d = await xfer("error reading value", () => i2c.writeRead(a.bus, a.addr, Uint8Array.of(a.reg), 2));
    return { value: (d[0] << 8) | d[1] };
  }, { argsFmt: "{bus: %d, addr: %d, reg: %d}", description: "Read a 16-bit register (MSB first)" });

  server.addHandler("I2C.WriteRegB", async (raw) => {
    const a = regArgs(params(raw), 0xff);
    await xfer("error writing value", () => i2c.write(a.bus, a.addr, Uint8Array.of(a.reg, a.value)));
    return null;
  }, { argsFmt: "{bus: %d, addr: %d, reg: %d, value: %d}", description: "Write an 8-bit register" });

  server.addHandler("I2C.WriteRegW", async (raw) => {
    const a = regArgs(params(raw), 0xffff);
    await xfer("error writing value", () => i2c.write(a.bus, a.addr, Uint8Array.of(a.reg, a.value >> 8, a.value & 0xff)));
    return null;
  }, { argsFmt: "{bus: %d, addr: %d, reg: %d, value: %d}", description: "Write a 16-bit register (MSB first)" });
}
