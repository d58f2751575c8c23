/**
 * The debug log: events that matter when something goes wrong (a dropped frame, a reconnect, a refused
 * client) but are noise otherwise. Off by default; on with `REMOS_DEBUG=*` (or a comma list of areas such
 * as `rpc,mqtt`), with `--verbose` in the CLI, or by installing a sink (tests do, to see the events).
 *
 * Secrets never go in here: callers log methods, ids, sizes and reasons, never passwords or keys.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface LogEvent {
  level: LogLevel;
  /** The area: `rpc`, `serial`, `http`, `ws`, `mqtt`, `device`, `broker`... */
  area: string;
  message: string;
  fields?: Record<string, unknown>;
}

export type LogSink = (event: LogEvent) => void;

const sinks = new Set<LogSink>();
let envAreas: Set<string> | "all" | null = parseEnv(process.env.REMOS_DEBUG);

function parseEnv(value: string | undefined): Set<string> | "all" | null {
  if (!value) return null;
  if (value === "*" || value === "1" || value === "all") return "all";
  return new Set(value.split(",").map((s) => s.trim()).filter(Boolean));
}

function stderrSink(e: LogEvent): void {
  const fields = e.fields && Object.keys(e.fields).length ? " " + safeJson(e.fields) : "";
  process.stderr.write(`[remos ${e.area}] ${e.level}: ${e.message}${fields}\n`);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return "[unserialisable]";
  }
}

/** Add a sink; returns a function that removes it. */
export function addLogSink(sink: LogSink): () => void {
  sinks.add(sink);
  return () => sinks.delete(sink);
}

/** Turn stderr debug output on for some areas (or all with `*`), or off with null. */
export function setDebugAreas(value: string | null): void {
  envAreas = parseEnv(value ?? undefined);
}

function stderrWants(area: string): boolean {
  return envAreas === "all" || (envAreas !== null && envAreas.has(area));
}

/** True when a debug event in this area would go anywhere: callers use it to skip building costly messages. */
export function debugEnabled(area: string): boolean {
  return sinks.size > 0 || stderrWants(area);
}

export function log(level: LogLevel, area: string, message: string, fields?: Record<string, unknown>): void {
  if (sinks.size === 0 && !stderrWants(area)) return;
  const event: LogEvent = fields ? { level, area, message, fields } : { level, area, message };
  for (const s of sinks) {
    try {
      s(event);
    } catch {
      // a broken sink must not break the caller
    }
  }
  if (stderrWants(area)) stderrSink(event);
}

export const debug = (area: string, message: string, fields?: Record<string, unknown>): void => {
  if (sinks.size === 0 && !stderrWants(area)) return;
  log("debug", area, message, fields);
};

const SECRET_FIELD = /"([A-Za-z0-9_]*(?:pass|password|psk_key|secret|response|private_key)[A-Za-z0-9_]*|key|ssl_key)"(\s*:\s*)"(?:[^"\\]|\\.)*"/g;
const DATA_FIELD = /"(data|data_hex)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;

/**
 * Frame text fit for the debug log: values of secret-looking fields (`*pass*`, `*psk_key*`, `key`,
 * `ssl_key`, digest `response`...) become "***", and file/firmware `data` (which may hold a private key
 * being uploaded) becomes its length; long text is cut. Called only when the log is on.
 */
export function frameForLog(text: string, max = 2000): string {
  const t = text.replace(SECRET_FIELD, '"$1"$2"***"').replace(DATA_FIELD, (_m, k: string, sep: string, v: string) => `"${k}"${sep}"<${v.length} chars>"`);
  return t.length > max ? t.slice(0, max) + "…" : t;
}
