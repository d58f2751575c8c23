/**
 * Device console (log) streams, for `mos console` and API users:
 * - `mqtt(s)://HOST/DEVICE_ID`: subscribe `DEVICE_ID/log` (QoS 0) and deliver each payload, as mos does
 *   (spec §2.4; the device must publish there: `debug.stdout_topic=DEVICE_ID/log`).
 * - serial ports: a raw terminal on the port via the serial transport's `openRawSerial` (see
 *   src/cli/commands/console.ts).
 */
import { UsageError } from "../errors.js";
import { endClient } from "../transport/mqtt-common.js";
import { MQTT_SCHEMES, openOperatorClient, subscribeOrFail } from "../transport/mqtt.js";
import { parsePort } from "../transport/url.js";
import type { DeviceOptions } from "./device.js";

export interface ConsoleStream {
  /** Resolves when the stream ends (the link dropped or close() was called). */
  readonly ended: Promise<void>;
  close(): Promise<void>;
}

/** Subscribe to a device's log topic over MQTT; `onData` gets each payload. */
export async function openMqttConsole(port: string, options: DeviceOptions, onData: (data: Buffer, topic: string) => void): Promise<ConsoleStream> {
  const url = parsePort(port);
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (!MQTT_SCHEMES.includes(scheme)) throw new UsageError(`not an MQTT port: ${port}`);
  const { client, p, deadline } = await openOperatorClient(url, { ...options, timeoutMs: options.timeoutMs ?? 20_000 });
  const topic = `${p.deviceId}/log`;
  try {
    await subscribeOrFail(client, topic, 0, deadline, p.peer);
  } catch (e) {
    await endClient(client);
    throw e;
  }
  client.on("message", (t, payload) => {
    if (t === topic) onData(payload, t);
  });
  const ended = new Promise<void>((resolve) => client.once("close", () => resolve()));
  return {
    ended,
    close: () => endClient(client),
  };
}
