/**
 * The I2C hardware layer: the `I2cHal` interface the I2C.* service (services/i2c.ts) runs on, and
 * `SimI2cBus`, a simulated bus 0 that carries simulated parts (`SimI2cDevice`: sht31.ts, eeprom.ts).
 *
 * A transaction is: address phase + write bytes (the device may NACK), or address phase + read bytes (the
 * device may NACK, or stretch the clock — modelled by returning a promise). An absent address NACKs.
 *
 * No Linux `/dev/i2c-N` adapter: selecting the slave address needs the I2C_SLAVE ioctl, which Node cannot
 * issue without a native addon.
 */

/** The addressed device did not acknowledge (absent, busy, or refusing the transfer). */
export class I2cNackError extends Error {
  constructor(addr: number) {
    super(`no ACK from address 0x${addr.toString(16).padStart(2, "0")}`);
    this.name = "I2cNackError";
  }
}

export interface I2cHal {
  /** False when the bus is not configured/enabled (`i2c.enable` false): the service answers 503. */
  enabled(bus: number): boolean;
  /** 7-bit addresses 1..0x77 that acknowledge. */
  scan(bus: number): Promise<number[]>;
  read(bus: number, addr: number, len: number): Promise<Uint8Array>;
  write(bus: number, addr: number, data: Uint8Array): Promise<void>;
  /** Write then read with a repeated start (register access). */
  writeRead(bus: number, addr: number, out: Uint8Array, len: number): Promise<Uint8Array>;
}

export interface SimI2cDevice {
  /** Address phase + `data` written; false = NACK. An empty write is a probe (scan, ACK polling). */
  write(data: Uint8Array): boolean;
  /** Read `len` bytes; undefined = NACK; a promise = clock stretching. */
  read(len: number): Uint8Array | undefined | Promise<Uint8Array | undefined>;
}

export interface SimI2cBusOptions {
  /** Live `i2c.enable` (default: always enabled). */
  enabled?: () => boolean;
}

/** Simulated bus 0. */
export class SimI2cBus implements I2cHal {
  private readonly devices = new Map<number, SimI2cDevice>();
  private readonly isEnabled: () => boolean;

  constructor(options: SimI2cBusOptions = {}) {
    this.isEnabled = options.enabled ?? (() => true);
  }

  attach(addr: number, device: SimI2cDevice): this {
    if (!Number.isInteger(addr) || addr < 1 || addr > 0x77) throw new RangeError(`invalid 7-bit address ${addr}`);
    this.devices.set(addr, device);
    return this;
  }

  detach(addr: number): void {
    this.devices.delete(addr);
  }

  enabled(bus: number): boolean {
    return bus === 0 && this.isEnabled();
  }

  private device(addr: number): SimI2cDevice {
    const d = this.devices.get(addr);
    if (!d) throw new I2cNackError(addr);
    return d;
  }

  async scan(_bus: number): Promise<number[]> {
    const found: number[] = [];
    for (let a = 1; a <= 0x77; a++) {
      const d = this.devices.get(a);
      if (d && d.write(new Uint8Array(0))) found.push(a);
    }
    return found;
  }

  async read(_bus: number, addr: number, len: number): Promise<Uint8Array> {
    const data = await this.device(addr).read(len);
    if (!data) throw new I2cNackError(addr);
    return data;
  }

  async write(_bus: number, addr: number, data: Uint8Array): Promise<void> {
    if (!this.device(addr).write(data)) throw new I2cNackError(addr);
  }

  async writeRead(bus: number, addr: number, out: Uint8Array, len: number): Promise<Uint8Array> {
    await this.write(bus, addr, out);
    return this.read(bus, addr, len);
  }
}
