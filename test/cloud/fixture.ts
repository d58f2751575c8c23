/**
 * Shared fixture of the cloud tests: a temp remos dir with a CA and broker files, certificate issuing
 * helpers, and raw MQTT clients (mqtt.js) with a certificate, with timeouts on every wait.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type IClientOptions, type MqttClient, connectAsync } from "mqtt";
import { type PreparedBroker, prepareBrokerDir } from "../../src/cloud/broker-dir.js";
import type { CertRole } from "../../src/pki/x509.js";

export interface Pem {
  certPem: string;
  keyPem: string;
}

export interface CloudFixture {
  root: string;
  prepared: PreparedBroker;
  issue(cn: string, role: CertRole, dates?: { notBefore?: Date; notAfter?: Date }): Promise<Pem & { serial: string }>;
  cleanup(): void;
}

export async function makeCloudFixture(): Promise<CloudFixture> {
  const root = mkdtempSync(join(tmpdir(), "remos-cloud-"));
  const prepared = await prepareBrokerDir(root, { hostnames: ["localhost", "127.0.0.1", "::1"] });
  return {
    root,
    prepared,
    async issue(cn, role, dates = {}) {
      const r = await prepared.ca.issueWithKey(cn, { role, ...dates });
      return { certPem: r.certPem, keyPem: r.keyPem, serial: r.serial };
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface MqttAttempt {
  url: string;
  caPem: string;
  clientId: string;
  cred?: Pem;
}

/** Connect with mqtt.js (MQTT 3.1.1, no reconnect); rejects on TLS or CONNACK refusal, 5 s bound. */
export async function mqttConnect(a: MqttAttempt): Promise<MqttClient> {
  const opts: IClientOptions = {
    clientId: a.clientId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ca: a.caPem,
    rejectUnauthorized: true,
    servername: "localhost",
  };
  if (a.cred) {
    opts.cert = a.cred.certPem;
    opts.key = a.cred.keyPem;
  }
  const client = await Promise.race([
    connectAsync(a.url, opts, false),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("connect timed out")), 6000)),
  ]);
  return client;
}

/** Resolves true when the connection is refused, false when it is accepted (then closed). */
export async function isRefused(a: MqttAttempt): Promise<boolean> {
  try {
    const c = await mqttConnect(a);
    await c.endAsync(true);
    return false;
  } catch {
    return true;
  }
}

/** Subscribe and report whether the broker granted it (false for SUBACK 0x80). */
export async function trySubscribe(c: MqttClient, topic: string): Promise<boolean> {
  try {
    const granted = await withTimeout(c.subscribeAsync(topic, { qos: 1 }), 5000, `subscribe ${topic}`);
    return granted.length === 1 && granted[0].qos !== 128;
  } catch (e) {
    // mqtt.js rejects a SUBACK with 0x80 ("Subscribe error"); a timeout is a real failure
    if (/timed out/.test((e as Error).message)) throw e;
    return false;
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]);
}

/** Wait for the first message on a topic (already subscribed). */
export function nextMessage(c: MqttClient, topic: string, ms = 5000): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve) => {
      const on = (t: string, payload: Buffer): void => {
        if (t === topic) {
          c.off("message", on);
          resolve(payload.toString("utf8"));
        }
      };
      c.on("message", on);
    }),
    ms,
    `message on ${topic}`,
  );
}

/** Resolves when the client is closed by the broker (true) or stays open for `ms` (false). */
export function closedWithin(c: MqttClient, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (!c.connected) return resolve(true);
    const t = setTimeout(() => {
      c.off("close", onClose);
      resolve(false);
    }, ms);
    const onClose = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    c.once("close", onClose);
  });
}
