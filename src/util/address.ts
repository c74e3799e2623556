// Network addresses as users type them: HOST:PORT, [IPv6]:PORT, or a bare PORT.
import net from 'node:net';

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses "HOST:PORT", "[IPv6]:PORT", or a plain "PORT" (meaning 127.0.0.1).
 * Port 0 ("any free port") is refused unless `allowPortZero` (listeners only).
 */
export function parseHostPort(
  s: string,
  opts: { allowPortZero?: boolean; defaultHost?: string } = {},
): { host: string; port: number } {
  const text = s.trim();
  const usage = 'expected HOST:PORT, [IPv6]:PORT or PORT';
  if (text === '') throw new Error(`empty address: ${usage}`);
  let host: string;
  let portText: string;
  if (/^\d+$/.test(text)) {
    host = opts.defaultHost ?? '127.0.0.1';
    portText = text;
  } else if (text.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
    if (!m) throw new Error(`bad address "${s}": unbalanced "[" (${usage})`);
    host = m[1]!;
    if (host === '' || !net.isIPv6(host))
      throw new Error(`bad address "${s}": "${host}" is not an IPv6 address`);
    if (m[2] === undefined)
      throw new Error(`bad address "${s}": missing ":PORT" after "[${host}]"`);
    portText = m[2];
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new Error(`bad address "${s}": missing ":PORT" (${usage})`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) {
      throw new Error(
        `bad address "${s}": an IPv6 address needs brackets, as in [${host}]:${portText}`,
      );
    }
    if (host === '') throw new Error(`bad address "${s}": missing host before ":" (${usage})`);
  }
  if (!/^\d+$/.test(portText))
    throw new Error(`bad address "${s}": port "${portText}" is not a number`);
  const port = Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (port < min || port > 65535)
    throw new Error(`bad address "${s}": port ${portText} is out of range (${min}-65535)`);
  return { host, port };
}
