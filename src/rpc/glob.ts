/**
 * The glob matcher Mongoose OS uses for RPC method patterns and ACL entries (spec §1.5, mongoose 6.x
 * `mg_match_prefix`): `*` any run of characters, `?` one character, `|` or `,` separate alternatives, a
 * trailing `$` is an explicit end anchor. The pattern must match the whole name, case-insensitively.
 */

const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  const alternatives = pattern.split(/[|,]/).map((alt) => {
    let body = "";
    const a = alt.endsWith("$") ? alt.slice(0, -1) : alt;
    for (const ch of a) {
      if (ch === "*") body += ".*";
      else if (ch === "?") body += ".";
      else body += ch.replace(/[\\^$.+()[\]{}|/-]/g, "\\$&");
    }
    return body;
  });
  return new RegExp(`^(?:${alternatives.join("|")})$`, "is");
}

/** True when `pattern` matches the whole of `name` (case-insensitive). */
export function globMatch(pattern: string, name: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = compile(pattern);
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, re);
  }
  return re.test(name);
}

/** True when the pattern has glob characters (then it is a pattern, not a single method name). */
export function isGlob(pattern: string): boolean {
  return /[*?|,$]/.test(pattern);
}
