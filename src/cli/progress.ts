/**
 * Progress of put/get/ota on stderr: a redrawn bar on a TTY; plain lines (at most one per 10% step)
 * otherwise, so logs of scripted runs stay short. Nothing with --json (stdout stays machine-readable and
 * stderr quiet) unless the caller asks.
 */
import type { TransferProgress } from "../api/transfer.js";

export interface ProgressReporter {
  update(p: TransferProgress): void;
  /** Finish the bar line (call on success or failure). */
  done(): void;
}

function human(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A reporter for `label` (e.g. "put init.js") writing to `out` (default stderr). */
export function progressReporter(label: string, options: { quiet?: boolean; out?: NodeJS.WriteStream } = {}): ProgressReporter {
  const out = options.out ?? process.stderr;
  if (options.quiet) return { update: () => undefined, done: () => undefined };
  const started = Date.now();
  const tty = Boolean(out.isTTY);
  let lastStep = -1;
  let lastDraw = 0;
  let drawn = false;
  let lastPhase = "";
  return {
    update(p) {
      const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
      const secs = (Date.now() - started) / 1000;
      const rate = secs > 0 ? `${human(p.done / secs)}/s` : "";
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 80 && p.done < p.total && p.phase === lastPhase) return;
        lastDraw = now;
        lastPhase = p.phase;
        const width = 30;
        const fill = Math.round((pct / 100) * width);
        const bar = "#".repeat(fill) + "-".repeat(width - fill);
        out.write(`\r${label} ${p.phase === "verify" ? "(verify) " : ""}[${bar}] ${pct}% ${human(p.done)}/${human(p.total)} ${rate}\x1b[K`);
        drawn = true;
        return;
      }
      const step = Math.floor(pct / 10);
      if (step === lastStep && p.phase === lastPhase) return;
      lastStep = step;
      lastPhase = p.phase;
      out.write(`${label}: ${p.phase} ${pct}% (${p.done}/${p.total} bytes)\n`);
    },
    done() {
      if (tty && drawn) out.write("\n");
      drawn = false;
    },
  };
}
