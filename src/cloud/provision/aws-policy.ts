/**
 * AWS IoT policy documents for `mos aws-iot-setup`.
 * - `mos-default`: the permissive policy mos creates (spec §5.4 step 6): any IoT action on any resource.
 * - least privilege (`--aws-iot-policy-least-privilege`): with AWS IoT policy variables, a certificate may
 *   connect only with client id = the thing attached to it, and use only that thing's topics: subscribe
 *   and receive `<thing>/rpc` and `<thing>/rpc/...` (RPC requests, spec §2.4), publish under `<thing>/`
 *   (RPC replies go to `<thing>/rpc-resp/<operator>/rpc`, logs to `<thing>/log`), and its own device
 *   shadow topics. The device's MQTT client id is its device.id, so thing name = device.id (the default).
 */

export const DEFAULT_POLICY_NAME = "mos-default";
export const LEAST_PRIVILEGE_POLICY_NAME = "remos-thing-least-privilege";

export function permissivePolicy(): string {
  return JSON.stringify({ Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }], Version: "2012-10-17" });
}

/** `arn:aws:iot:REGION:ACCOUNT` from a certificate ARN (`arn:aws:iot:REGION:ACCOUNT:cert/ID`). */
export function arnPrefix(certArn: string, region: string): string {
  const m = /^arn:(aws[a-z-]*):iot:([^:]+):(\d+):cert\//.exec(certArn);
  return m ? `arn:${m[1]}:iot:${m[2]}:${m[3]}` : `arn:aws:iot:${region}:*`;
}

export function leastPrivilegePolicy(prefix: string): string {
  const thing = "${iot:Connection.Thing.ThingName}";
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: `${prefix}:client/${thing}`,
        Condition: { Bool: { "iot:Connection.Thing.IsAttached": "true" } },
      },
      { Effect: "Allow", Action: "iot:Subscribe", Resource: [`${prefix}:topicfilter/${thing}/rpc`, `${prefix}:topicfilter/${thing}/rpc/*`, `${prefix}:topicfilter/$aws/things/${thing}/shadow/*`] },
      { Effect: "Allow", Action: "iot:Receive", Resource: [`${prefix}:topic/${thing}/rpc`, `${prefix}:topic/${thing}/rpc/*`, `${prefix}:topic/$aws/things/${thing}/shadow/*`] },
      { Effect: "Allow", Action: "iot:Publish", Resource: [`${prefix}:topic/${thing}/*`, `${prefix}:topic/$aws/things/${thing}/shadow/*`] },
    ],
  });
}
