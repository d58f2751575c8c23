/**
 * Benchmark results: each figure is recorded with the baseline measured in the same run and their ratio,
 * written to bench/results/latest.json and docs/BENCHMARKS.md (with the machine description).
 */
import { cpus, totalmem, release } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface Figure {
  suite: string;
  name: string;
  value: number;
  unit: string;
  baselineName: string;
  baseline: number;
  /** value / baseline. */
  ratio: number;
  /** e.g. "<= 1.25" or ">= 0.8", checked against ratio; informational (never asserted in tests). */
  target?: string;
  note?: string;
}

export function targetMet(f: Figure): boolean | undefined {
  if (!f.target) return undefined;
  const m = /^(<=|>=|<|>)\s*([0-9.]+)$/.exec(f.target.trim());
  if (!m) return undefined;
  const t = Number(m[2]);
  switch (m[1]) {
    case "<=": return f.ratio <= t;
    case ">=": return f.ratio >= t;
    case "<": return f.ratio < t;
    default: return f.ratio > t;
  }
}

export class Results {
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];

  add(f: Omit<Figure, "ratio">): Figure {
    const full: Figure = { ...f, ratio: f.baseline === 0 ? NaN : f.value / f.baseline };
    this.figures.push(full);
    const met = targetMet(full);
    process.stdout.write(
      `${full.suite} | ${full.name}: ${fmt(full.value)} ${full.unit} vs ${full.baselineName} ${fmt(full.baseline)} ${full.unit} → ${fmt(full.ratio)}x` +
        (full.target ? ` (target ${full.target}: ${met ? "met" : "NOT met"})` : "") +
        "\n",
    );
    return full;
  }

  /** A figure that could not be measured (missing tool, failed setup): recorded with the reason. */
  missing(suite: string, name: string, reason: string): void {
    this.figures.push({ suite, name, value: NaN, unit: "", baselineName: "-", baseline: NaN, ratio: NaN, note: `missing: ${reason}` });
    process.stdout.write(`${suite} | ${name}: MISSING (${reason})\n`);
  }

  note(text: string): void {
    this.notes.push(text);
    process.stdout.write(`note: ${text}\n`);
  }

  machine(): Record<string, string | number> {
    const c = cpus();
    return {
      cpu: c[0]?.model ?? "unknown",
      cores: c.length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
    };
  }

  write(): void {
    const out = join(ROOT, "bench", "results", "latest.json");
    mkdirSync(dirname(out), { recursive: true });
    const data = { date: new Date().toISOString(), machine: this.machine(), figures: this.figures, notes: this.notes };
    writeFileSync(out, JSON.stringify(data, null, 2) + "\n");
    const md = join(ROOT, "docs", "BENCHMARKS.md");
    let keep = "";
    try {
      const old = readFileSync(md, "utf8");
      const i = old.indexOf("<!-- history -->");
      if (i >= 0) keep = old.slice(i);
    } catch {
      // first run
    }
    writeFileSync(md, renderMarkdown(data) + "\n" + (keep || "<!-- history -->\n## Before and after\n\n(none yet)\n"));
  }
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function renderMarkdown(d: { date: string; machine: Record<string, string | number>; figures: Figure[]; notes: string[] }): string {
  const m = d.machine;
  const lines = [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (bench/run.ts); raw figures in bench/results/latest.json. Every figure is a ratio",
    "against a baseline measured in the same run on the same machine, so runs on different machines compare.",
    "",
    `Run ${d.date} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}.`,
    "",
    "| suite | figure | value | baseline | ratio | target |",
    "|---|---|---|---|---|---|",
  ];
  for (const f of d.figures) {
    const met = targetMet(f);
    lines.push(
      f.note?.startsWith("missing:") ? `| ${f.suite} | ${f.name} | ${f.note} | | | |` : `| ${f.suite} | ${f.name} | ${fmt(f.value)} ${f.unit} | ${f.baselineName}: ${fmt(f.baseline)} ${f.unit} | ${fmt(f.ratio)}x | ${f.target ? `${f.target} ${met ? "✓" : "✗"}` : ""} |`,
    );
  }
  if (d.notes.length) {
    lines.push("", "Notes:", "");
    for (const n of d.notes) lines.push(`- ${n}`);
  }
  return lines.join("\n") + "\n";
}
