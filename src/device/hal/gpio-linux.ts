/**
 * The Linux GPIO adapter over the sysfs interface (`/sys/class/gpio`: export, gpioN/direction, gpioN/value),
 * chosen because it needs no native code and no extra tools. `detectLinuxGpio()` returns it only when the
 * export file exists and is writable, else undefined (the agent then uses MemoryGpioHal); it never throws.
 *
 * Limits, stated plainly: sysfs cannot set pull resistors (setPull other than "none" is refused with a
 * GpioError → 400); edges are detected by polling `value` every `pollMs` (default 10 ms) because waiting for
 * sysfs edge interrupts needs poll(2) with POLLPRI, which Node cannot do without a native addon; open-drain
 * outputs are emulated (0 = drive low, 1 = switch to input). libgpiod's character device is not used.
 */
import { accessSync, constants, existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GpioError, type GpioHal, type GpioLevel, type GpioMode, type GpioPull } from "./gpio.js";

export const SYSFS_GPIO_ROOT = "/sys/class/gpio";

export interface SysfsGpioOptions {
  root?: string;
  pollMs?: number;
  /** Largest pin number accepted (default 1023). */
  maxPin?: number;
}

export class SysfsGpioHal implements GpioHal {
  private readonly root: string;
  private readonly pollMs: number;
  private readonly maxPin: number;
  private readonly openDrain = new Set<number>();
  private readonly latches = new Map<number, GpioLevel>();
  private readonly polls = new Set<NodeJS.Timeout>();

  constructor(options: SysfsGpioOptions = {}) {
    this.root = options.root ?? SYSFS_GPIO_ROOT;
    this.pollMs = options.pollMs ?? 10;
    this.maxPin = options.maxPin ?? 1023;
  }

  private async pinDir(pin: number): Promise<string> {
    if (!Number.isInteger(pin) || pin < 0 || pin > this.maxPin) throw new GpioError(`no such pin ${pin}`);
    const dir = join(this.root, `gpio${pin}`);
    if (existsSync(dir)) return dir;
    try {
      await writeFile(join(this.root, "export"), String(pin));
    } catch (e) {
      throw new GpioError(`cannot export pin ${pin}: ${(e as Error).message}`);
    }
    for (let i = 0; i < 50 && !existsSync(join(dir, "value")); i++) await new Promise((r) => setTimeout(r, 10));
    if (!existsSync(dir)) throw new GpioError(`pin ${pin} did not appear after export`);
    return dir;
  }

  private async put(pin: number, file: string, value: string): Promise<void> {
    const dir = await this.pinDir(pin);
    try {
      await writeFile(join(dir, file), value);
    } catch (e) {
      throw new GpioError(`pin ${pin}: cannot write ${file}: ${(e as Error).message}`);
    }
  }

  async setMode(pin: number, mode: GpioMode, options: { openDrain?: boolean } = {}): Promise<void> {
    if (mode === "output" && options.openDrain !== undefined) {
      if (options.openDrain) this.openDrain.add(pin);
      else this.openDrain.delete(pin);
    }
    if (mode === "output" && this.openDrain.has(pin)) {
      const latch = this.latches.get(pin) ?? 0;
      await this.put(pin, "direction", latch === 0 ? "low" : "in");
      return;
    }
    await this.put(pin, "direction", mode === "input" ? "in" : "out");
  }

  async setPull(pin: number, pull: GpioPull): Promise<void> {
    await this.pinDir(pin);
    if (pull !== "none") throw new GpioError("pull resistors cannot be set through /sys/class/gpio");
  }

  async read(pin: number): Promise<GpioLevel> {
    const dir = await this.pinDir(pin);
    const text = (await readFile(join(dir, "value"), "utf8")).trim();
    return text === "1" ? 1 : 0;
  }

  async readOut(pin: number): Promise<GpioLevel> {
    if (this.openDrain.has(pin)) return this.latches.get(pin) ?? 0;
    return this.read(pin);
  }

  async write(pin: number, level: GpioLevel): Promise<void> {
    this.latches.set(pin, level);
    if (this.openDrain.has(pin)) {
      await this.put(pin, "direction", level === 0 ? "low" : "in");
      return;
    }
    await this.put(pin, "value", String(level));
  }

  async watch(pin: number, listener: (level: GpioLevel, ts: number) => void): Promise<() => void> {
    let last = await this.read(pin);
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.read(pin)
        .then((level) => {
          if (level !== last) {
            last = level;
            listener(level, Date.now());
          }
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, this.pollMs);
    timer.unref();
    this.polls.add(timer);
    return () => {
      clearInterval(timer);
      this.polls.delete(timer);
    };
  }

  close(): void {
    for (const t of this.polls) clearInterval(t);
    this.polls.clear();
  }
}

/** The sysfs adapter when this host has a usable /sys/class/gpio, else undefined. */
export function detectLinuxGpio(options: SysfsGpioOptions = {}): SysfsGpioHal | undefined {
  const root = options.root ?? SYSFS_GPIO_ROOT;
  try {
    accessSync(join(root, "export"), constants.W_OK);
    return new SysfsGpioHal(options);
  } catch {
    return undefined;
  }
}
