/**
 * remos: the public API. `import { connect } from "remos"`.
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
} from "./rpc/server.js";
export type { Credentials, DigestAlgorithm } from "./rpc/digest.js";
export { AclSyntaxError, parseAcl, type Acl, type AclEntry } from "./rpc/acl.js";
export {
  createHttpDigestAuthority,
  createSecurity,
  createSecurityPreHandler,
  type RpcSecurityConfig,
  type SecurityDeps,
} from "./device/security.js";
export { BaseChannel } from "./transport/base.js";
export { LoopbackChannel, connectLoopback, listenLoopback } from "./transport/loopback.js";
export { type SerialDeviceEnd, createSerialPair, openRawSerial, serveSerial } from "./transport/serial.js";
export {
  openChannel,
  parsePort,
  registerTransport,
  type ConnectOptions,
  type TlsFileOptions,
  type TransportConnect,
} from "./transport/url.js";
// The device agent (docs/DEVICE.md).
export { startDevice, REBOOT_LOCKOUT_MS, type DeviceAgent, type DeviceAgentOptions } from "./device/agent.js";
export { startFleet, type Fleet, type FleetOptions } from "./device/fleet.js";
export { type DeviceConfig, CONFIG_SCHEMA } from "./device/config/schema.js";
export { StatusReply } from "./rpc/server.js";
export { validateSchema } from "./rpc/schema.js";
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
// The secure cloud: local CA, embedded mutual-TLS broker, mosquitto config, provisioning (src/cloud/).
export { LocalCa, defaultCaDir, type CaInitOptions, type IssueOptions as CaIssueOptions, type IssuedCert, type IssuedRecord } from "./cloud/ca.js";
export { startBroker, type BrokerOptions, type BrokerTls, type Refusal, type RunningBroker } from "./cloud/broker.js";
export { prepareBrokerDir, defaultRemosDir, type BrokerFiles, type PreparedBroker } from "./cloud/broker-dir.js";
export { mayPublish, maySubscribe, type Identity } from "./cloud/policy.js";
export { writeMosquittoConf, mosquittoAcl, mosquittoConf, type MosquittoConfOptions } from "./cloud/mosquitto-conf.js";
export { registerCsrService, CSR_METHOD, type CsrServiceOptions } from "./device/services/csr.js";
export { iotSetup, ensureOperator, type IotSetupOptions, type IotSetupResult, type OperatorCredentials } from "./cloud/provision/iot-setup.js";
export { generateKeyAndCsr, certIdentity, type CertRole, type KeyType } from "./pki/x509.js";
