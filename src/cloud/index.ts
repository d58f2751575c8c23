/**
 * `remos/cloud`: the local CA, the embedded mutual-TLS broker with its per-identity policy, the mosquitto
 * configuration, and provisioning (docs/CLOUD.md). `aws-iot-setup` is not exported here so that importing
 * this entry does not load the AWS SDK: import `remos/cloud/aws` for it.
 */
export { LocalCa, defaultCaDir, type CaInitOptions, type IssueOptions as CaIssueOptions, type IssuedCert, type IssuedRecord } from "./ca.js";
export { startBroker, type BrokerOptions, type BrokerTls, type Refusal, type RunningBroker } from "./broker.js";
export { prepareBrokerDir, defaultRemosDir, type BrokerFiles, type PreparedBroker } from "./broker-dir.js";
export { mayPublish, maySubscribe, type Identity } from "./policy.js";
export { writeMosquittoConf, mosquittoAcl, mosquittoConf, type MosquittoConfOptions } from "./mosquitto-conf.js";
export { iotSetup, ensureOperator, type IotSetupOptions, type IotSetupResult, type OperatorCredentials } from "./provision/iot-setup.js";
export { generateKeyAndCsr, certIdentity, type CertRole, type KeyType } from "../pki/x509.js";
