/**
 * Node's link and TLS failures as typed errors whose message names the cause in words ("server
 * certificate is not trusted (unknown CA)", "certificate has expired", "hostname mismatch",
 * "connection refused"...). Split from tls-client.ts (which re-exports it) because it needs neither
 * node:tls nor files: a plain http:// or ws:// link maps its failures without loading TLS.
 */
import { RemosError, TlsError, TransportError, errorMessage } from "../errors.js";
import type { TlsFileOptions } from "./options.js";

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
