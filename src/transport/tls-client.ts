/**
 * Client-side TLS for the HTTP and WebSocket transports (https://, wss://, and the device's outbound
 * wss:// link): turns `--ca-cert-file`/`--cert-file`/`--key-file`/insecure options into Node TLS options
 * (server verification ON unless `insecure`), and turns Node's link and TLS failures into typed errors
 * whose message names the cause in words ("server certificate is not trusted (unknown CA)", "certificate
 * has expired", "hostname mismatch"...). Also reads the peer-certificate summary for `ChannelInfo.tls`.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { type ConnectionOptions, type TLSSocket, checkServerIdentity } from "node:tls";
import { IoError, errorMessage } from "../errors.js";
import type { TlsPeerInfo } from "../rpc/channel.js";
import type { TlsFileOptions } from "./options.js";

// The failure mapping lives in tls-errors.ts (no node:tls, fs or net), so that plain http:// and ws://
// links can use it without loading TLS; it is re-exported here for the TLS users.
export { hasClientCert, linkError, refusedAfterHandshake, tlsFailureCause } from "./tls-errors.js";

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
    o.checkServerIdentity = (_host, cert) => checkServerIdentity(name, cert);
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
