/**
 * The embedded remos MQTT broker (`mos broker`): aedes (MQTT 3.1.1) behind a node TLS server that
 * requires a client certificate signed by the local CA and not on its CRL, with the per-identity policy
 * of src/cloud/policy.ts enforced by the hooks in src/cloud/broker-hooks.ts. Optional MQTT over WSS
 * (path `/mqtt`) with the same TLS rules.
 *
 * Nothing here runs per client beyond aedes's own keep-alive handling: identities are read once per
 * connection and the policy checks are string compares.
 */
import { Aedes } from "aedes";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { type SecureContextOptions, type Server as TlsServer, type TLSSocket, createServer as createTlsServer } from "node:tls";
import { WebSocketServer, createWebSocketStream } from "ws";
import { TransportError } from "../errors.js";
import { debug } from "../log.js";
import { type Hooks, type Refusal, type RefusalListener, makeHooks } from "./broker-hooks.js";

export type { Refusal } from "./broker-hooks.js";

export interface BrokerTls {
  /** CA certificate(s) client certificates must chain to (PEM). */
  caPem: string;
  /** The CA's CRL (PEM `X509 CRL`). */
  crlPem?: string;
  /** The broker's server certificate and key (PEM). */
  certPem: string;
  keyPem: string;
}

export interface BrokerOptions extends BrokerTls {
  /** Address to listen on (default 127.0.0.1; `mos broker` listens on 0.0.0.0). */
  host?: string;
  /** mqtts port (default 8883; 0 = any free port). */
  port?: number;
  /** MQTT over WSS port (path /mqtt); off unless given (0 = any free port). */
  wssPort?: number;
  /** Called for every refused TLS handshake, connect, publish and subscribe. */
  onRefusal?: RefusalListener;
  /** Called when a client connects or disconnects (CN = client id). */
  onClient?: (event: "connect" | "disconnect", clientId: string) => void;
}

export interface RunningBroker {
  readonly host: string;
  readonly port: number;
  readonly wssPort: number | undefined;
  /** `mqtts://HOST:PORT` (with `localhost` for loopback). */
  readonly url: string;
  readonly aedes: Aedes;
  /** Replace the CRL (and CA/server certificate) for new connections, e.g. after `mos ca revoke`. */
  updateTls(tls: Partial<BrokerTls>): void;
  /** Disconnect every client, stop listening. */
  close(): Promise<void>;
}

function secureOptions(t: BrokerTls): SecureContextOptions & { requestCert: true; rejectUnauthorized: true } {
  const o: SecureContextOptions & { requestCert: true; rejectUnauthorized: true } = {
    ca: t.caPem,
    cert: t.certPem,
    key: t.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
  };
  if (t.crlPem) o.crl = t.crlPem;
  return o;
}

function listen(server: TlsServer | HttpsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(new TransportError(`broker cannot listen on ${host}:${port}: ${e.message}`, { cause: e }));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function tlsRefusal(refuse: (r: Refusal) => void, err: Error & { code?: string }, socket: TLSSocket): void {
  let cn: string | undefined;
  try {
    const c = socket.getPeerCertificate?.();
    if (c && typeof c.subject?.CN === "string") cn = c.subject.CN;
  } catch {
    // no certificate to name
  }
  const remote = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? ""}` : "?";
  refuse({ stage: "tls", reason: err.code ? `${err.code}: ${err.message}` : err.message, cn, remote });
}

/** Start the broker; resolves once it listens. */
export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const host = options.host ?? "127.0.0.1";
  const refuse = (r: Refusal): void => {
    if (r.stage === "tls") debug("broker", `refused tls: ${r.reason}`, { ...r });
    options.onRefusal?.(r);
  };
  const hooks: Hooks = makeHooks((r) => options.onRefusal?.(r));
  const aedes = await Aedes.createBroker({
    authenticate: hooks.authenticate,
    authorizePublish: hooks.authorizePublish,
    authorizeSubscribe: hooks.authorizeSubscribe,
  });
  aedes.on("clientReady", (c) => options.onClient?.("connect", c.id));
  aedes.on("clientDisconnect", (c) => options.onClient?.("disconnect", c.id));
  aedes.on("clientError", (c, e) => debug("broker", "client error", { clientId: c.id, error: e.message }));
  aedes.on("connectionError", (c, e) => debug("broker", "connection error", { clientId: c?.id, error: e.message }));

  let tls: BrokerTls = { caPem: options.caPem, crlPem: options.crlPem, certPem: options.certPem, keyPem: options.keyPem };
  const tlsServer = createTlsServer(secureOptions(tls), (socket) => {
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  tlsServer.on("tlsClientError", (err, socket) => tlsRefusal(refuse, err, socket));
  const sockets = new Set<import("node:stream").Duplex>();
  tlsServer.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  let port: number;
  try {
    port = await listen(tlsServer, options.port ?? 8883, host);
  } catch (e) {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw e;
  }

  let https: HttpsServer | undefined;
  let wss: WebSocketServer | undefined;
  let wssPort: number | undefined;
  if (options.wssPort !== undefined) {
    https = createHttpsServer(secureOptions(tls));
    https.on("tlsClientError", (err, socket) => tlsRefusal(refuse, err, socket));
    https.on("connection", (s) => {
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
    });
    wss = new WebSocketServer({ server: https, path: "/mqtt", handleProtocols: (p) => (p.has("mqtt") ? "mqtt" : false) });
    wss.on("connection", (ws, req) => {
      const stream = createWebSocketStream(ws);
      stream.on("error", (e) => debug("broker", "wss stream error", { error: e.message }));
      aedes.handle(stream, req);
    });
    try {
      wssPort = await listen(https, options.wssPort, host);
    } catch (e) {
      tlsServer.close();
      await new Promise<void>((r) => aedes.close(() => r()));
      throw e;
    }
  }

  const urlHost = host === "127.0.0.1" || host === "::1" || host === "0.0.0.0" || host === "::" ? "localhost" : host;
  let closed = false;
  return {
    host,
    port,
    wssPort,
    url: `mqtts://${urlHost}:${port}`,
    aedes,
    updateTls(update) {
      tls = { ...tls, ...update };
      const ctx = secureOptions(tls);
      tlsServer.setSecureContext(ctx);
      https?.setSecureContext(ctx);
      debug("broker", "TLS material reloaded", {});
    },
    async close() {
      if (closed) return;
      closed = true;
      const stopped = Promise.all([
        new Promise<void>((r) => tlsServer.close(() => r())),
        https ? new Promise<void>((r) => https.close(() => r())) : Promise.resolve(),
      ]);
      wss?.close();
      await new Promise<void>((r) => aedes.close(() => r()));
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
}
