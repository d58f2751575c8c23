/**
 * Serial port discovery for `mos ports` and `--port auto`, as mos does on Linux: /dev/ttyUSB* then
 * /dev/ttyACM* (and /dev/cu.* on macOS minus Bluetooth). Reads /dev directly, so it works where udevadm
 * is missing (serialport's own list spawns udevadm and crashes without it).
 */
import { readdirSync } from "node:fs";

export interface SerialPortEntry {
  path: string;
}

export async function listSerialPorts(): Promise<SerialPortEntry[]> {
  let names: string[];
  try {
    names = readdirSync("/dev");
  } catch {
    return [];
  }
  const pick = (re: RegExp): string[] => names.filter((n) => re.test(n)).sort(naturalCompare);
  const found =
    process.platform === "darwin"
      ? pick(/^cu\./).filter((n) => !/bluetooth/i.test(n))
      : [...pick(/^ttyUSB\d+$/), ...pick(/^ttyACM\d+$/)];
  return found.map((n) => ({ path: "/dev/" + n }));
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}
