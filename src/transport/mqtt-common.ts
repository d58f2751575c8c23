/**
 * What both ends of the MQTT transport share: TLS settings (with secure contexts shared between
 * connections that use the same certificates, so 10,000 device ends in one process do not hold 10,000
 * copies), opening one MQTT connection with a bounded wait whose failure names its cause, and the mapping
 * of connection failures to typed errors (TlsError for handshake problems, TransportError for refusals).
 */
import type { ConnectionOptions, SecureContext } from "node:tls";
import { AbortedError, IoError, RemosError, TlsError, TransportError, errorMessage } from "../errors.js";
import { debug } from "../log.js";
import type { TlsPeerInfo } from "../rpc/channel.js";
import { ConnackError, MqttSession, type MqttSessionOptions } from "./mqtt-session.js";
import { MqttProtocolError } from "./mqtt-wire.js";
import type { TlsFileOptions } from "./options.js";

/**
 * Largest frame the remos MQTT channels carry, both ends: 256 KiB. Real firmware only accepts incoming
 * messages up to `mqtt.recv_mbuf_limit` (3072 bytes by default, 8192 on esp32/cc3220 with the aws lib).
 */
export const MQTT_MAX_FRAME_SIZE = 256 * 1024;

/** TLS for one MQTT connection, files already read. */
export type MqttTls = Omit<TlsFileOptions, "certFile" | "keyFile" | "caFile">;

/** Read a PEM file named by a flag; an unreadable file is an IoError naming the flag. */
export function readPem(path: string, what: string): Buffer {
  try {
    return process.getBuiltinModule("node:fs").readFileSync(path);
  } catch (e) {
    throw new IoError(`cannot read ${what} ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

const contexts = new Map<string, SecureContext>();
const CONTEXT_CACHE_LIMIT = 256;

/**
 * A secure context for these certificates, shared with every other connection that uses the same ones.
 * Without a CA the system roots are used (server verification stays on unless `insecure`).
 */
export function sharedSecureContext(t: MqttTls): SecureContext {
  // node:crypto and node:tls are taken here, not imported: a plain mqtt:// connection loads neither
  const h = process.getBuiltinModule("node:crypto").createHash("sha256");
  const part = (v: string | Buffer | undefined): void => {
    h.update(v === undefined ? "-" : `${Buffer.byteLength(v)}:`);
    if (v !== undefined) h.update(v);
  };
  part(t.cert);
  part(t.key);
  for (const c of t.ca === undefined ? [undefined] : Array.isArray(t.ca) ? t.ca : [t.ca]) part(c);
  const key = h.digest("hex");
  let ctx = contexts.get(key);
  if (!ctx) {
    try {
      ctx = process.getBuiltinModule("node:tls").createSecureContext({
        ...(t.cert !== undefined ? { cert: t.cert } : {}),
        ...(t.key !== undefined ? { key: t.key } : {}),
        ...(t.ca !== undefined ? { ca: t.ca } : {}),
      });
    } catch (e) {
      throw new TlsError(`bad TLS certificate or key: ${errorMessage(e)}`, { cause: e });
    }
    if (contexts.size >= CONTEXT_CACHE_LIMIT) {
      const oldest = contexts.keys().next().value;
      if (oldest !== undefined) contexts.delete(oldest);
    }
    contexts.set(key, ctx);
  }
  return ctx;
}

/** The Node TLS options of an MQTT connection (for mqtts and wss alike). */
export function tlsClientOptions(t: MqttTls, host: string): ConnectionOptions {
  const o: ConnectionOptions = {
    secureContext: sharedSecureContext(t),
    rejectUnauthorized: t.insecure !== true,
  };
  const servername = t.servername ?? (/^[\d.]+$|:/.test(host) ? undefined : host);
  if (servername) o.servername = servername;
  if (t.alpn?.length) o.ALPNProtocols = t.alpn;
  return o;
}

const CA_HINT = "; pass the broker's CA with --ca-cert-file (or, knowing the risk, --insecure)";
const VERIFY_CAUSES: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server certificate is signed by an unknown CA" + CA_HINT,
  UNABLE_TO_GET_ISSUER_CERT: "the server certificate is signed by an unknown CA" + CA_HINT,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the server certificate is signed by an unknown CA" + CA_HINT,
  SELF_SIGNED_CERT_IN_CHAIN: "the server certificate is signed by an unknown CA (its chain ends in an untrusted root)" + CA_HINT,
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server certificate is self-signed and not trusted (unknown CA)" + CA_HINT,
  CERT_HAS_EXPIRED: "the server certificate has expired",
  CERT_NOT_YET_VALID: "the server certificate is not yet valid (check the clock)",
  CERT_REVOKED: "the server certificate is revoked",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server certificate does not match the host name",
  CERT_SIGNATURE_FAILURE: "the server certificate signature is invalid",
};

const ALERT_CAUSES: Array<[RegExp, string]> = [
  [/CERTIFICATE_REQUIRED|PEER_DID_NOT_RETURN_A_CERTIFICATE/, "the broker requires a client certificate and none was given (use --cert-file/--key-file)"],
  [/ALERT_UNKNOWN_CA/, "the broker does not trust the CA of our client certificate"],
  [/ALERT_CERTIFICATE_EXPIRED/, "the broker refused our client certificate: it has expired"],
  [/ALERT_CERTIFICATE_REVOKED/, "the broker refused our client certificate: it is revoked"],
  [/ALERT_BAD_CERTIFICATE|ALERT_UNSUPPORTED_CERTIFICATE|ALERT_DECRYPT_ERROR/, "the broker refused our client certificate"],
  [/ALERT_HANDSHAKE_FAILURE|ALERT_PROTOCOL_VERSION|NO_PROTOCOLS_AVAILABLE|WRONG_VERSION_NUMBER/, "TLS handshake failed (is this a TLS port?)"],
];

const CONNACK_CAUSES: Record<number, string> = {
  1: "unacceptable protocol version",
  2: "client identifier rejected",
  3: "server unavailable",
  4: "bad user name or password",
  5: "not authorized",
  128: "unspecified error",
  133: "client identifier not valid",
  134: "bad user name or password",
  135: "not authorized",
  136: "server unavailable",
  138: "banned",
  140: "bad authentication method",
};

/** Turn whatever a failed MQTT connection threw into a typed error that names the cause. */
export function mapConnectError(e: unknown, peer: string, tlsUsed: boolean): RemosError {
  // Broken MQTT from the broker (or a CONNECT MQTT cannot carry): named with the broker, as mqtt.js's were.
  if (e instanceof MqttProtocolError) return new TransportError(`${peer}: ${e.message}`, { cause: e });
  if (e instanceof RemosError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  if (err instanceof ConnackError) {
    const code = err.returnCode;
    return new TransportError(`${peer}: broker refused the connection, return code ${code} (${CONNACK_CAUSES[code] ?? err.message})`, { cause: err });
  }
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code === "string") {
    const verify = VERIFY_CAUSES[code];
    if (verify) return new TlsError(`${peer}: ${verify} (${code})`, { cause: err });
    if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) {
      const hit = ALERT_CAUSES.find(([re]) => re.test(code));
      return new TlsError(`${peer}: ${hit ? hit[1] : "TLS handshake failed"} (${code})`, { cause: err });
    }
    if (code === "ECONNREFUSED") return new TransportError(`${peer}: connection refused (is the broker running?)`, { cause: err });
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return new TransportError(`${peer}: host not found`, { cause: err });
    if (code === "ECONNRESET" || code === "EPIPE") {
      const hint = tlsUsed ? " during the TLS handshake (not a TLS port? or the broker refused our client certificate)" : " (a TLS-only port? then use mqtts://)";
      return new TransportError(`${peer}: connection reset${hint}`, { cause: err });
    }
    return new TransportError(`${peer}: ${err.message} (${code})`, { cause: err });
  }
  if (/TLS not authorized/i.test(err.message)) return new TlsError(`${peer}: the server certificate is not trusted`, { cause: err });
  return new TransportError(`${peer}: ${err.message}`, { cause: err });
}

export interface OpenOptions {
  /** Bound on TCP + TLS + CONNACK, in ms. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** How the broker is named in messages and logs (no credentials). */
  peer: string;
  tlsUsed: boolean;
}

/**
 * Open one MQTT connection (mqtt-session.ts): resolve on an accepting CONNACK; reject, with a typed error
 * that names the first cause (refused, TLS failure, CONNACK return code), on an error or a close before
 * it, on the timeout (bounding TCP + TLS + CONNACK) or on the AbortSignal.
 */
export function openMqtt(opts: MqttSessionOptions, o: OpenOptions): Promise<MqttSession> {
  if (o.signal?.aborted) return Promise.reject(new AbortedError(`connecting to ${o.peer} aborted`));
  return new Promise<MqttSession>((resolve, reject) => {
    let session: MqttSession | undefined;
    let done = false;
    const finish = (e: unknown, s?: MqttSession): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      if (s) resolve(s);
      else {
        session?.destroy();
        reject(mapConnectError(e, o.peer, o.tlsUsed));
      }
    };
    const onAbort = (): void => finish(new AbortedError(`connecting to ${o.peer} aborted`));
    const timer = setTimeout(() => {
      finish(session?.error ?? new TransportError(`${o.peer}: no answer from the broker within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    debug("mqtt", "connecting", { broker: o.peer, clientId: opts.clientId });
    MqttSession.connect(opts, (s) => (session = s)).then(
      (s) => finish(undefined, s),
      (e: unknown) => finish(e),
    );
  });
}

