/**
 * Typed errors with stable string codes. Every error remos throws at a user is a RemosError; `code` is
 * stable across releases and is what programs should switch on (messages may improve).
 *
 * The CLI maps codes to exit codes (docs/CLI.md): usage 2, device error 3, timeout/transport 4, auth 5.
 */

export type RemosErrorCode =
  | "ERR_USAGE"
  | "ERR_BAD_FRAME"
  | "ERR_FRAME_TOO_LARGE"
  | "ERR_RPC_TIMEOUT"
  | "ERR_ABORTED"
  | "ERR_CHANNEL_CLOSED"
  | "ERR_TRANSPORT"
  | "ERR_TLS"
  | "ERR_UNSUPPORTED_PORT"
  | "ERR_DEVICE"
  | "ERR_AUTH"
  | "ERR_VERIFY"
  | "ERR_IO";

export interface RemosErrorOptions {
  cause?: unknown;
  /** The step that failed, e.g. `put init.js: chunk at offset 4096`. The CLI prints it first. */
  step?: string;
}

export class RemosError extends Error {
  readonly code: RemosErrorCode;
  step: string | undefined;

  constructor(code: RemosErrorCode, message: string, options: RemosErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.step = options.step;
  }

  /** Prefix the failing step (outermost first): `put init.js` + `chunk at offset 0` → `put init.js: chunk at offset 0`. */
  inStep(step: string): this {
    this.step = this.step ? `${step}: ${this.step}` : step;
    return this;
  }
}

/** Bad command-line or API arguments. */
export class UsageError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_USAGE", message, options);
  }
}

/** Input that is not a valid RPC frame (not JSON, not an object, wrong field types). */
export class BadFrameError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_BAD_FRAME", message, options);
  }
}

/** A frame bigger than the channel carries. */
export class FrameTooLargeError extends RemosError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, channel: string) {
    super("ERR_FRAME_TOO_LARGE", `frame of ${size} bytes exceeds the ${limit}-byte limit of the ${channel} channel`);
    this.size = size;
    this.limit = limit;
  }
}

/** No answer within the call's timeout. */
export class TimeoutError extends RemosError {
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options?: RemosErrorOptions) {
    super("ERR_RPC_TIMEOUT", message, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends RemosError {
  constructor(message = "operation aborted", options?: RemosErrorOptions) {
    super("ERR_ABORTED", message, options);
  }
}

/** The channel closed while the call was pending (or before it was sent). */
export class ChannelClosedError extends RemosError {
  constructor(message = "channel closed", options?: RemosErrorOptions) {
    super("ERR_CHANNEL_CLOSED", message, options);
  }
}

/** A link could not be opened or broke: connection refused, DNS, HTTP status, broker refusal. */
export class TransportError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_TRANSPORT", message, options);
  }
}

/** A TLS handshake failed; the message names the cause (unknown CA, expired, no client certificate...). */
export class TlsError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_TLS", message, options);
  }
}

/** A `--port` URL with no transport for it. */
export class UnsupportedPortError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_UNSUPPORTED_PORT", message, options);
  }
}

/**
 * Thrown by RPC handlers (device side) to answer with an error frame `{code, message}`. Any other
 * exception becomes a 500 with the message only (never a stack trace on the wire).
 */
export class RpcError extends Error {
  readonly rpcCode: number;
  constructor(rpcCode: number, message: string) {
    super(message);
    this.name = "RpcError";
    this.rpcCode = rpcCode;
  }
}

/** The device answered with a non-zero `error.code` (client side). */
export class DeviceError extends RemosError {
  readonly rpcCode: number;
  readonly rpcMessage: string;
  readonly method: string;
  constructor(method: string, rpcCode: number, rpcMessage: string, options?: RemosErrorOptions) {
    super("ERR_DEVICE", `device error ${rpcCode}: ${rpcMessage}`, options);
    this.method = method;
    this.rpcCode = rpcCode;
    this.rpcMessage = rpcMessage;
  }
}

/** Authentication failed or was required and no credentials were given. */
export class AuthError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_AUTH", message, options);
  }
}

/** An end-to-end check failed: size or SHA-256 after a transfer, a bundle checksum or signature. */
export class VerifyError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_VERIFY", message, options);
  }
}

/** A local file could not be read or written. */
export class IoError extends RemosError {
  constructor(message: string, options?: RemosErrorOptions) {
    super("ERR_IO", message, options);
  }
}

export function isRemosError(e: unknown): e is RemosError {
  return e instanceof RemosError;
}

/** A message for any thrown value, without a stack. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
