/**
 * `mos aws-iot-setup`: provision the device on `--port` for AWS IoT, step by step as spec §5.4:
 *   Sys.GetInfo + Config.Get → key pair + CSR (on the device when it offers Crypto.GenerateCSR, else here;
 *   RSA-2048 for cc320* arches, ECDSA P-256 otherwise, or `certType`) → CreateCertificateFromCsr
 *   (setAsActive) → policy: ListPolicies / CreatePolicy (mos-default permissive, or the least-privilege
 *   template) / AttachPolicy → CreateThing (errors ignored) / AttachThingPrincipal → local files
 *   `aws-<cn16>.crt.pem` (prefixed with `CN:/ID:/ARN:` lines) and `.key.pem` (0600) → FS.Put uploads →
 *   DescribeEndpoint(iot:Data-ATS) → Config.Set mqtt.* (+ aws.thing_name, device.id) with save + reboot.
 * With `awsCertFile`/`awsKeyFile` the existing certificate is used (its ARN from DescribeCertificate).
 * Not supported: ATCA (`--use-atca`), Greengrass, the embedded Starfield CA for cc320* (see docs/CLOUD.md).
 */
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  DescribeCertificateCommand,
  DescribeEndpointCommand,
  IoTClient,
  type IoTClientConfig,
  ListPoliciesCommand,
} from "@aws-sdk/client-iot";
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { rootCertificates } from "node:tls";
import { join } from "node:path";
import type { Device } from "../../api/device.js";
import { writeFileAtomic } from "../../device/atomic.js";
import { TransportError, UsageError, errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import { type KeyType, checkCn } from "../../pki/x509.js";
import { DEFAULT_POLICY_NAME, LEAST_PRIVILEGE_POLICY_NAME, arnPrefix, leastPrivilegePolicy, permissivePolicy } from "./aws-policy.js";
import { type StepLogger, obtainCsr, readDevice, setConfigAndReboot, short, uploadFile } from "./common.js";

export interface AwsIotSetupOptions {
  /** AWS region; default: the SDK chain (AWS_REGION, then the profile's region). */
  region?: string;
  /** Policy name (default mos-default; `-` = attach none). */
  policy?: string;
  /** Use the least-privilege template (policy name default remos-thing-least-privilege). */
  leastPrivilege?: boolean;
  /** Thing name (default = CN; `-` = none). */
  thing?: string;
  certType?: KeyType;
  certCn?: string;
  awsCertFile?: string;
  awsKeyFile?: string;
  /** Skip DescribeEndpoint: `host[:port]`. */
  mqttServer?: string;
  /** Where the local cert/key files are written (default: the current directory). */
  localDir?: string;
  /** SDK client settings (endpoint, credentials...): tests point it at a stand-in. */
  client?: IoTClientConfig;
  timeoutMs?: number;
  reboot?: boolean;
  log?: StepLogger;
}

export interface AwsIotSetupResult {
  cn: string;
  certificateArn: string;
  certificateId: string;
  thing?: string;
  policy?: string;
  mqttServer: string;
  certFile: string;
  keyFile: string;
}

async function aws<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new TransportError(`AWS IoT ${what} failed: ${errorMessage(e)}`, { cause: e });
  }
}

async function listAllPolicies(iot: IoTClient): Promise<string[]> {
  const names: string[] = [];
  let marker: string | undefined;
  for (let page = 0; page < 100; page++) {
    const r = await aws("ListPolicies", iot.send(new ListPoliciesCommand({ marker, pageSize: 250 })));
    for (const p of r.policies ?? []) if (p.policyName) names.push(p.policyName);
    marker = r.nextMarker;
    if (!marker) break;
  }
  return names;
}

