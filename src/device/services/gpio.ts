/**
 * The GPIO.* RPC service (spec §3.5) over a GpioHal (hal/gpio.ts).
 *
 * What the agent passes: its RpcServer (whose `localIds[0]` is the `src` of GPIO.Int notifications) and a
 * GpioHal: `detectLinuxGpio()` from hal/gpio-linux.ts when it returns one, else `new MemoryGpioHal()`.
 *
 * GPIO.SetIntHandler sends, on each matching edge, a notification (no id) `method` (default "GPIO.Int") to
 * `dst` (default: the request's src) with params `{pin, ts, value}` (ts = epoch seconds, ms precision) over
 * the channel the request came on. The firmware's notification is one closing brace short (spec §1.2);
 * remos sends a well-formed frame. With `debounce_ms`, an edge opens a window of that length; at its end the
 * pin is read again and the event is sent only if the level really changed and matches `edge`.
 * Errors: 400 missing/invalid args and HAL refusals ("error setting pin mode: ..."), 500 RemoveIntHandler
 * without a handler.
 */
import { RpcError, errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import type { Frame } from "../../rpc/frame.js";
import type { RpcServer } from "../../rpc/server.js";
import { GpioError, type GpioHal, type GpioLevel, type GpioPull } from "../hal/gpio.js";

type Edge = "pos" | "neg" | "any";

interface IntHandler {
  stop: () => void;
}

function params(p: unknown): Record<string, unknown> {
  return p && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

/** Run a HAL step; a GpioError becomes 400 `<what>: <reason>`. */
async function hal<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof GpioError) throw new RpcError(400, `${what}: ${e.message}`);
    throw e;
  }
}

