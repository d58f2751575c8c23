/**
 * The options every transport's client end takes (`openChannel(port, options)`). Kept apart from url.ts,
 * which imports the transports lazily, so that the transports depend on these types without a circle.
 */
import type { Credentials } from "../rpc/digest.js";

export interface TlsFileOptions {
  /** Client certificate (PEM file path) for mutual TLS. */
  certFile?: string;
  /** Client key (PEM file path). */
  keyFile?: string;
  /** CA to verify the server against; without it the system roots are used. */
  caFile?: string;
  /** PEM contents instead of files (API users, e.g. a Lambda with secrets in memory). */
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer | Array<string | Buffer>;
  /** Skip server certificate verification. Dangerous; the CLI warns loudly. */
  insecure?: boolean;
  /** TLS server name (SNI) when it differs from the URL host. */
  servername?: string;
  /** ALPN protocols, e.g. `["x-amzn-mqtt-ca"]` for AWS IoT on port 443. */
  alpn?: string[];
}

export interface ConnectOptions {
  /** Time allowed to open the link, in ms (the CLI passes `--timeout`). */
  timeoutMs?: number;
  signal?: AbortSignal;
  tls?: TlsFileOptions;
  /** Credentials for HTTP Digest (transport level) and in-frame digest. */
  credentials?: Credentials;
  /** Serial: baud rate (default 115200). */
  baudRate?: number;
  /** Serial: skip mos's 16-byte/5 ms write pacing (`--rpc-uart-no-delay`). */
  noPacing?: boolean;
  /** Serial: RTS/CTS hardware flow control (mos `--hw-flow-control`); pacing is then off, as in mos. */
  hwFlowControl?: boolean;
  /**
   * Serial: what to do with DTR and RTS after opening (mos `--set-control-lines`, default true, and
   * `--inverted-control-lines`): "low" (default: keeps ESP auto-reset circuits from resetting the board),
   * "high" (inverted boards), or "untouched".
   */
  controlLines?: "low" | "high" | "untouched";
  /** Serial: bytes outside frames (the device console). */
  onConsole?: (data: Buffer) => void;
  /** MQTT: client id (default `mos-<random>`). */
  clientId?: string;
}
