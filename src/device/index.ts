/**
 * `remos/device`: the device agent (docs/DEVICE.md) — `startDevice`, fleets, the config schema, the RPC
 * security pre-handler, device-side services, and the device ends of the transports for programs that
 * host their own RPC server.
 */
export { startDevice, REBOOT_LOCKOUT_MS, type DeviceAgent, type DeviceAgentOptions } from "./agent.js";
export { startFleet, type Fleet, type FleetOptions } from "./fleet.js";
export { type DeviceConfig, CONFIG_SCHEMA } from "./config/schema.js";
export {
  createHttpDigestAuthority,
  createSecurity,
  createSecurityPreHandler,
  type RpcSecurityConfig,
  type SecurityDeps,
} from "./security.js";
export { registerCsrService, CSR_METHOD, type CsrServiceOptions } from "./services/csr.js";
export { type SerialDeviceEnd, createSerialPair, openRawSerial, serveSerial } from "../transport/serial.js";
export { listenHttp, type HttpDeviceOptions, type HttpDeviceServer } from "../transport/http-device.js";
export { connectWsOut, type WsOutLink, type WsOutOptions } from "../transport/ws.js";
export { startMqttDevice, type MqttDeviceLink, type MqttDeviceOptions } from "../transport/mqtt-device.js";
export { RpcError } from "../errors.js";
export { RpcServer, StatusReply, type RequestContext, type HandlerOptions } from "../rpc/server.js";
