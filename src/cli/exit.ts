/**
 * Exit codes of `mos` (documented in docs/CLI.md) and the one-line error report.
 */
import { RemosError, errorMessage } from "../errors.js";

export const EXIT = {
  OK: 0,
  /** An unexpected failure (a bug): please report it with --verbose output. */
  INTERNAL: 1,
  /** Bad flags, arguments or port URL. */
  USAGE: 2,
  /** The device answered with an error. */
  DEVICE: 3,
  /** No answer in time, or the link failed (connect, TLS, closed channel). */
  TRANSPORT: 4,
  /** Authentication required or refused. */
  AUTH: 5,
  /** An end-to-end check failed (size/SHA-256 after a transfer, bundle checksum or signature). */
  VERIFY: 6,
  /** A local file could not be read or written. */
  IO: 7,
} as const;

export function exitCodeFor(e: unknown): number {
  if (!(e instanceof RemosError)) {
    if (e instanceof Error && (e as { code?: string }).code === "commander.invalidArgument") return EXIT.USAGE;
    return EXIT.INTERNAL;
  }
  switch (e.code) {
    case "ERR_USAGE":
    case "ERR_UNSUPPORTED_PORT":
      return EXIT.USAGE;
    case "ERR_DEVICE":
      return EXIT.DEVICE;
    case "ERR_AUTH":
      return EXIT.AUTH;
    case "ERR_VERIFY":
      return EXIT.VERIFY;
    case "ERR_IO":
      return EXIT.IO;
    default:
      return EXIT.TRANSPORT;
  }
}

/** `mos: <step>: <message>` on one line; the stack only when verbose. */
export function reportError(e: unknown, verbose: boolean): number {
  const step = e instanceof RemosError && e.step ? `${e.step}: ` : "";
  process.stderr.write(`mos: ${step}${errorMessage(e)}\n`);
  if (verbose && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
  return exitCodeFor(e);
}
