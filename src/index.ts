/**
 * remos: the public API. `import { connect } from "remos"`.
 *
 * This entry loads only what talking to a device needs (the RPC core, the transport registry — each
 * transport is imported when a port URL first names it — and the typed API), so a short-lived program
 * such as an AWS Lambda starts fast. The device agent is `remos/device`; the CA, broker and provisioning
 * are `remos/cloud`.
 */
export * from "./errors.js";
export { addLogSink, setDebugAreas, type LogEvent, type LogLevel, type LogSink } from "./log.js";
export type { Channel, ChannelInfo, ChannelType, TlsPeerInfo } from "./rpc/channel.js";
export {
  type Frame,
  type FrameAuth,
  type FrameError,
  type FrameId,
  type JsonValue,
  decodeFrame,
  encodeFrame,
  newRequestId,
  normaliseId,
} from "./rpc/frame.js";
export { globMatch } from "./rpc/glob.js";
export { validateSchema } from "./rpc/schema.js";
export { RpcClient, type CallOptions, type Notification, type RpcClientOptions } from "./rpc/client.js";
export {
  RpcServer,
  type DescribeResult,
  type Handler,
  type HandlerOptions,
  type JsonSchema,
  type PreHandler,
  type RequestContext,
  type RpcServerOptions,
  StatusReply,
} from "./rpc/server.js";
export type { Credentials, DigestAlgorithm } from "./rpc/digest.js";
export { AclSyntaxError, parseAcl, type Acl, type AclEntry } from "./rpc/acl.js";
export { BaseChannel } from "./transport/base.js";
export { LoopbackChannel, connectLoopback, listenLoopback } from "./transport/loopback.js";
export {
  openChannel,
  parsePort,
  registerTransport,
  type ConnectOptions,
  type TlsFileOptions,
  type TransportConnect,
} from "./transport/url.js";
// The programmatic API (docs/API.md): connect(port) → Device with typed service helpers and the chunk pump.
export { connect, Device, type DeviceOptions, type NotificationListener } from "./api/device.js";
export type { CallOpts, DeviceCore } from "./api/core.js";
export { type DeviceCapabilities, probeCapabilities } from "./api/capabilities.js";
export { FsApi, type FsEntry } from "./api/fs.js";
export {
  type FsSha256Result,
  type GetOptions,
  type GetSink,
  type PutOptions,
  type TransferResult,
  type VerifyMode,
  MemorySink,
} from "./api/fs-transfer.js";
export { CompareSink, FileSink, OrderedStreamSink } from "./api/sinks.js";
export { type ByteSource, type ClosableByteSource, hashPrefix, memorySource, openFileSource } from "./api/byte-source.js";
export {
  ConfigApi,
  buildConfigDiff,
  configValueAt,
  parseAssignments,
  type ConfigGetOptions,
  type ConfigObject,
  type ConfigSetOptions,
  type ConfigSetResult,
  type ConfigValue,
} from "./api/config.js";
export { SysApi, type RebootOptions, type SetDebugParams, type SysInfo } from "./api/sys.js";
export { GpioApi, type GpioInt, type GpioLevel, type IntHandlerParams } from "./api/gpio.js";
export { I2cApi, type I2cOpts } from "./api/i2c.js";
export { OtaApi, OTA_STATE, type BootState, type OtaStatus, type OtaUploadOptions, type OtaUploadResult } from "./api/ota.js";
export { WifiApi, type ApParams, type StaParams, type WifiNetwork } from "./api/wifi.js";
export {
  LEGACY_CHUNK_SIZE,
  MAX_AUTO_CHUNK_SIZE,
  chunkSizeFor,
  chunksOf,
  pumpChunks,
  type Chunk,
  type PumpOptions,
  type TransferProgress,
  type TransferTuning,
} from "./api/transfer.js";
