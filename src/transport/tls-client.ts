/**
 * Client-side TLS for the HTTP and WebSocket transports (https://, wss://, and the device's outbound
 * wss:// link): turns `--ca-cert-file`/`--cert-file`/`--key-file`/insecure options into Node TLS options
 * (server verification ON unless `insecure`), and turns Node's link and TLS failures into typed errors
 * whose message names the cause in words ("server certificate is not trusted (unknown CA)", "certificate
 * has expired", "hostname mismatch"...). Also reads the peer-certificate summary for `ChannelInfo.tls`.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import type * as TlsModule from "node:tls";
import type { ConnectionOptions, TLSSocket } from "node:tls";
import { IoError, RemosError, TlsError, TransportError, errorMessage } from "../errors.js";
import type { TlsPeerInfo } from "../rpc/channel.js";
import type { TlsFileOptions } from "./options.js";

/**
 * node:tls is required only inside the server-name check (which runs during a handshake, when TLS is
 * loaded anyway): importing this module for its error mapping (plain http://, ws://) does not load TLS.
 */
const nodeRequire = createRequire(import.meta.url);

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new IoError(`cannot read ${what} file ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Node TLS connection options for a client talking to `host`. The server name (SNI and the name the
 * certificate must match) comes from the URL host unless `tls.servername` overrides it — mos forgets it
 * for wss:// (spec §10); remos does not.
 */
export function clientTlsOptions(tls: TlsFileOptions | undefined, host: string): ConnectionOptions {
  const o: ConnectionOptions = { rejectUnauthorized: !tls?.insecure };
  const bare = host.startsWith("[") ? host.slice(1, -1) : host;
  const servername = tls?.servername ?? bare;
  // SNI must not carry an IP address; certificate identity is still checked against the host.
  if (servername && isIP(servername) === 0) o.servername = servername;
  if (tls?.servername) {
    const name = tls.servername;
    o.checkServerIdentity = (_host, cert) => (nodeRequire("node:tls") as typeof TlsModule).checkServerIdentity(name, cert);
  }
  if (tls?.caFile) o.ca = readPem(tls.caFile, "CA certificate");
  else if (tls?.ca !== undefined) o.ca = tls.ca;
  if (tls?.certFile) o.cert = readPem(tls.certFile, "client certificate");
  else if (tls?.cert !== undefined) o.cert = tls.cert;
  if (tls?.keyFile) o.key = readPem(tls.keyFile, "client key");
  else if (tls?.key !== undefined) o.key = tls.key;
  if (tls?.alpn?.length) o.ALPNProtocols = tls.alpn;
  return o;
}

const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/** The cause of a TLS failure in words, or undefined when `e` is not a TLS failure. */
export function tlsFailureCause(e: unknown): string | undefined {
  const err = e as { code?: unknown; message?: unknown; reason?: unknown };
  const code = typeof err?.code === "string" ? err.code : "";
  const message = typeof err?.message === "string" ? err.message : "";
  if (UNTRUSTED.has(code)) return `server certificate is not trusted (unknown CA): ${code}; pass its CA with --ca-cert-file (or, knowing the risk, --insecure)`;
  if (code === "CERT_HAS_EXPIRED") return "server certificate has expired (certificate has expired)";
  if (code === "CERT_NOT_YET_VALID") return "server certificate is not yet valid";
  if (code === "CERT_REVOKED") return "server certificate has been revoked";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return `hostname mismatch: ${message}`;
  if (code === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") {
    return "the server requires a client certificate (pass --cert-file and --key-file)";
  }
  if (code === "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA") return "the server does not trust our client certificate (unknown CA)";
  if (code === "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED") return "the server says our client certificate has expired";
  if (code === "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE" || code === "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR") {
    return "the server refused our client certificate";
  }
  if (code === "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED") return "the server says our client certificate is revoked";
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER") return "the server does not speak TLS on this port (wrong version number)";
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) return `TLS handshake failed: ${message || code}`;
  return undefined;
}

/**
 * A link-level failure as a typed error: TlsError for TLS, TransportError for the rest (refused, reset,
 * unresolvable host...). RemosErrors pass through unchanged.
 */
export function linkError(e: unknown, peer: string): RemosError {
  if (e instanceof RemosError) return e;
  const tls = tlsFailureCause(e);
  if (tls) return new TlsError(`TLS with ${peer} failed: ${tls}`, { cause: e });
  const code = (e as { code?: unknown })?.code;
  const words =
    code === "ECONNREFUSED"
      ? "connection refused"
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? "host not found"
        : code === "ECONNRESET" || code === "EPIPE"
          ? "connection reset by the peer"
          : code === "ETIMEDOUT"
            ? "connection timed out"
            : code === "EHOSTUNREACH" || code === "ENETUNREACH"
              ? "host unreachable"
              : errorMessage(e);
  return new TransportError(`link to ${peer} failed: ${words}`, { cause: e });
}

/**
 * A server that refuses a client certificate after a TLS 1.3 handshake (Node servers with a cert from an
 * unknown CA) just drops the connection, so the client sees a reset rather than an alert. When the link
 * breaks that way right after the handshake and before any answer, and we presented a certificate, say so.
 */
export function refusedAfterHandshake(e: unknown, peer: string, handshakeDone: boolean, sentClientCert: boolean): TlsError | undefined {
  const code = (e as { code?: unknown })?.code;
  const reset = code === "ECONNRESET" || code === "EPIPE" || /socket hang up/i.test(errorMessage(e));
  if (!reset || !handshakeDone || !sentClientCert) return undefined;
  return new TlsError(
    `TLS with ${peer} failed: the server closed the connection right after the handshake; it probably refused our client certificate (unknown CA, expired or revoked)`,
    { cause: e },
  );
}

/** True when the options carry a client certificate. */
export function hasClientCert(tls: TlsFileOptions | undefined): boolean {
  return !!(tls?.certFile || tls?.cert);
}

/** The summary of the peer certificate of a TLS socket for `ChannelInfo.tls`. */
export function tlsPeerInfo(socket: TLSSocket): TlsPeerInfo {
  const info: TlsPeerInfo = { authorized: socket.authorized };
  const protocol = socket.getProtocol();
  if (protocol) info.protocol = protocol;
  const cert = socket.getPeerCertificate();
  if (cert && Object.keys(cert).length > 0) {
    const cn = firstString(cert.subject?.CN);
    if (cn) info.subjectCN = cn;
    const issuer = firstString(cert.issuer?.CN);
    if (issuer) info.issuerCN = issuer;
    if (cert.fingerprint256) info.fingerprint256 = cert.fingerprint256;
    if (cert.valid_to) info.validTo = cert.valid_to;
  }
  return info;
}

function firstString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `ip:port` for a socket address, IPv6 in brackets, IPv4-mapped IPv6 shown as IPv4. */
export function formatPeer(address: string | undefined, port: number | undefined): string {
  let a = address ?? "?";
  if (a.startsWith("::ffff:") && isIP(a.slice(7)) === 4) a = a.slice(7);
  return isIP(a) === 6 ? `[${a}]:${port ?? "?"}` : `${a}:${port ?? "?"}`;
}
