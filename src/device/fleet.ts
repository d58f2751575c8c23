/**
 * A simulated fleet: N device agents in one process (`mos device --count N`), each with its own state
 * directory `DIR/<id>` and id `<prefix>_000001`, `<prefix>_000002`, ... Built to scale to 10,000 devices:
 * no per-device HTTP listener unless asked (`httpListen`), agents started with bounded concurrency, no
 * per-device timers while idle. MQTT follows each device's config (e.g. `set: ["mqtt.enable=true", ...]`).
 * Each device is reachable in-process at `loopback://<id>` and through `fleet.devices`.
 */
import { join, resolve } from "node:path";
import { UsageError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import { type DeviceAgent, type DeviceAgentOptions, startDevice } from "./agent.js";

export interface FleetOptions {
  /** The parent state directory; device i lives in `DIR/<id>`. */
  dir: string;
  count: number;
  /** Id prefix (default: the arch). Ids are `<prefix>_<6-digit number>`, from 1. */
  prefix?: string;
  /** Number of the first device (default 1). */
  first?: number;
  /** `KEY=VALUE` settings for every device (saved at start). */
  set?: string[];
  arch?: string;
  /**
   * Give each device an HTTP listener: `HOST:0` (a free port each) or `HOST:PORT` (PORT, PORT+1, ...).
   * Default: none.
   */
  httpListen?: string;
  log?: DeviceAgentOptions["log"];
  services?: DeviceAgentOptions["services"];
  /** Agents started at once (default 64). */
  concurrency?: number;
  /** Called as each device has started. */
  onStarted?: (agent: DeviceAgent, index: number) => void;
}

export interface Fleet {
  readonly devices: DeviceAgent[];
  stop(): Promise<void>;
}

/** `<prefix>_000042`. */
export function fleetDeviceId(prefix: string, n: number): string {
  return `${prefix}_${String(n).padStart(6, "0")}`;
}

function httpFor(listen: string | undefined, index: number): string {
  if (listen === undefined || listen === "" || listen === "off") return "off";
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new UsageError(`--http-listen "${listen}" must be HOST:PORT for a fleet`);
  const port = Number(m[2]);
  return port === 0 ? listen : `${m[1]}:${port + index}`;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  if (!Number.isInteger(o.count) || o.count < 1) throw new UsageError("--count must be a positive integer");
  const prefix = o.prefix ?? o.arch ?? process.arch;
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new UsageError(`invalid id prefix "${prefix}"`);
  const first = o.first ?? 1;
  const root = resolve(o.dir);
  const devices: DeviceAgent[] = new Array<DeviceAgent>(o.count);
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < o.count) {
      const i = next++;
      const id = fleetDeviceId(prefix, first + i);
      try {
        const agent = await startDevice({
          dir: join(root, id),
          id,
          set: o.set,
          arch: o.arch,
          httpListen: httpFor(o.httpListen, i),
          log: o.log,
          services: o.services,
        });
        devices[i] = agent;
        o.onStarted?.(agent, i);
      } catch (e) {
        failure ??= e;
        debug("device", "fleet device failed to start", { id, error: errorMessage(e) });
      }
    }
  };
  const n = Math.max(1, Math.min(o.concurrency ?? 64, o.count));
  await Promise.all(Array.from({ length: n }, worker));
  const started = devices.filter((d): d is DeviceAgent => d !== undefined);
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((d) => d.stop().catch((e: unknown) => debug("device", "fleet stop failed", { error: errorMessage(e) }))));
  };
  if (failure !== undefined) {
    await stop();
    throw failure;
  }
  return { devices: started, stop };
}
