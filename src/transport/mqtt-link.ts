/**
 * The byte link under an MQTT session (mqtt-session.ts): TCP (`mqtt://`), TLS (`mqtts://`) or WebSocket
 * (`ws://`, `wss://`, subprotocol `mqtt`, binary messages only; the `ws` library is loaded only for those).
 * Writes are coalesced: the first packet of a tick is written at once, the ones after it in the same tick go
 * out together in one syscall (socket corked until the next tick); over WebSocket, one message per tick.
 * The link reports to its session through `LinkEvents`.
 */
import { type Socket, connect as netConnect } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { coalesceWrites } from "./coalesce.js";
import { MqttProtocolError } from "./mqtt-wire.js";

/** A TCP/TLS socket or a WebSocket carrying MQTT packets. */
export interface Link {
  write(buf: Buffer, done?: (e?: Error | null) => void): void;
  end(): void;
  destroy(): void;
  /** The TCP or TLS socket (for WebSocket links the socket under the WebSocket). */
  readonly socket: Socket | undefined;
  /** Bytes written but not yet handed to the kernel. */
  readonly unsent: number;
}

export interface LinkEvents {
  /** Connected (TCP), handshake done (TLS), or WebSocket open: time for CONNECT. */
  open(): void;
  data(chunk: Buffer): void;
  error(e: Error): void;
  close(): void;
}

/** A link for an `mqtt://` or `mqtts://` URL (throws for other schemes). */
export function openSocketLink(u: URL, tls: ConnectionOptions | undefined, on: LinkEvents): Link {
  const scheme = u.protocol.slice(0, -1);
  if (scheme !== "mqtt" && scheme !== "mqtts") throw new Error(`unsupported MQTT URL scheme ${scheme}://`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(u.port || (scheme === "mqtts" ? 8883 : 1883));
  // node:tls is taken for mqtts only, so a plain mqtt:// connection does not load it
  const socket = scheme === "mqtts" ? process.getBuiltinModule("node:tls").connect({ ...tls, host, port }) : netConnect({ host, port });
  socket.setNoDelay(true);
  const beforeWrite = coalesceWrites(socket, (endTick) => process.nextTick(endTick));
  socket.on(scheme === "mqtts" ? "secureConnect" : "connect", on.open);
  socket.on("data", on.data);
  socket.on("error", on.error);
  socket.on("close", on.close);
  return {
    // The first packet of a tick goes out at once (a lone publish waits for nothing); the small ones after
    // it in the same tick are corked and leave together on the next tick, a big one at once (coalesce.ts).
    write: (buf, done) => {
      beforeWrite(buf.length);
      socket.write(buf, done);
    },
    end: () => socket.end(),
    destroy: () => socket.destroy(),
    socket,
    get unsent() {
      return socket.writableLength;
    },
  };
}

/** A link for a `ws://` or `wss://` URL; `cancelled()` is asked once `ws` is loaded. */
export async function openWebSocketLink(u: URL, tls: ConnectionOptions | undefined, on: LinkEvents, cancelled: () => boolean): Promise<Link> {
  const { WebSocket } = await import("ws");
  if (cancelled()) return { write: () => undefined, end: () => undefined, destroy: () => undefined, socket: undefined, unsent: 0 };
  const ws = new WebSocket(u.href, ["mqtt"], { ...(u.protocol === "wss:" ? tls : {}), perMessageDeflate: false });
  let queue: Buffer[] = [];
  let queued = 0;
  let callbacks: Array<(e?: Error | null) => void> = [];
  /** Send what this tick wrote as one message (also before closing, or DISCONNECT would be lost). */
  const flush = (): void => {
    if (queue.length === 0) return;
    const data = queue.length === 1 ? (queue[0] as Buffer) : Buffer.concat(queue);
    const cbs = callbacks;
    queue = [];
    queued = 0;
    callbacks = [];
    if (ws.readyState !== WebSocket.OPEN) return cbs.forEach((cb) => cb(new Error("WebSocket is not open")));
    ws.send(data, { binary: true }, (e) => cbs.forEach((cb) => cb(e ?? null)));
  };
  const link: Link = {
    write: (b, done) => {
      queue.push(b);
      queued += b.length;
      if (done) callbacks.push(done);
      if (queue.length === 1) process.nextTick(flush);
    },
    end: () => {
      flush();
      ws.close(1000);
    },
    destroy: () => ws.terminate(),
    get socket() {
      return (ws as unknown as { _socket?: Socket })._socket;
    },
    get unsent() {
      return queued + ws.bufferedAmount;
    },
  };
  ws.on("open", () => {
    (link.socket as Socket | undefined)?.setNoDelay(true);
    on.open();
  });
  ws.on("message", (d: Buffer | ArrayBuffer | Buffer[], binary: boolean) => {
    // MQTT over WebSocket is binary messages only (MQTT 3.1.1 §6).
    if (!binary) return on.error(new MqttProtocolError("text WebSocket message"));
    on.data(Buffer.isBuffer(d) ? d : Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d));
  });
  ws.on("error", on.error);
  ws.on("close", on.close);
  return link;
}
