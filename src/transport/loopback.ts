/**
 * The in-memory loopback transport: two channels joined back to back, carrying frame text (so the codec
 * is exercised as on a real wire) asynchronously. Used by unit tests, the in-process demo and fleets.
 *
 * Port form `loopback://NAME` connects to an in-process device end listening under NAME.
 */
import { TransportError } from "../errors.js";
import type { Channel, ChannelInfo } from "../rpc/channel.js";
import { BaseChannel } from "./base.js";

export const LOOPBACK_MAX_FRAME_SIZE = 1024 * 1024;

export class LoopbackChannel extends BaseChannel {
  private peerEnd: LoopbackChannel | undefined;

  constructor(info: Partial<ChannelInfo> = {}) {
    super({ ...info, type: "LOOPBACK", peer: info.peer ?? "loopback", maxFrameSize: info.maxFrameSize ?? LOOPBACK_MAX_FRAME_SIZE });
  }

  /** Join two ends. */
  static pair(options: { maxFrameSize?: number; peerNames?: [string, string] } = {}): [LoopbackChannel, LoopbackChannel] {
    const [na, nb] = options.peerNames ?? ["loopback-b", "loopback-a"];
    const a = new LoopbackChannel({ peer: na, maxFrameSize: options.maxFrameSize });
    const b = new LoopbackChannel({ peer: nb, maxFrameSize: options.maxFrameSize });
    a.peerEnd = b;
    b.peerEnd = a;
    return [a, b];
  }

  protected async sendText(text: string): Promise<void> {
    const peer = this.peerEnd;
    if (!peer) throw new TransportError("loopback channel has no peer");
    queueMicrotask(() => peer.receiveText(text));
  }

  /** Deliver raw text to the other end as if it came off a wire (for malformed-input tests). */
  injectToPeer(text: string): void {
    const peer = this.peerEnd;
    if (peer) queueMicrotask(() => peer.receiveText(text));
  }

  protected async closeLink(): Promise<void> {
    const peer = this.peerEnd;
    this.peerEnd = undefined;
    if (peer) {
      peer.peerEnd = undefined;
      queueMicrotask(() => peer.markClosed());
    }
  }
}

type Acceptor = (channel: Channel) => void;
const listeners = new Map<string, Acceptor>();

/** Listen for in-process loopback connections under a name; returns a function that stops listening. */
export function listenLoopback(name: string, accept: Acceptor): () => void {
  if (listeners.has(name)) throw new TransportError(`loopback name "${name}" is already in use`);
  listeners.set(name, accept);
  return () => {
    if (listeners.get(name) === accept) listeners.delete(name);
  };
}

/** Connect to a loopback listener (port URL `loopback://NAME`). */
export function connectLoopback(name: string, options: { maxFrameSize?: number } = {}): LoopbackChannel {
  const accept = listeners.get(name);
  if (!accept) throw new TransportError(`no in-process device listens on loopback://${name}`);
  const [client, device] = LoopbackChannel.pair({ maxFrameSize: options.maxFrameSize, peerNames: [`loopback://${name}`, "loopback-client"] });
  accept(device);
  return client;
}
