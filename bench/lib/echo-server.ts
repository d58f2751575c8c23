/**
 * The raw-transport baselines' far end, run as its own process (as the device agent is), one transport
 * per process: `node --import tsx bench/lib/echo-server.ts http|ws|mqtt BROKER_URL|serial PATH`.
 * Prints `READY <json>` on stdout once it serves. One tiny protocol on every transport, keyed by the
 * message's first character:
 *   `{...`  echo the message back (the RPC round-trip baseline: same frame bytes each way);
 *   `A...`  answer `a` (an upload chunk acknowledged);
 *   `G<n>`  answer `g` + n bytes (a download chunk).
 * MQTT: requests on `bench/raw/req/<tag>`, answers on `bench/raw/resp/<tag>`, QoS 1 both ways (as RPC).
 * Serial: one message per line.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

const FILL = Buffer.alloc(64 * 1024 * 1024, "x").toString("latin1");

export function answer(msg: string): string {
  const c = msg.charCodeAt(0);
  if (c === 0x41 /* A */) return "a";
  if (c === 0x47 /* G */) return "g" + FILL.slice(0, Number(msg.slice(1)));
  return msg;
}

async function serveHttp(): Promise<object> {
  const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (d: Buffer) => parts.push(d));
    req.on("end", () => {
      const body = Buffer.from(answer(Buffer.concat(parts).toString("latin1")), "latin1");
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(body.length) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as AddressInfo).port };
}

async function serveWs(): Promise<object> {
  const { WebSocketServer } = await import("ws");
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  wss.on("connection", (ws) => ws.on("message", (d: Buffer) => ws.send(answer(d.toString("latin1")))));
  await new Promise<void>((r) => wss.once("listening", () => r()));
  return { port: (wss.address() as AddressInfo).port };
}

async function serveMqtt(url: string): Promise<object> {
  const { connectAsync } = await import("mqtt");
  const client = await connectAsync(url, { clientId: `bench-echo-${process.pid}`, reconnectPeriod: 0 }, false);
  // mqtt.js leaves Nagle on: without this every message waits ~40 ms for the peer's delayed ACK.
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  client.on("message", (topic, payload) => {
    const tag = topic.slice("bench/raw/req/".length);
    client.publish(`bench/raw/resp/${tag}`, answer(payload.toString("latin1")), { qos: 1 });
  });
  await client.subscribeAsync("bench/raw/req/#", { qos: 1 });
  return {};
}

async function serveSerial(path: string): Promise<object> {
  const { SerialPort } = await import("serialport");
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  let buf = "";
  port.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) port.write(answer(line) + "\n");
    }
  });
  return {};
}

const [kind, arg] = process.argv.slice(2);
const start = kind === "http" ? serveHttp() : kind === "ws" ? serveWs() : kind === "mqtt" ? serveMqtt(arg) : kind === "serial" ? serveSerial(arg) : Promise.reject(new Error(`unknown kind ${kind}`));
start.then(
  (info) => process.stdout.write(`READY ${JSON.stringify(info)}\n`),
  (e: unknown) => {
    process.stderr.write(`echo-server: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
process.on("SIGTERM", () => process.exit(0));
