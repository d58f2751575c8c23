/**
 * Write coalescing per tick, shared by the WebSocket channel and the MQTT link: the first write of a tick
 * goes out at once (a lone request or answer waits for nothing: work done before a write adds to the round
 * trip); the small writes after it in the same tick are corked and leave together in one syscall when
 * `defer` runs the end of the tick (queueMicrotask or process.nextTick). A big write (a transfer's chunk)
 * is never held back: it flushes what is corked and goes out at once, so the peer starts on it while the
 * next one is being encoded, instead of receiving a whole window in one burst at the end of the tick.
 */
import type { Writable } from "node:stream";

/** Writes of at least this many bytes are not corked (a syscall per such write costs nothing that matters). */
export const UNCORKED_WRITE_BYTES = 16 * 1024;

/** Returns the function to call before each write to `socket`, with the write's size in bytes. */
export function coalesceWrites(socket: Writable, defer: (endTick: () => void) => void): (bytes: number) => void {
  let wroteThisTick = false;
  let corked = false;
  const endTick = (): void => {
    wroteThisTick = false;
    if (corked) {
      corked = false;
      socket.uncork();
    }
  };
  return (bytes) => {
    if (!wroteThisTick) {
      wroteThisTick = true;
      defer(endTick);
    } else if (bytes >= UNCORKED_WRITE_BYTES) {
      if (corked) {
        corked = false;
        socket.uncork();
      }
    } else if (!corked) {
      corked = true;
      socket.cork();
    }
  };
}
