/**
 * The aedes hooks of the remos broker: `authenticate` (the TLS client certificate is the identity; the
 * MQTT client id must equal its CN; only device and operator roles get in), `authorizePublish` and
 * `authorizeSubscribe` (src/cloud/policy.ts). Every refusal is reported with who (CN, client id, remote
 * address) and why.
 *
 * The certificate itself was already verified by TLS (CA, CRL, validity) before aedes saw a byte.
 */
import type { AuthenticateError, Client, PublishPacket, Subscription } from "aedes";
import type { TLSSocket } from "node:tls";
import { debug } from "../log.js";
import { type Identity, mayConnect, mayPublish, maySubscribe } from "./policy.js";
import { roleFromPeerSubject } from "../pki/x509.js";

export interface Refusal {
  stage: "tls" | "connect" | "publish" | "subscribe";
  reason: string;
  cn?: string;
  clientId?: string;
  remote?: string;
  topic?: string;
}

export type RefusalListener = (r: Refusal) => void;

/** The identity of each authenticated client; looked up on every publish/subscribe. */
const identities = new WeakMap<Client, Identity>();

export function identityOf(client: Client): Identity | undefined {
  return identities.get(client);
}

function tlsSocketOf(client: Client): TLSSocket | undefined {
  const conn = client.conn as Partial<TLSSocket> | undefined;
  if (conn && typeof conn.getPeerCertificate === "function") return conn as TLSSocket;
  const sock = client.req?.socket as Partial<TLSSocket> | undefined; // MQTT over WSS
  if (sock && typeof sock.getPeerCertificate === "function") return sock as TLSSocket;
  return undefined;
}

export function remoteOf(client: Client): string {
  const s = (tlsSocketOf(client) ?? client.conn) as { remoteAddress?: string; remotePort?: number } | undefined;
  return s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? ""}` : "?";
}

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export interface Hooks {
  authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (e: AuthenticateError | null, ok: boolean | null) => void): void;
  authorizePublish(client: Client | null, packet: PublishPacket, cb: (e?: Error | null) => void): void;
  authorizeSubscribe(client: Client, sub: Subscription, cb: (e: Error | null, sub?: Subscription | null) => void): void;
}

export function makeHooks(refused: RefusalListener): Hooks {
  const refuse = (r: Refusal): void => {
    debug("broker", `refused ${r.stage}: ${r.reason}`, { ...r });
    refused(r);
  };
  return {
    authenticate(client, _username, _password, done) {
      const sock = tlsSocketOf(client);
      const remote = remoteOf(client);
      if (!sock || !sock.authorized) {
        refuse({ stage: "connect", reason: "no verified client certificate", clientId: client.id, remote });
        return done(authError("not authorized", 5), false);
      }
      const cert = sock.getPeerCertificate();
      const cn = typeof cert?.subject?.CN === "string" ? cert.subject.CN : undefined;
      const role = roleFromPeerSubject(cert?.subject as { OU?: string | string[] } | undefined);
      if (!cn) {
        refuse({ stage: "connect", reason: "certificate has no CN", clientId: client.id, remote });
        return done(authError("not authorized", 5), false);
      }
      if (!mayConnect(role)) {
        refuse({ stage: "connect", reason: `certificate role ${role ?? "(none)"} may not use the broker`, cn, clientId: client.id, remote });
        return done(authError("not authorized", 5), false);
      }
      if (client.id !== cn) {
        refuse({ stage: "connect", reason: "client id differs from the certificate CN", cn, clientId: client.id, remote });
        return done(authError("identifier rejected", 2), false);
      }
      identities.set(client, { cn, role });
      done(null, true);
    },

    authorizePublish(client, packet, cb) {
      if (!client) return cb(null); // the broker's own messages
      const id = identities.get(client);
      if (id && mayPublish(id, packet.topic)) return cb(null);
      refuse({ stage: "publish", reason: "topic not allowed for this identity", cn: id?.cn, clientId: client.id, remote: remoteOf(client), topic: packet.topic });
      cb(new Error("publish not authorized"));
    },

    authorizeSubscribe(client, sub, cb) {
      const id = identities.get(client);
      if (id && maySubscribe(id, sub.topic)) return cb(null, sub);
      refuse({ stage: "subscribe", reason: "topic filter not allowed for this identity", cn: id?.cn, clientId: client.id, remote: remoteOf(client), topic: sub.topic });
      // MQTT 3.1.1: answer the SUBACK with 0x80 (failure) for this filter, keep the connection.
      cb(null, null);
    },
  };
}