/** `%.*s`-style topic format of the firmware (`rpc.mqtt.sub_topic`/`pub_topic`): `%.*s` or `%s` → arg. */
export function formatTopic(format: string, arg: string): string {
  if (!format.includes("%")) return format;
  return format.replace(/%(\.\*)?s/, () => arg);
}

/** End an MQTT connection: politely (DISCONNECT after in-flight publishes), but within about a second. */
export async function endClient(client: MqttSession): Promise<void> {
  await client.end(500);
}

/** Bound a promise; on expiry reject with a TransportError carrying `message`. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TransportError(message)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** What the TLS socket under an MQTT connection tells about the broker (undefined when not TLS over TCP). */
export function peerTls(client: MqttSession): TlsPeerInfo | undefined {
  const s = client.socket as unknown as { getPeerCertificate?: () => Record<string, unknown>; authorized?: boolean; getProtocol?: () => string | null } | undefined;
  if (typeof s?.getPeerCertificate !== "function") return undefined;
  const cert = s.getPeerCertificate() as { subject?: { CN?: string }; issuer?: { CN?: string }; fingerprint256?: string; valid_to?: string };
  const info: TlsPeerInfo = { authorized: s.authorized === true };
  if (cert.subject?.CN) info.subjectCN = cert.subject.CN;
  if (cert.issuer?.CN) info.issuerCN = cert.issuer.CN;
  if (cert.fingerprint256) info.fingerprint256 = cert.fingerprint256;
  if (cert.valid_to) info.validTo = cert.valid_to;
  const protocol = s.getProtocol?.();
  if (protocol) info.protocol = protocol;
  return info;
}
