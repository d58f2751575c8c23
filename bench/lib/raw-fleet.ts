/**
 * The fleet baseline, run as its own process: N bare MQTT.js clients with mutual TLS (the same library
 * and broker as the `mos device --count N` agents), each subscribed to `<id>/rpc` and answering every
 * request frame on `<src>/rpc` with a fixed result — what a device does on MQTT, without RPC or agent.
 *   node --import tsx bench/lib/raw-fleet.ts PORT COUNT PREFIX CA CERT KEY
 * Prints `READY` when every client is connected and subscribed.
 */
import { readFileSync } from "node:fs";

const [port, countText, prefix, caFile, certFile, keyFile] = process.argv.slice(2);
const count = Number(countText);
const tls = { ca: readFileSync(caFile), cert: readFileSync(certFile), key: readFileSync(keyFile) };

async function main(): Promise<void> {
  const { connectAsync } = await import("mqtt");
  let next = 1;
  const worker = async (): Promise<void> => {
    while (next <= count) {
      const id = `${prefix}_${String(next++).padStart(6, "0")}`;
      const client = await connectAsync(`mqtts://127.0.0.1:${port}`, { clientId: id, reconnectPeriod: 0, keepalive: 60, ...tls, servername: "localhost" }, false);
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      client.on("message", (_t, payload) => {
        try {
          const f = JSON.parse(payload.toString()) as { id?: unknown; src?: unknown };
          if (typeof f.src !== "string" || f.id === undefined) return;
          client.publish(`${f.src}/rpc`, JSON.stringify({ id: f.id, src: id, dst: f.src, result: { id, app: "raw" } }), { qos: 1 });
        } catch {
          // not a frame: drop
        }
      });
      await client.subscribeAsync(`${id}/rpc`, { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  process.stdout.write("READY\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`raw-fleet: ${(e as Error).message}\n`);
  process.exit(1);
});
process.on("SIGTERM", () => process.exit(0));
