/**
 * The Channel: what every transport implements and what RpcClient/RpcServer use. A channel only moves
 * frames; each transport puts them on its wire in its own framing (spec §2). The interface lives in rpc/
 * so that rpc/ depends on nothing; transport/ implements it.
 */
import type { DecodedFrame, Frame } from "./frame.js";

/**
 * Channel types by the names the Mongoose OS ACL uses in `ch_type` (spec §4.2): `UART`, `HTTP`, `WS_in`,
 * `WS_out`, `WSS_out`, `MQTT`. `LOOPBACK` is the in-memory channel of remos.
 */
export type ChannelType = "UART" | "HTTP" | "WS_in" | "WS_out" | "WSS_out" | "MQTT" | "LOOPBACK";

export interface TlsPeerInfo {
  /** True when the peer's certificate was verified against the trusted CAs. */
  authorized: boolean;
  /** Subject common name of the peer certificate, when there is one. */
  subjectCN?: string;
  issuerCN?: string;
  fingerprint256?: string;
  validTo?: string;
  protocol?: string;
}

export interface ChannelInfo {
  type: ChannelType;
  /** The other end: `ip:port`, a serial device path, a broker URL; `RPC.Ping` reports it. */
  peer: string;
  /** TLS details when the link is TLS. */
  tls?: TlsPeerInfo;
  /** Largest frame (UTF-8 bytes of its JSON) this channel carries; `send` refuses bigger ones. */
  maxFrameSize: number;
  /** A user authenticated by the link itself (HTTP Digest header on `/rpc` or on the WS upgrade). */
  user?: string;
}

export type FrameListener = (received: DecodedFrame) => void;
export type CloseListener = (reason?: Error) => void;

export interface Channel {
  readonly info: ChannelInfo;
  /** True once closed (by either end); `send` then rejects with ChannelClosedError. */
  readonly closed: boolean;
  /**
   * Put one frame on the wire. Rejects with FrameTooLargeError above `info.maxFrameSize`, with
   * ChannelClosedError on a closed channel, and with a TransportError when the link fails.
   */
  send(frame: Frame): Promise<void>;
  /** Listen for received frames (already decoded; malformed input never reaches listeners). */
  onFrame(listener: FrameListener): () => void;
  /** Listen for the channel closing, with the reason when it broke. */
  onClose(listener: CloseListener): () => void;
  close(): Promise<void>;
}
