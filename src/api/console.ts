/**
 * Device console (log) streams, for `mos console` and API users:
 * - `mqtt(s)://HOST/DEVICE_ID`: subscribe `DEVICE_ID/log` (QoS 0) and deliver each payload, as mos does
 *   (spec §2.4; the device must publish there: `debug.stdout_topic=DEVICE_ID/log`).
 * - serial ports: a raw terminal on the port via the serial transport's `openRawSerial` (see
 *   src/cli/commands/console.ts).
 */
import { randomInt } from "node:crypto";
import type { IClientOptions } from "mqtt";
import { TransportError, UsageError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import { endClient, openMqtt, withTimeout } from "../transport/mqtt-common.js";
import { MQTT_SCHEMES, parseMqttPort, resolveTls, tlsFor } from "../transport/mqtt.js";
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
  const p = parseMqttPort(url);
  const ws = p.brokerUrl.startsWith("ws");
  const tls = p.secure ? resolveTls(options.tls, p.port, ws) : {};
  const timeoutMs = options.timeoutMs ?? 20_000;
  const opts: IClientOptions = {
    clientId: options.clientId ?? `mos-${randomInt(0, 2 ** 31 - 1)}`,
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...tlsFor(p, tls, ws),
  };
  const client = await openMqtt(p.brokerUrl, opts, { timeoutMs, peer: p.peer, tlsUsed: p.secure, ...(options.signal ? { signal: options.signal } : {}) });
  const topic = `${p.deviceId}/log`;
  try {
    debug("mqtt", "subscribe", { topic, qos: 0 });
    const granted = await withTimeout(client.subscribeAsync(topic, { qos: 0 }), timeoutMs, `${p.peer}: no SUBACK within ${timeoutMs} ms`);
    if (granted.some((g) => g.qos === 128)) throw new TransportError(`${p.peer}: the broker refused the subscription to ${topic} (not authorized?)`);
  } catch (e) {
    await endClient(client);
    throw e instanceof TransportError ? e : new TransportError(`${p.peer}: subscribing ${topic} failed: ${errorMessage(e)}`, { cause: e });
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
