/**
 * An RPC-serving MQTT device end on a test broker, and an RpcClient that reaches it through the broker:
 * the set-up of the MQTT device-end suites that probe it with raw clients.
 */
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type MqttDeviceLink, startMqttDevice } from "../../src/transport/mqtt-device.js";
import { connect } from "../../src/transport/mqtt.js";
import type { MosquittoBroker } from "./mosquitto.js";

export async function servedMqttDevice(broker: MosquittoBroker, id: string): Promise<{ device: MqttDeviceLink; client: RpcClient }> {
  const server = new RpcServer({ localIds: [id] });
  const device = await startMqttDevice({
    server: `127.0.0.1:${broker.port}`,
    clientId: id,
    deviceId: id,
    reconnect: { minMs: 100, maxMs: 1000 },
    onChannel: (ch) => server.serve(ch),
  });
  const client = new RpcClient(await connect(new URL(`mqtt://127.0.0.1:${broker.port}/${id}`), { timeoutMs: 5000 }), { timeoutMs: 5000 });
  return { device, client };
}
