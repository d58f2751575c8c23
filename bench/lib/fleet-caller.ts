/**
 * One call to every device of a fleet over one MQTT connection, the way a caller must do it through
 * mosquitto: a window of requests in flight (mosquitto queues at most `max_queued_messages`, 1000 by
 * default, per client and silently drops the rest), answers matched by id, each request bounded by a
 * timeout so a lost answer is counted, never waited for forever.
 */
import type { MqttClient } from "mqtt";
import { performance } from "node:perf_hooks";

export interface FanOutResult {
  answered: number;
  errors: number;
  lost: number;
  ms: number;
}

export async function callEveryDevice(client: MqttClient, src: string, ids: string[], o: { method: string; window: number; timeoutMs: number }): Promise<FanOutResult> {
  const pending = new Map<number, { resolve: (ok: boolean) => void; timer: NodeJS.Timeout }>();
  const onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== `${src}/rpc`) return;
    try {
      const f = JSON.parse(payload.toString()) as { id?: number; error?: unknown };
      const p = f.id === undefined ? undefined : pending.get(Number(f.id));
      if (!p) return;
      pending.delete(Number(f.id));
      clearTimeout(p.timer);
      p.resolve(f.error === undefined);
    } catch {
      // a malformed answer counts as lost when its request times out
    }
  };
  client.on("message", onMessage);
  await client.subscribeAsync(`${src}/rpc`, { qos: 1 });
  let answered = 0;
  let errors = 0;
  let lost = 0;
  let next = 0;
  let id = 1_100_000_000_000;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const dev = ids[next++];
      const reqId = ++id;
      const outcome = await new Promise<boolean | undefined>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(reqId);
          resolve(undefined);
        }, o.timeoutMs);
        pending.set(reqId, { resolve, timer });
        client.publish(`${dev}/rpc`, JSON.stringify({ id: reqId, src, dst: dev, method: o.method }), { qos: 1 });
      });
      if (outcome === undefined) lost++;
      else if (outcome) answered++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.window, ids.length) }, worker));
  const ms = performance.now() - t0;
  client.off("message", onMessage);
  await client.unsubscribeAsync(`${src}/rpc`);
  return { answered, errors, lost, ms };
}
