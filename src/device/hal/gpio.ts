/**
 * The GPIO hardware layer: the `GpioHal` interface the GPIO.* service (services/gpio.ts) runs on, and
 * `MemoryGpioHal`, a simulated pin bank with modes, pulls, output latches, open-drain outputs and external
 * drive (`simulateInput`) so tests and the simulated device can make edges. The Linux adapter is
 * gpio-linux.ts.
 */

export type GpioLevel = 0 | 1;
export type GpioMode = "input" | "output";
export type GpioPull = "none" | "up" | "down";

/** A failure the service reports as 400 (bad pin, unsupported feature). */
export class GpioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpioError";
  }
}

export interface GpioHal {
  /** Set a pin's direction; `openDrain` applies to outputs (1 releases the line). */
  setMode(pin: number, mode: GpioMode, options?: { openDrain?: boolean }): Promise<void>;
  setPull(pin: number, pull: GpioPull): Promise<void>;
  /** The level on the pin. */
  read(pin: number): Promise<GpioLevel>;
  /** The output latch (what the pin drives). */
  readOut(pin: number): Promise<GpioLevel>;
  write(pin: number, level: GpioLevel): Promise<void>;
  /** Listen for level changes on a pin; `ts` is epoch ms. Returns a function that stops listening. */
  watch(pin: number, listener: (level: GpioLevel, ts: number) => void): Promise<() => void>;
  close?(): void;
}

interface MemPin {
  mode: GpioMode;
  pull: GpioPull;
  openDrain: boolean;
  latch: GpioLevel;
  /** Level driven from outside (a button, another chip); undefined = not driven. */
  external: GpioLevel | undefined;
  level: GpioLevel;
}

/** A simulated pin bank of `pinCount` pins (0..pinCount-1). */
export class MemoryGpioHal implements GpioHal {
  readonly pinCount: number;
  private readonly pins = new Map<number, MemPin>();
  private readonly listeners = new Map<number, Set<(level: GpioLevel, ts: number) => void>>();

  constructor(options: { pinCount?: number } = {}) {
    this.pinCount = options.pinCount ?? 40;
  }

  private pin(n: number): MemPin {
    if (!Number.isInteger(n) || n < 0 || n >= this.pinCount) throw new GpioError(`no such pin ${n}`);
    let p = this.pins.get(n);
    if (!p) {
      p = { mode: "input", pull: "none", openDrain: false, latch: 0, external: undefined, level: 0 };
      this.pins.set(n, p);
    }
    return p;
  }

  /** The level the pin settles at: a driving output wins (push-pull, or open drain at 0); else external drive; else the pull. */
  private settle(n: number, p: MemPin): void {
    let level: GpioLevel;
    if (p.mode === "output" && (!p.openDrain || p.latch === 0)) level = p.latch;
    else if (p.external !== undefined) level = p.external;
    else level = p.pull === "up" ? 1 : 0; // pulled down, or floating (reads 0)
    if (level === p.level) return;
    p.level = level;
    const ts = Date.now();
    for (const l of this.listeners.get(n) ?? []) l(level, ts);
  }

  async setMode(pin: number, mode: GpioMode, options: { openDrain?: boolean } = {}): Promise<void> {
    const p = this.pin(pin);
    p.mode = mode;
    if (mode === "output") p.openDrain = options.openDrain ?? p.openDrain;
    this.settle(pin, p);
  }

  async setPull(pin: number, pull: GpioPull): Promise<void> {
    const p = this.pin(pin);
    p.pull = pull;
    this.settle(pin, p);
  }

  async read(pin: number): Promise<GpioLevel> {
    return this.pin(pin).level;
  }

  async readOut(pin: number): Promise<GpioLevel> {
    return this.pin(pin).latch;
  }

  async write(pin: number, level: GpioLevel): Promise<void> {
    const p = this.pin(pin);
    p.latch = level;
    this.settle(pin, p);
  }

  async watch(pin: number, listener: (level: GpioLevel, ts: number) => void): Promise<() => void> {
    this.pin(pin);
    let set = this.listeners.get(pin);
    if (!set) this.listeners.set(pin, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Drive a pin from outside (undefined = stop driving, the pull decides). Edges reach watchers. */
  simulateInput(pin: number, level: GpioLevel | undefined): void {
    const p = this.pin(pin);
    p.external = level;
    this.settle(pin, p);
  }

  /** Inspect a pin (tests). */
  pinState(pin: number): Readonly<MemPin> {
    return { ...this.pin(pin) };
  }
}
