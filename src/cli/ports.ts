/**
 * Serial port discovery for `mos ports` and `--port auto`, as mos does on Linux: /dev/ttyUSB* then
 * /dev/ttyACM* (and /dev/cu.* on macOS minus Bluetooth). Reads /dev directly, so it works where udevadm
 * is missing (serialport's own list spawns udevadm and crashes without it).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

export interface SerialPortEntry {
  path: string;
}

/** The serial ports in `devDir` (default /dev; other folders are for tests), in mos's order. */
export async function listSerialPorts(devDir = "/dev", platform: NodeJS.Platform = process.platform): Promise<SerialPortEntry[]> {
  let names: string[];
  try {
    names = readdirSync(devDir);
  } catch {
    return [];
  }
  const pick = (re: RegExp): string[] => names.filter((n) => re.test(n)).sort(naturalCompare);
  const found =
    platform === "darwin"
      ? pick(/^cu\./).filter((n) => !/bluetooth/i.test(n))
      : [...pick(/^ttyUSB\d+$/), ...pick(/^ttyACM\d+$/)];
  return found.map((n) => ({ path: join(devDir, n) }));
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}