export async function awsIotSetup(device: Device, o: AwsIotSetupOptions): Promise<AwsIotSetupResult> {
  const log = o.log ?? (() => undefined);
  const timeoutMs = o.timeoutMs ?? 20_000;
  if (Boolean(o.awsCertFile) !== Boolean(o.awsKeyFile)) throw new UsageError("--aws-cert-file and --aws-key-file go together");
  const policyName = o.policy ?? (o.leastPrivilege ? LEAST_PRIVILEGE_POLICY_NAME : DEFAULT_POLICY_NAME);
  if (policyName === "") throw new UsageError("--aws-iot-policy is empty: give a policy name, or - for none");
  // No --aws-region: the SDK's chain (AWS_REGION, then the profile's region in ~/.aws/config), as mos.
  const iot = new IoTClient({ ...(o.region ? { region: o.region } : {}), ...o.client });
  let region: string;
  try {
    region = o.region ?? (await iot.config.region());
  } catch {
    throw new UsageError("no AWS region: give --aws-region, set AWS_REGION, or configure one for the profile (aws configure)");
  }

  log("reading the device (Sys.GetInfo, Config.Get)");
  const facts = await readDevice(device, timeoutMs);
  const cn = checkCn(o.certCn ?? facts.id);
  const keyType: KeyType = o.certType ?? (facts.arch.startsWith("cc320") ? "RSA" : "ECDSA");
  const localDir = o.localDir ?? process.cwd();
  const certName = o.awsCertFile ? o.awsCertFile.split(/[/\\]/).pop() as string : `aws-${short(cn)}.crt.pem`;
  const keyName = o.awsKeyFile ? o.awsKeyFile.split(/[/\\]/).pop() as string : `aws-${short(cn)}.key.pem`;

  let certPem: string;
  let keyPem: string | undefined;
  let certificateArn: string;
  let certificateId: string;
  if (o.awsCertFile && o.awsKeyFile) {
    certPem = await readFile(o.awsCertFile, "utf8");
    keyPem = await readFile(o.awsKeyFile, "utf8");
    certificateId = createHash("sha256").update(new X509Certificate(certPem).raw).digest("hex");
    const d = await aws("DescribeCertificate", iot.send(new DescribeCertificateCommand({ certificateId })));
    certificateArn = d.certificateDescription?.certificateArn ?? "";
    if (!certificateArn) throw new TransportError(`AWS IoT does not know certificate ${certificateId}`);
    log(`using the existing certificate ${certificateId}`);
  } else {
    log(`making a ${keyType} key pair and a CSR for CN=${cn}`);
    const km = await obtainCsr(device, cn, keyName, keyType, timeoutMs);
    keyPem = km.keyPem;
    log(km.generatedOn === "device" ? "  the key was generated on the device; only the CSR left it" : "  generated here");
    const r = await aws("CreateCertificateFromCsr", iot.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: km.csrPem, setAsActive: true })));
    if (!r.certificatePem || !r.certificateArn || !r.certificateId) throw new TransportError("AWS IoT CreateCertificateFromCsr returned no certificate");
    certPem = r.certificatePem;
    certificateArn = r.certificateArn;
    certificateId = r.certificateId;
    log(`AWS IoT issued certificate ${certificateId}`);
  }

  if (policyName !== "-") {
    if (policyName === DEFAULT_POLICY_NAME || o.leastPrivilege) {
      const existing = await listAllPolicies(iot);
      if (!existing.includes(policyName)) {
        const doc = o.leastPrivilege ? leastPrivilegePolicy(arnPrefix(certificateArn, region)) : permissivePolicy();
        log(`creating policy ${policyName}${o.leastPrivilege ? " (least privilege: own client id and topics only)" : ""}`);
        await aws("CreatePolicy", iot.send(new CreatePolicyCommand({ policyName, policyDocument: doc })));
      }
    }
    log(`attaching policy ${policyName}`);
    await aws("AttachPolicy", iot.send(new AttachPolicyCommand({ policyName, target: certificateArn })));
  }

  const thing = o.thing === "-" ? undefined : o.thing || cn;
  if (thing) {
    try {
      await iot.send(new CreateThingCommand({ thingName: thing }));
      log(`created thing ${thing}`);
    } catch (e) {
      debug("provision", "CreateThing failed (ignored, as mos does)", { thing, error: errorMessage(e) });
    }
    await aws("AttachThingPrincipal", iot.send(new AttachThingPrincipalCommand({ thingName: thing, principal: certificateArn })));
    log(`attached the certificate to thing ${thing}`);
  }

  const certFile = o.awsCertFile ?? join(localDir, certName);
  const keyFile = o.awsKeyFile ?? join(localDir, keyName);
  if (!o.awsCertFile) {
    await writeFileAtomic(certFile, `CN: ${cn}\r\nID: ${certificateId}\r\nARN: ${certificateArn}\r\n${certPem}`, 0o644);
    if (keyPem) await writeFileAtomic(keyFile, keyPem, 0o600);
  }
  log(`uploading ${certName}${keyPem ? ` and ${keyName}` : ""} (FS.Put)`);
  await uploadFile(device, certName, certPem, timeoutMs);
  if (keyPem) await uploadFile(device, keyName, keyPem, timeoutMs);

  let mqttServer = o.mqttServer;
  if (!mqttServer) {
    const ep = await aws("DescribeEndpoint", iot.send(new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" })));
    if (!ep.endpointAddress) throw new TransportError("AWS IoT DescribeEndpoint returned no address");
    mqttServer = `${ep.endpointAddress}:8883`;
  }
  // Mongoose OS firmware ships ca.pem (with the Amazon roots); a device without one gets Amazon Root CA 1,
  // or its MQTT client could not verify AWS IoT's ATS endpoint after the reboot.
  const names = await device.fs.list("/", { timeout: timeoutMs }).catch(() => [] as string[]);
  if (!names.includes("ca.pem")) {
    const amazonRoot = amazonRootCa1();
    if (amazonRoot) {
      log("the device has no ca.pem: uploading Amazon Root CA 1 (FS.Put)");
      await uploadFile(device, "ca.pem", amazonRoot, timeoutMs);
    } else {
      log("warning: the device has no ca.pem and this Node has no Amazon Root CA 1 to upload");
    }
  }
  const values: Record<string, string> = {
    "mqtt.ssl_cert": certName,
    "mqtt.ssl_key": keyName,
    "mqtt.ssl_ca_cert": "ca.pem",
    "mqtt.server": mqttServer,
    "mqtt.enable": "true",
  };
  const cfg = facts.config as { device?: { id?: unknown }; aws?: { thing_name?: unknown } };
  if (cfg.device?.id === "") values["device.id"] = cn;
  if (cfg.aws && typeof cfg.aws.thing_name === "string") values["aws.thing_name"] = o.thing && o.thing !== "-" ? o.thing : "";
  log(`setting ${Object.keys(values).join(", ")} (Config.Set, save${o.reboot === false ? "" : " + reboot"})`);
  await setConfigAndReboot(device, values, timeoutMs, o.reboot !== false);
  return { cn, certificateArn, certificateId, thing, policy: policyName === "-" ? undefined : policyName, mqttServer, certFile, keyFile };
}

/** Amazon Root CA 1 (the root of AWS IoT's ATS endpoints), from Node's bundled root store. */
export function amazonRootCa1(): string | undefined {
  return rootCertificates.find((pem) => {
    try {
      return /CN=Amazon Root CA 1(\n|$)/.test(new X509Certificate(pem).subject);
    } catch {
      return false;
    }
  });
}