export function registerGpioService(server: RpcServer, gpio: GpioHal): void {
  const handlers = new Map<number, IntHandler>();
  const blinkers = new Map<number, NodeJS.Timeout>();

  const pinArg = (p: Record<string, unknown>, message = "pin is required"): number => {
    if (!isInt(p.pin) || p.pin < 0) throw new RpcError(400, message);
    return p.pin;
  };

  server.addHandler("GPIO.Read", async (raw) => {
    const pin = pinArg(params(raw));
    await hal("error setting pin mode", () => gpio.setMode(pin, "input"));
    return { value: await hal("error reading pin", () => gpio.read(pin)) };
  }, { argsFmt: "{pin: %d}", description: "Set a pin to input and read it" });

  server.addHandler("GPIO.ReadOut", async (raw) => {
    const pin = pinArg(params(raw));
    await hal("error setting pin mode", () => gpio.setMode(pin, "output"));
    return { value: await hal("error reading pin", () => gpio.readOut(pin)) };
  }, { argsFmt: "{pin: %d}", description: "Set a pin to output and read its output latch" });

  server.addHandler("GPIO.Write", async (raw) => {
    const p = params(raw);
    if (!isInt(p.pin) || p.pin < 0 || p.value === undefined) throw new RpcError(400, "pin and value are required");
    if (p.value !== 0 && p.value !== 1) throw new RpcError(400, "value must be 0 or 1");
    const pin = p.pin;
    const level: GpioLevel = p.value;
    await hal("error setting pin mode", () => gpio.setMode(pin, "output", { openDrain: p.od === true }));
    await hal("error writing pin", () => gpio.write(pin, level));
    return null;
  }, { argsFmt: "{pin: %d, value: %d, od: %B}", description: "Drive a pin (od: open drain)" });

  server.addHandler("GPIO.Toggle", async (raw) => {
    const pin = pinArg(params(raw));
    await hal("error setting pin mode", () => gpio.setMode(pin, "output"));
    const value: GpioLevel = (await hal("error reading pin", () => gpio.readOut(pin))) === 1 ? 0 : 1;
    await hal("error writing pin", () => gpio.write(pin, value));
    return { value };
  }, { argsFmt: "{pin: %d}", description: "Invert an output pin; returns the new value" });

  server.addHandler("GPIO.Blink", async (raw) => {
    const p = params(raw);
    if (!isInt(p.pin) || p.pin < 0 || !isInt(p.on_ms) || !isInt(p.off_ms)) throw new RpcError(400, "pin, on_ms and off_ms are required");
    const { pin, on_ms: onMs, off_ms: offMs } = p as { pin: number; on_ms: number; off_ms: number };
    if (onMs < 0 || onMs > 65535 || offMs < 0 || offMs > 65535) throw new RpcError(400, "on_ms and off_ms must be 0..65535");
    clearTimeout(blinkers.get(pin));
    blinkers.delete(pin);
    if (onMs === 0 || offMs === 0) return null; // blinking off
    await hal("error setting pin mode", () => gpio.setMode(pin, "output"));
    const step = (level: GpioLevel): void => {
      gpio.write(pin, level).catch((e: unknown) => debug("gpio", "blink write failed", { pin, error: errorMessage(e) }));
      const t = setTimeout(() => step(level === 1 ? 0 : 1), level === 1 ? onMs : offMs);
      t.unref();
      blinkers.set(pin, t);
    };
    step(1);
    return null;
  }, { argsFmt: "{pin: %d, on_ms: %d, off_ms: %d}", description: "Blink a pin (on_ms or off_ms 0 stops)" });

  server.addHandler("GPIO.SetIntHandler", async (raw, ctx) => {
    const p = params(raw);
    const pin = pinArg(p, "pin and edge are required");
    if (p.edge === undefined) throw new RpcError(400, "pin and edge are required");
    if (p.edge !== "pos" && p.edge !== "neg" && p.edge !== "any") throw new RpcError(400, "edge must be pos, neg or any");
    const edge: Edge = p.edge;
    let pull: GpioPull | undefined;
    if (p.pull !== undefined) {
      if (p.pull !== "up" && p.pull !== "down" && p.pull !== "none") throw new RpcError(400, "pull must be up, down or none");
      pull = p.pull;
    }
    const debounceMs = p.debounce_ms ?? 0;
    if (!isInt(debounceMs) || debounceMs < 0 || debounceMs > 65535) throw new RpcError(400, "debounce_ms must be 0..65535");
    if (p.method !== undefined && (typeof p.method !== "string" || p.method === "")) throw new RpcError(400, "method must be a string");
    if (p.dst !== undefined && typeof p.dst !== "string") throw new RpcError(400, "dst must be a string");
    const method = (p.method as string | undefined) ?? "GPIO.Int";
    const dst = (p.dst as string | undefined) || ctx.frame.src;
    const src = ctx.frame.dst || server.localIds[0];

    handlers.get(pin)?.stop();
    handlers.delete(pin);
    await hal("error setting pin mode", () => gpio.setMode(pin, "input"));
    if (pull) await hal("error setting pin pull", () => gpio.setPull(pin, pull));

    const matches = (level: GpioLevel): boolean => edge === "any" || (edge === "pos" ? level === 1 : level === 0);
    const send = (level: GpioLevel, ts: number): void => {
      const frame: Frame = { method, params: { pin, ts: Math.round(ts) / 1000, value: level } };
      if (src) frame.src = src;
      if (dst) frame.dst = dst;
      ctx.sendRouted(frame).catch((e: unknown) => debug("gpio", "GPIO interrupt notification not sent", { pin, error: errorMessage(e) }));
    };
    let last = await hal("error reading pin", () => gpio.read(pin));
    let window: NodeJS.Timeout | undefined;
    const stopWatch = await hal("error setting interrupt", () =>
      gpio.watch(pin, (level, ts) => {
        if (debounceMs === 0) {
          last = level;
          if (matches(level)) send(level, ts);
          return;
        }
        if (window) return; // bouncing: wait for the window to close
        const before = last;
        window = setTimeout(() => {
          window = undefined;
          gpio.read(pin).then((now) => {
            last = now;
            if (now !== before && matches(now)) send(now, Date.now());
          }, (e: unknown) => debug("gpio", "debounce read failed", { pin, error: errorMessage(e) }));
        }, debounceMs);
        window.unref();
      }),
    );
    handlers.set(pin, {
      stop: () => {
        stopWatch();
        if (window) clearTimeout(window);
      },
    });
    return null;
  }, {
    argsFmt: "{pin: %d, edge: %Q, pull: %Q, debounce_ms: %d, dst: %Q, method: %Q}",
    description: "Send a notification (default GPIO.Int {pin, ts, value}) on each edge",
  });

  server.addHandler("GPIO.RemoveIntHandler", async (raw) => {
    const pin = pinArg(params(raw));
    const h = handlers.get(pin);
    if (!h) throw new RpcError(500, `no interrupt handler on pin ${pin}`);
    h.stop();
    handlers.delete(pin);
    return null;
  }, { argsFmt: "{pin: %d}", description: "Remove a pin's interrupt handler" });
}
