/**
 * The device configuration schema (spec §6, §4.1, §2.4): every key with its type and default. The
 * `DeviceConfig` type is derived from it, so `agent.config().mqtt.enable` is a typed boolean.
 *
 * Decisions (documented in docs/DEVICE.md):
 * - `device.id` defaults to `<arch>_??????` where arch is the agent's arch (the host's by default);
 *   `?`s are filled from the MAC at load (see config/store.ts).
 * - `http.listen_addr` defaults to `127.0.0.1:8080`: secure by default (loopback only); set
 *   `http.listen_addr=:8080` (or `0.0.0.0:8080`) to expose the device on the network.
 * - `mqtt1.*` (backup broker) and platform-specific sections are not modelled.
 */

export type ConfigType = "string" | "int" | "double" | "bool";
export type ConfigScalar = string | number | boolean;

/** One configuration value: its type and default. */
export class Leaf<V extends ConfigScalar> {
  readonly type: ConfigType;
  readonly def: V;
  constructor(type: ConfigType, def: V) {
    this.type = type;
    this.def = def;
  }
}

const str = (d = ""): Leaf<string> => new Leaf<string>("string", d);
const int = (d = 0): Leaf<number> => new Leaf<number>("int", d);
const dbl = (d = 0): Leaf<number> => new Leaf<number>("double", d);
const bool = (d = false): Leaf<boolean> => new Leaf<boolean>("bool", d);

/** `<arch>` in a default is replaced by the agent's arch. */
export const ARCH_PLACEHOLDER = "<arch>";

export const CONFIG_SCHEMA = {
  device: {
    id: str(`${ARCH_PLACEHOLDER}_??????`),
    license: str(),
    public_key: str(),
    sn: str(),
  },
  debug: {
    level: int(2),
    file_level: str(),
    event_level: int(2),
    stdout_uart: int(0),
    stderr_uart: int(0),
    stdout_topic: str(),
    stderr_topic: str(),
    udp_log_addr: str(),
    udp_log_level: int(3),
  },
  sys: {
    tz_spec: str(),
    wdt_timeout: int(30),
  },
  conf_acl: str("*"),
  http: {
    enable: bool(true),
    listen_addr: str("127.0.0.1:8080"),
    ssl_cert: str(),
    ssl_key: str(),
    ssl_ca_cert: str(),
  },
  mqtt: {
    enable: bool(false),
    server: str("iot.eclipse.org:1883"),
    client_id: str(),
    user: str(),
    pass: str(),
    reconnect_timeout_min: dbl(2),
    reconnect_timeout_max: dbl(60),
    ssl_cert: str(),
    ssl_key: str(),
    ssl_ca_cert: str(),
    ssl_cipher_suites: str(),
    ssl_psk_identity: str(),
    ssl_psk_key: str(),
    clean_session: bool(true),
    keep_alive: int(60),
    will_topic: str(),
    will_message: str(),
    will_retain: bool(false),
    max_qos: int(2),
    recv_mbuf_limit: int(3072),
    require_time: bool(false),
    cloud_events: bool(true),
    max_queue_length: int(5),
    ws_enable: bool(false),
    ws_path: str("/mqtt"),
    debug_use_log_level: bool(false),
  },
  rpc: {
    enable: bool(true),
    http_enable: bool(true),
    service_sys_enable: bool(true),
    max_frame_size: int(4096),
    max_queue_length: int(25),
    max_non_persistent_channels: int(20),
    default_out_channel_idle_close_timeout: int(10),
    acl: str(),
    acl_file: str(),
    auth_domain: str("RPC"),
    auth_file: str(),
    auth_algo: int(0),
    uart: {
      uart_no: int(0),
      baud_rate: int(115200),
      fc_type: int(2),
      dst: str(),
    },
    ws: {
      enable: bool(true),
      server_address: str(),
      reconnect_interval_min: int(1),
      reconnect_interval_max: int(60),
      ssl_server_name: str(),
      ssl_cert: str(),
      ssl_key: str(),
      ssl_ca_cert: str(),
    },
    mqtt: {
      enable: bool(true),
      sub_topic: str("%.*s/rpc"),
      pub_topic: str("%.*s/rpc"),
      sub_wc: bool(true),
      qos: int(1),
    },
  },
  wifi: {
    ap: {
      enable: bool(true),
      ssid: str("Mongoose_??????"),
      pass: str("Mongoose"),
      hidden: bool(false),
      channel: int(6),
      max_connections: int(10),
      ip: str("192.168.4.1"),
      netmask: str("255.255.255.0"),
      gw: str("192.168.4.1"),
      dhcp_start: str("192.168.4.2"),
      dhcp_end: str("192.168.4.100"),
    },
    sta: {
      enable: bool(false),
      ssid: str(),
      pass: str(),
      user: str(),
      anon_identity: str(),
      cert: str(),
      key: str(),
      ca_cert: str(),
      ip: str(),
      netmask: str(),
      gw: str(),
      nameserver: str(),
      dhcp_hostname: str(),
    },
    sta_connect_timeout: int(30),
  },
  i2c: {
    enable: bool(false),
    freq: int(100000),
    debug: bool(false),
    sda_gpio: int(-1),
    scl_gpio: int(-1),
  },
  update: {
    timeout: int(600),
    commit_timeout: int(0),
    key0: str(),
    key1: str(),
    key2: str(),
    key3: str(),
    key4: str(),
    key5: str(),
    key6: str(),
    key7: str(),
    sig_req_mask: int(-1),
  },
  aws: {
    thing_name: str(),
    greengrass: {
      enable: bool(false),
      reconnect_timeout_min: int(2),
      reconnect_timeout_max: int(60),
    },
  },
} as const;

type ConfigOf<T> = { -readonly [K in keyof T]: T[K] extends Leaf<infer V> ? V : ConfigOf<T[K]> };

/** The whole configuration as a typed object. */
export type DeviceConfig = ConfigOf<typeof CONFIG_SCHEMA>;

/** A schema node: a leaf or a section. */
export type SchemaNode = Leaf<ConfigScalar> | { readonly [key: string]: SchemaNode };

export function isLeaf(n: SchemaNode): n is Leaf<ConfigScalar> {
  return n instanceof Leaf;
}

/** The schema node at a dotted key (`mqtt`, `rpc.uart.baud_rate`), or undefined for an unknown key. */
export function schemaAt(key: string): SchemaNode | undefined {
  let node: SchemaNode = CONFIG_SCHEMA;
  if (key === "") return node;
  for (const part of key.split(".")) {
    if (isLeaf(node) || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

/** The defaults as a plain object (with `<arch>` replaced). */
export function defaultConfig(arch: string): DeviceConfig {
  const build = (n: SchemaNode): unknown => {
    if (isLeaf(n)) return typeof n.def === "string" ? n.def.replace(ARCH_PLACEHOLDER, arch) : n.def;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n)) out[k] = build(v);
    return out;
  };
  return build(CONFIG_SCHEMA) as DeviceConfig;
}

/** Every leaf key, dotted, in schema order. */
export function leafKeys(node: SchemaNode = CONFIG_SCHEMA, prefix = ""): string[] {
  if (isLeaf(node)) return [prefix];
  return Object.entries(node).flatMap(([k, v]) => leafKeys(v, prefix ? `${prefix}.${k}` : k));
}
