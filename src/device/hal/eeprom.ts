/**
 * A simulated 24C32 I2C EEPROM (4 KiB, default address 0x50), per its datasheet:
 * - 2-byte word address (the top 4 bits of the first byte are ignored);
 * - a write of address + data is a page write: data bytes wrap within the 32-byte page of the start
 *   address; a write of the address alone only sets the pointer (the "dummy write" of a random read);
 * - after a page write the part is busy for its write cycle (tWR, default 5 ms) and NACKs everything
 *   (ACK polling);
 * - reads are sequential from the pointer and wrap from the last byte to 0.
 * The contents persist in a file (the agent passes one in its state dir) written with writeFileAtomic after
 * each page write, in order; a missing or wrong-sized file starts as erased (0xFF).
 */
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import { writeFileAtomic } from "../atomic.js";
import type { SimI2cDevice } from "./i2c.js";

export const EEPROM_ADDR = 0x50;
export const EEPROM_SIZE = 4096;
export const EEPROM_PAGE = 32;

export interface EepromOptions {
  /** Where the contents persist (omit for a volatile part). */
  file?: string;
  writeCycleMs?: number;
  now?: () => number;
}

export class Eeprom24c32Sim implements SimI2cDevice {
  readonly memory: Uint8Array;
  private pointer = 0;
  private busyUntil = 0;
  private readonly file: string | undefined;
  private readonly writeCycleMs: number;
  private readonly now: () => number;
  private saving: Promise<void> = Promise.resolve();

  constructor(options: EepromOptions = {}) {
    this.file = options.file;
    this.writeCycleMs = options.writeCycleMs ?? 5;
    this.now = options.now ?? Date.now;
    this.memory = new Uint8Array(EEPROM_SIZE).fill(0xff);
    if (this.file) {
      try {
        const saved = readFileSync(this.file);
        if (saved.length === EEPROM_SIZE) this.memory.set(saved);
        else debug("i2c", "EEPROM image has the wrong size; starting erased", { size: saved.length });
      } catch {
        // first start: erased
      }
    }
  }

  write(data: Uint8Array): boolean {
    if (this.now() < this.busyUntil) return false;
    if (data.length < 2) return true; // probe, or an incomplete address: ACKed, nothing stored
    const start = ((data[0] & 0x0f) << 8) | data[1];
    this.pointer = start;
    if (data.length === 2) return true;
    const pageBase = start & ~(EEPROM_PAGE - 1);
    let offset = start & (EEPROM_PAGE - 1);
    for (const b of data.subarray(2)) {
      this.memory[pageBase + offset] = b;
      offset = (offset + 1) % EEPROM_PAGE;
    }
    this.pointer = pageBase + offset;
    this.busyUntil = this.now() + this.writeCycleMs;
    this.persist();
    return true;
  }

  read(len: number): Uint8Array | undefined {
    if (this.now() < this.busyUntil) return undefined;
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      out[i] = this.memory[this.pointer];
      this.pointer = (this.pointer + 1) % EEPROM_SIZE;
    }
    return out;
  }

  private persist(): void {
    const file = this.file;
    if (!file) return;
    const image = Uint8Array.from(this.memory);
    this.saving = this.saving
      .then(async () => {
        await mkdir(dirname(file), { recursive: true });
        await writeFileAtomic(file, image);
      })
      .catch((e: unknown) => debug("i2c", "EEPROM image not saved", { error: errorMessage(e) }));
  }

  /** Resolves when every page write so far is on disk. */
  flush(): Promise<void> {
    return this.saving;
  }
}
