/**
 * The device console: the agent's own log lines (boot, channels, config saves, reboots), filtered by
 * `debug.level` (or the level Sys.SetDebug set) and fanned out to sinks: the process's stdout/stderr
 * (`log` option), the UART (serial console between frames) and MQTT (`debug.stdout_topic` /
 * `debug.stderr_topic`, payload `"<device.id> <seq> <unix_time.3> <fd>|<text>"`, spec §2.4).
 *
 * Levels as Mongoose OS: -1 none, 0 error, 1 warn, 2 info, 3 debug, 4 verbose.
 */

export const LL_ERROR = 0;
export const LL_WARN = 1;
export const LL_INFO = 2;
export const LL_DEBUG = 3;

/** A console line: fd 1 (stdout) or 2 (stderr) and its text without the newline. */
export type ConsoleSink = (fd: 1 | 2, text: string) => void;

export class DeviceConsole {
  private readonly sinks = new Set<ConsoleSink>();
  private level = LL_INFO;

  setLevel(level: number): void {
    this.level = level;
  }

  getLevel(): number {
    return this.level;
  }

  addSink(sink: ConsoleSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  /** Log a line at a level (errors and warnings go to fd 2). */
  log(level: number, text: string): void {
    if (level > this.level) return;
    this.write(level <= LL_WARN ? 2 : 1, text);
  }

  /** Write lines to the sinks (one call per line). */
  write(fd: 1 | 2, text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      for (const s of this.sinks) {
        try {
          s(fd, line);
        } catch {
          // a broken sink must not break the agent
        }
      }
    }
  }
}

/** The MQTT log payload of spec §2.4: `"<device.id> <seq> <unix_time.3> <fd>|<text>"`. */
export function mqttLogPayload(deviceId: string, seq: number, timeMs: number, fd: 1 | 2, text: string): string {
  return `${deviceId} ${seq} ${(timeMs / 1000).toFixed(3)} ${fd}|${text}`;
}
