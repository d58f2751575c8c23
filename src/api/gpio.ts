/**
 * `device.gpio`: the GPIO.* service (spec §3.5). Edge notifications arrive as `GPIO.Int` (or the method
 * given to setIntHandler): listen with `device.on("GPIO.Int", ...)`.
 */
import type { CallOpts, DeviceCore } from "./core.js";

export type GpioLevel = 0 | 1;

export interface IntHandlerParams {
  pin: number;
  edge: "pos" | "neg" | "any";
  pull?: "up" | "down";
  debounceMs?: number;
  /** Where notifications go (default: the caller). */
  dst?: string;
  /** Notification method (default "GPIO.Int"). */
  method?: string;
}

/** Params of a GPIO.Int notification. */
export interface GpioInt {
  pin: number;
  ts: number;
  value: GpioLevel;
}

function level(r: unknown): GpioLevel {
  const v = (r as { value?: unknown } | null)?.value;
  return v ? 1 : 0;
}

export class GpioApi {
  private readonly core: DeviceCore;

  constructor(core: DeviceCore) {
    this.core = core;
  }

  /** `GPIO.Read {pin}` (sets input mode). */
  async read(pin: number, opts: CallOpts = {}): Promise<GpioLevel> {
    return level(await this.core.call("GPIO.Read", { pin }, opts));
  }

  /** `GPIO.ReadOut {pin}` (sets output mode). */
  async readOut(pin: number, opts: CallOpts = {}): Promise<GpioLevel> {
    return level(await this.core.call("GPIO.ReadOut", { pin }, opts));
  }

  /** `GPIO.Write {pin, value, od?}`. */
  async write(pin: number, value: GpioLevel | boolean, opts: CallOpts & { openDrain?: boolean } = {}): Promise<void> {
    const params: Record<string, unknown> = { pin, value: value ? 1 : 0 };
    if (opts.openDrain) params.od = true;
    await this.core.call("GPIO.Write", params, opts);
  }

  /** `GPIO.Toggle {pin}` → the new level. */
  async toggle(pin: number, opts: CallOpts = {}): Promise<GpioLevel> {
    return level(await this.core.call("GPIO.Toggle", { pin }, opts));
  }

  /** `GPIO.Blink {pin, on_ms, off_ms}`. */
  async blink(pin: number, onMs: number, offMs: number, opts: CallOpts = {}): Promise<void> {
    await this.core.call("GPIO.Blink", { pin, on_ms: onMs, off_ms: offMs }, opts);
  }

  /** `GPIO.SetIntHandler`: the device then notifies on each edge. */
  async setIntHandler(p: IntHandlerParams, opts: CallOpts = {}): Promise<void> {
    const params: Record<string, unknown> = { pin: p.pin, edge: p.edge };
    if (p.pull) params.pull = p.pull;
    if (p.debounceMs !== undefined) params.debounce_ms = p.debounceMs;
    if (p.dst) params.dst = p.dst;
    if (p.method) params.method = p.method;
    await this.core.call("GPIO.SetIntHandler", params, opts);
  }

  /** `GPIO.RemoveIntHandler {pin}`. */
  async removeIntHandler(pin: number, opts: CallOpts = {}): Promise<void> {
    await this.core.call("GPIO.RemoveIntHandler", { pin }, opts);
  }
}
