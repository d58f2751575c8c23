/**
 * A TCP proxy on 127.0.0.1 that adds a fixed one-way delay to every chunk in each direction (so a round
 * trip gains 2×delay), keeping byte order. Used to measure transfers over a 50 ms round-trip link without
 * netem or root.
 */
import { type Server, type Socket, createConnection, createServer } from "node:net";

export interface DelayProxy {
  port: number;
  close(): Promise<void>;
}

function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
  // Each chunk is released delayMs after it arrived; timers fire in order, so order is kept.
  from.on("data", (chunk: Buffer) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, delayMs);
  });
  from.on("end", () => setTimeout(() => to.end(), delayMs));
  from.on("error", () => to.destroy());
}

export async function startDelayProxy(targetPort: number, oneWayDelayMs: number, targetHost = "127.0.0.1"): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    const upstream = createConnection({ host: targetHost, port: targetPort });
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    client.on("close", () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on("close", () => {
      sockets.delete(upstream);
      client.destroy();
    });
    delayedPipe(client, upstream, oneWayDelayMs);
    delayedPipe(upstream, client, oneWayDelayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
