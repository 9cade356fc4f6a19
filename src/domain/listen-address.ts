/**
 * A server's listen address as the config names it: `host:port`, an IPv4
 * address or `localhost` and a port, or `off`. The worker's /metrics listens
 * on loopback unless the config says otherwise: a scraper elsewhere needs
 * the address to say so on purpose.
 */
import { z } from 'zod';

export interface ListenAddress {
  host: string;
  port: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** The address, undefined for `off` (or empty); throws a one-line error for anything else. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const v = text.trim();
  if (v === '' || v === 'off') return undefined;
  const m = /^([^:\s]+):(\d{1,5})$/.exec(v);
  if (!m) throw new Error(`${JSON.stringify(text)} is not host:port (e.g. 127.0.0.1:9464) or off`);
  const [, host, port] = m;
  if (host !== 'localhost' && !IPV4.test(host))
    throw new Error(`${JSON.stringify(host)} is not an IPv4 address or localhost (e.g. 127.0.0.1, or 0.0.0.0 for all)`);
  const n = Number(port);
  if (n < 1 || n > 65535) throw new Error(`port ${port} is outside 1-65535`);
  return { host: host, port: n };
}

/** The config field: a listen address or off, checked as parseListenAddress checks it. */
export const listenAddressField = z.string().superRefine((v, ctx) => {
  try {
    parseListenAddress(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
