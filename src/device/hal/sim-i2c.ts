/**
 * The simulated I2C bus the agent runs with when it has no hardware: bus 0 carrying an SHT31 at 0x44 and a
 * 24C32 EEPROM at 0x50 whose contents persist in `<state dir>/hal/eeprom-50.bin`.
 */
import { join } from "node:path";
import { EEPROM_ADDR, Eeprom24c32Sim } from "./eeprom.js";
import { SimI2cBus } from "./i2c.js";
import { SHT31_ADDR, Sht31Sim } from "./sht31.js";

export interface SimulatedI2c {
  bus: SimI2cBus;
  sht31: Sht31Sim;
  eeprom: Eeprom24c32Sim;
}

/** `dir`: the agent's state directory; `enabled`: live `i2c.enable`. */
export function createSimulatedI2c(dir: string, enabled?: () => boolean): SimulatedI2c {
  const sht31 = new Sht31Sim();
  const eeprom = new Eeprom24c32Sim({ file: join(dir, "hal", "eeprom-50.bin") });
  const bus = new SimI2cBus({ enabled }).attach(SHT31_ADDR, sht31).attach(EEPROM_ADDR, eeprom);
  return { bus, sht31, eeprom };
}
