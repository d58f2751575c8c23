/**
 * One transport set up twice for a benchmark: the remos path (a `mos device` agent process reached with
 * the API's connect()) and the raw path (bench/lib/echo-server.ts reached with the standard library for the transport, raw-clients.ts), both on
 * loopback, optionally through a delaying proxy (bench/lib/delay-proxy.ts) that adds `rttMs` of round
 * trip. MQTT goes through one mosquitto (`set_tcp_nodelay true`) for both; serial through socat ptys.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Device } from "../../src/api/device.js";
import { startPtyPair } from "../../test/helpers/pty.js";
import { startAgent, startEcho } from "./children.js";
import { startDelayProxy } from "./delay-proxy.js";
import { startBroker } from "./mosquitto.js";
import { type RawLink, rawHttp, rawMqtt, rawSerial, rawWs } from "./raw-clients.js";
import { ROOT } from "./report.js";

/**
 * The remos API as users run it: the built dist/ (`npm run bench` builds first), not src/ through the
 * bench's TypeScript loader (which wraps every function it creates, closures per call included).
 */
const api = (await import(pathToFileURL(join(ROOT, "dist", "index.js")).href)) as typeof import("../../src/index.js");
const connect = api.connect;

export type TransportKind = "http" | "ws" | "mqtt" | "serial";
/** All four, or those named in BENCH_TRANSPORTS (e.g. `mqtt,ws`). */
export const TRANSPORTS: TransportKind[] = ((process.env.BENCH_TRANSPORTS ?? "http,ws,mqtt,serial").split(",") as TransportKind[]).filter((k) =>
  ["http", "ws", "mqtt", "serial"].includes(k),
);

export interface TransportFixture {
  kind: TransportKind;
  device: Device;
  raw: RawLink;
  /**
   * The far ends' process ids (agent, echo server) and the broker's (0 without one), for CPU accounting
   * and profiling.
   */
  pids: { agent: number; echo: number; broker: number };
  stop(): Promise<void>;
}

/** Call until the device answers (an MQTT device subscribes a moment after it starts). */
export async function waitReady(dev: Device, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await dev.call("RPC.Ping", undefined, { timeout: 1000 });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
  }
}

export async function setupTransport(kind: TransportKind, o: { rttMs?: number } = {}): Promise<TransportFixture> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const oneWay = (o.rttMs ?? 0) / 2;
    const via = async (port: number): Promise<number> => {
      if (!oneWay) return port;
      const p = await startDelayProxy(port, oneWay);
      stops.push(p.close);
      return p.port;
    };
    let device: Device;
    let raw: RawLink;
    const pids = { agent: 0, echo: 0, broker: 0 };
    if (kind === "serial") {
      if (oneWay) throw new Error("no delayed serial link (a pty is not TCP)");
      const devPty = await startPtyPair();
      stops.push(devPty.stop);
      const agent = await startAgent(["--serial", devPty.b, "--http-listen", "off"]);
      stops.push(agent.stop);
      pids.agent = agent.proc.pid ?? 0;
      device = await connect(devPty.a, { noPacing: true, timeoutMs: 30_000 });
      const rawPty = await startPtyPair();
      stops.push(rawPty.stop);
      const echo = await startEcho("serial", rawPty.b);
      stops.push(echo.stop);
      pids.echo = echo.pid;
      raw = await rawSerial(rawPty.a);
    } else if (kind === "mqtt") {
      const broker = await startBroker();
      stops.push(broker.stop);
      pids.broker = broker.pid ?? 0;
      const agent = await startAgent(["--http-listen", "off", "--set", "mqtt.enable=true", "--set", `mqtt.server=127.0.0.1:${broker.port}`]);
      stops.push(agent.stop);
      pids.agent = agent.proc.pid ?? 0;
      const port = await via(broker.port);
      device = await connect(`mqtt://127.0.0.1:${port}/${agent.id}`, { timeoutMs: 30_000 });
      const echo = await startEcho("mqtt", broker.url);
      stops.push(echo.stop);
      pids.echo = echo.pid;
      raw = await rawMqtt(`mqtt://127.0.0.1:${port}`, `t${process.pid}`);
    } else {
      const agent = await startAgent(["--http-listen", "127.0.0.1:0"]);
      stops.push(agent.stop);
      pids.agent = agent.proc.pid ?? 0;
      const devPort = await via(Number(new URL(agent.url).port));
      device = await connect(`${kind}://127.0.0.1:${devPort}/rpc`, { timeoutMs: 30_000 });
      const echo = await startEcho(kind);
      stops.push(echo.stop);
      pids.echo = echo.pid;
      const rawPort = await via(echo.info.port as number);
      raw = kind === "http" ? rawHttp(rawPort) : await rawWs(rawPort);
    }
    const dev = device;
    const link = raw;
    stops.push(() => dev.close());
    stops.push(() => link.close());
    await waitReady(dev);
    return { kind, device: dev, raw: link, pids, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
