/**
 * Client ends of the raw-transport baselines (bench/lib/echo-server.ts is the far end): the standard Node
 * library for each transport, doing the same round trip without RPC — node:http keep-alive POST, one `ws`
 * socket, an MQTT.js client through the same broker with QoS 1, a serialport line link. remos uses `ws` and
 * serialport too; its HTTP client connections and its MQTT client are its own code (docs/BENCHMARKS.md says
 * what that changes). Answers come back in order on ws/mqtt/serial, so a FIFO of waiters matches them.
 */
import http from "node:http";

export interface RawLink {
  request(msg: string): Promise<string>;
  close(): Promise<void>;
}

/** Same connection limit as the remos HTTP client (HTTP_MAX_SOCKETS), so 64 in flight queue the same way. */
export function rawHttp(port: number, maxSockets = 32): RawLink {
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  return {
    request: (msg) =>
      new Promise((resolve, reject) => {
        const body = Buffer.from(msg, "latin1");
        const req = http.request(
          { host: "127.0.0.1", port, method: "POST", path: "/rpc", agent, headers: { "Content-Type": "application/json", "Content-Length": body.length } },
          (res) => {
            const parts: Buffer[] = [];
            res.on("data", (d: Buffer) => parts.push(d));
            res.on("end", () => resolve(Buffer.concat(parts).toString("latin1")));
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(body);
      }),
    close: async () => agent.destroy(),
  };
}

class Fifo {
  private waiters: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private head = 0;
  push(resolve: (s: string) => void, reject: (e: Error) => void): void {
    this.waiters.push({ resolve, reject });
  }
  deliver(s: string): void {
    const w = this.waiters[this.head++];
    if (this.head > 4096) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
    w?.resolve(s);
  }
  fail(e: Error): void {
    for (const w of this.waiters.slice(this.head)) w.reject(e);
    this.waiters = [];
    this.head = 0;
  }
}

export async function rawWs(port: number): Promise<RawLink> {
  const { WebSocket } = await import("ws");
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const fifo = new Fifo();
  ws.on("message", (d: Buffer) => fifo.deliver(d.toString("latin1")));
  ws.on("close", () => fifo.fail(new Error("ws closed")));
  return {
    request: (msg) =>
      new Promise((resolve, reject) => {
        fifo.push(resolve, reject);
        ws.send(msg);
      }),
    close: async () => ws.close(),
  };
}

export async function rawMqtt(url: string, tag: string): Promise<RawLink> {
  const { connectAsync } = await import("mqtt");
  const client = await connectAsync(url, { clientId: `bench-raw-${tag}`, reconnectPeriod: 0 }, false);
  // mqtt.js leaves Nagle on: without this every message waits ~40 ms for the peer's delayed ACK.
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  const fifo = new Fifo();
  client.on("message", (_t, p) => fifo.deliver(p.toString("latin1")));
  await client.subscribeAsync(`bench/raw/resp/${tag}`, { qos: 1 });
  return {
    request: (msg) =>
      new Promise((resolve, reject) => {
        fifo.push(resolve, reject);
        client.publish(`bench/raw/req/${tag}`, msg, { qos: 1 });
      }),
    close: () => client.endAsync(),
  };
}

export async function rawSerial(path: string): Promise<RawLink> {
  const { SerialPort } = await import("serialport");
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  const fifo = new Fifo();
  let buf = "";
  port.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      fifo.deliver(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return {
    request: (msg) =>
      new Promise((resolve, reject) => {
        fifo.push(resolve, reject);
        port.write(msg + "\n");
      }),
    close: () => new Promise<void>((r) => port.close(() => r())),
  };
}
