/**
 * Scripted MQTT "brokers" on 127.0.0.1 for the MQTT client's tests: a TCP one whose `onPacket(socket,
 * packet)` decides what to answer, and a bare WebSocket server (subprotocol `mqtt`) a test scripts itself.
 * Each has `close()`, which drops its connections and stops listening.
 */
import { type AddressInfo, type Server, type Socket, createServer } from "node:net";
import { WebSocketServer } from "ws";
import { MqttParser } from "../../src/transport/mqtt-parser.js";
import type { OversizedPublish, Packet } from "../../src/transport/mqtt-wire.js";

export type OnPacket = (s: Socket, p: Packet | OversizedPublish) => void;

export interface ScriptedBroker {
  port: number;
  server: Server;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

export async function scriptedBroker(onPacket: OnPacket): Promise<ScriptedBroker> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    const parser = new MqttParser(1 << 20);
    s.on("data", (d) => parser.push(d).forEach((p) => onPacket(s, p)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function scriptedWsBroker(): Promise<{ wss: WebSocketServer; url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: () => "mqtt" });
  await new Promise<void>((r) => wss.once("listening", r));
  return {
    wss,
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/mqtt`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}
