/**
 * Where webhooks may go. Registration checks an endpoint's URL by its syntax and scheme only, and refuses an
 * address literal or a `localhost` name that could never pass the dispatcher's check; it never resolves a name. The
 * dispatcher checks every address a name resolves to, on the socket it connects (src/messaging/webhook-http.ts),
 * so a name that resolves differently later (DNS rebinding) cannot reach a private address either.
 */
import { BlockList, isIP } from 'node:net';

/** What the configuration allows (`WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE`). */
export interface EgressPolicy {
  allowHttp: boolean;
  allowPrivate: boolean;
}

/** The longest endpoint URL, in characters. */
export const WEBHOOK_URL_MAX_LENGTH = 2048;

/**
 * Addresses no webhook may reach unless `WEBHOOK_ALLOW_PRIVATE`: "this" network, private, carrier-grade NAT,
 * loopback, link-local (which holds the cloud metadata address 169.254.169.254), the IETF and benchmarking ranges,
 * multicast and reserved; in IPv6 the unspecified and loopback addresses, unique-local (fd00:ec2::254, a metadata
 * address, among them), link-local and multicast. IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4
 * address inside them.
 */
const FORBIDDEN = (() => {
  const list = new BlockList();
  for (const [network, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.0.2.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['198.51.100.0', 24],
    ['203.0.113.0', 24],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv4');
  }
  for (const [network, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
    ['2001:db8::', 32],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return list;
})();

/** The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address. */
function embeddedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  if (dotted) return dotted[1]!;
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return null;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** True for an address no webhook may reach unless private addresses are allowed. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return FORBIDDEN.check(address, 'ipv4');
  if (family === 6) {
    const inner = embeddedIpv4(address);
    if (inner !== null) return isIP(inner) !== 4 || FORBIDDEN.check(inner, 'ipv4');
    return FORBIDDEN.check(address, 'ipv6');
  }
  // Not an address at all: nothing can be said of it, so nothing is let through.
  return true;
}

/** Why `raw` cannot be an endpoint's URL under `policy`, or null when it can. No DNS lookup. */
export function endpointUrlProblem(raw: string, policy: EgressPolicy): string | null {
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) return `must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    return policy.allowHttp ? 'must be an http or https URL' : 'must be an https URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password';
  if (url.hash !== '') return 'must not have a fragment';
  if (url.hostname === '') return 'must name a host';
  if (!policy.allowPrivate) {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const local = host === 'localhost' || host.endsWith('.localhost');
    if (local || (isIP(host) !== 0 && isForbiddenAddress(host))) {
      return 'must not point to a loopback, private, link-local or metadata address';
    }
  }
  return null;
}
