/**
 * A simulated Sensirion SHT31 temperature/humidity sensor (default address 0x44), per its datasheet:
 * - single-shot measurement commands 0x2400/0x240B/0x2416 (high/medium/low repeatability, no clock
 *   stretching: the sensor NACKs reads until the measurement is done, 15/6/4 ms) and 0x2C06/0x2C0D/0x2C10
 *   (clock stretching: a read waits for the result);
 * - a result of 6 bytes: T msb, T lsb, CRC, RH msb, RH lsb, CRC (CRC-8, polynomial 0x31, init 0xFF);
 *   T = -45 + 175·S/65535 °C, RH = 100·S/65535 %;
 * - status register 0xF32D (2 bytes + CRC; reset value 0x8010), clear status 0x3041, soft reset 0x30A2,
 *   heater on 0x306D / off 0x3066 (status bit 13); an unknown command sets bit 1 ("command not processed");
 * - readings drift plausibly: a slow daily-like cycle plus a bounded random walk; the heater adds ~+3 °C
 *   and lowers RH.
 */
import type { SimI2cDevice } from "./i2c.js";

export const SHT31_ADDR = 0x44;

/** CRC-8 of the SHT3x: polynomial 0x31, init 0xFF, no reflection, no final XOR (0xBEEF → 0x92). */
export function sht31Crc(data: Uint8Array): number {
  let crc = 0xff;
  for (const b of data) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/** Decode a 6-byte measurement; undefined when a CRC does not match. */
export function sht31Decode(b: Uint8Array): { temperature: number; humidity: number } | undefined {
  if (b.length < 6 || sht31Crc(b.subarray(0, 2)) !== b[2] || sht31Crc(b.subarray(3, 5)) !== b[5]) return undefined;
  return { temperature: -45 + (175 * ((b[0] << 8) | b[1])) / 65535, humidity: (100 * ((b[3] << 8) | b[4])) / 65535 };
}

function word(v: number): number[] {
  const w = [(v >> 8) & 0xff, v & 0xff];
  return [...w, sht31Crc(Uint8Array.from(w))];
}

export interface Sht31Options {
  now?: () => number;
  /** Centre of the simulated climate. */
  baseTemperature?: number;
  baseHumidity?: number;
  random?: () => number;
}

const SINGLE_SHOT: Record<number, { ms: number; stretch: boolean }> = {
  0x2400: { ms: 15, stretch: false },
  0x240b: { ms: 6, stretch: false },
  0x2416: { ms: 4, stretch: false },
  0x2c06: { ms: 15, stretch: true },
  0x2c0d: { ms: 6, stretch: true },
  0x2c10: { ms: 4, stretch: true },
};

export class Sht31Sim implements SimI2cDevice {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly baseT: number;
  private readonly baseRh: number;
  private status = 0x8010;
  private heater = false;
  private walkT = 0;
  private walkRh = 0;
  private busyUntil = 0;
  private pending: { data: number[]; readyAt: number; stretch: boolean } | undefined;

  constructor(options: Sht31Options = {}) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.baseT = options.baseTemperature ?? 22.5;
    this.baseRh = options.baseHumidity ?? 45;
  }

  /** The climate right now (what the next measurement will report, before quantisation). */
  climate(): { temperature: number; humidity: number } {
    const t = this.now() / 1000;
    const cycle = Math.sin((2 * Math.PI * t) / 3600);
    this.walkT = Math.max(-1, Math.min(1, this.walkT + (this.random() - 0.5) * 0.05));
    this.walkRh = Math.max(-3, Math.min(3, this.walkRh + (this.random() - 0.5) * 0.2));
    const temperature = this.baseT + 1.5 * cycle + this.walkT + (this.heater ? 3 : 0);
    const humidity = Math.max(0, Math.min(100, this.baseRh - 4 * cycle + this.walkRh - (this.heater ? 8 : 0)));
    return { temperature, humidity };
  }

  private measure(): number[] {
    const { temperature, humidity } = this.climate();
    const st = Math.max(0, Math.min(65535, Math.round(((temperature + 45) * 65535) / 175)));
    const srh = Math.max(0, Math.min(65535, Math.round((humidity * 65535) / 100)));
    return [...word(st), ...word(srh)];
  }

  write(data: Uint8Array): boolean {
    const now = this.now();
    if (now < this.busyUntil) return false; // measuring (no stretching) or resetting: no ACK
    if (data.length === 0) return true;
    if (data.length !== 2) {
      this.status |= 0x0002;
      return true;
    }
    const cmd = (data[0] << 8) | data[1];
    const shot = SINGLE_SHOT[cmd];
    if (cmd !== 0xf32d) this.status &= ~0x0002; // bit 1 reports the last command before a status read
    if (shot) {
      this.pending = { data: this.measure(), readyAt: now + shot.ms, stretch: shot.stretch };
      if (!shot.stretch) this.busyUntil = now + shot.ms;
      return true;
    }
    switch (cmd) {
      case 0xf32d:
        this.pending = { data: word(this.status), readyAt: now, stretch: false };
        return true;
      case 0x3041:
        this.status &= ~0x8c10 & 0xffff; // clears the alert, RH/T tracking alert and reset flags
        return true;
      case 0x30a2:
        this.heater = false;
        this.status = 0x8010;
        this.pending = undefined;
        this.busyUntil = now + 1;
        return true;
      case 0x306d:
        this.heater = true;
        this.status |= 0x2000;
        return true;
      case 0x3066:
        this.heater = false;
        this.status &= ~0x2000;
        return true;
      default:
        this.status |= 0x0002;
        return true;
    }
  }

  read(len: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const p = this.pending;
    const now = this.now();
    if (!p || now < this.busyUntil) return undefined;
    const take = (): Uint8Array => {
      this.pending = undefined;
      const out = new Uint8Array(len).fill(0xff);
      out.set(p.data.slice(0, len));
      return out;
    };
    if (now < p.readyAt) {
      if (!p.stretch) return undefined;
      return new Promise((resolve) => setTimeout(() => resolve(take()), p.readyAt - now));
    }
    return take();
  }
}
