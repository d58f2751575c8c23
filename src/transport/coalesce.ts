/**
 * Write coalescing per tick, shared by the WebSocket channel and the MQTT link: the first write of a tick
 * goes out at once (a lone request or answer waits for nothing: work done before a write adds to the round
 * trip); the writes after it in the same tick are corked and leave together in one syscall when `defer`
 * runs the end of the tick (queueMicrotask or process.nextTick).
 */
import type { Writable } from "node:stream";

/** Returns the function to call before each write to `socket`. */
export function coalesceWrites(socket: Writable, defer: (endTick: () => void) => void): () => void {
  let wroteThisTick = false;
  let corked = false;
  const endTick = (): void => {
    wroteThisTick = false;
    if (corked) {
      corked = false;
      socket.uncork();
    }
  };
  return () => {
    if (!wroteThisTick) {
      wroteThisTick = true;
      defer(endTick);
    } else if (!corked) {
      corked = true;
      socket.cork();
    }
  };
}
