/**
 * An AWS Lambda-style handler that calls a device over MQTT with mutual TLS (e.g. AWS IoT Core), closes
 * the link and returns the result. Certificate and key come from environment variables holding PEM text
 * (DEVICE_CERT_PEM / DEVICE_KEY_PEM / CA_PEM, e.g. injected from Secrets Manager) or from files
 * (DEVICE_CERT_FILE / DEVICE_KEY_FILE / CA_FILE).
 *
 * event: { "device": "esp32_A1B2C3", "method": "Sys.GetInfo", "params": {} }
 * env:   MQTT_BROKER=mqtts://xxxxxxxx-ats.iot.eu-west-1.amazonaws.com:8883
 */
import { connect } from "../src/index.js";

export interface DeviceCallEvent {
  device: string;
  method: string;
  params?: unknown;
  timeoutMs?: number;
}

export const handler = async (event: DeviceCallEvent): Promise<{ ok: boolean; result?: unknown; error?: string; code?: string }> => {
  const broker = process.env.MQTT_BROKER;
  if (!broker) return { ok: false, error: "MQTT_BROKER is not set", code: "ERR_USAGE" };
  const device = await connect(`${broker.replace(/\/+$/, "")}/${encodeURIComponent(event.device)}`, {
    timeoutMs: event.timeoutMs ?? 10_000,
    tls: {
      cert: process.env.DEVICE_CERT_PEM,
      key: process.env.DEVICE_KEY_PEM,
      ca: process.env.CA_PEM,
      certFile: process.env.DEVICE_CERT_FILE,
      keyFile: process.env.DEVICE_KEY_FILE,
      caFile: process.env.CA_FILE,
    },
  }).catch((e: unknown) => e as Error);
  if (device instanceof Error) return { ok: false, error: device.message, code: (device as { code?: string }).code };
  try {
    const result = await device.call(event.method, event.params);
    return { ok: true, result };
  } catch (e) {
    return { ok: false, error: (e as Error).message, code: (e as { code?: string }).code };
  } finally {
    await device.close();
  }
};
