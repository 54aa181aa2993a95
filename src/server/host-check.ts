import { isIP } from "node:net";
import os from "node:os";
import { ForbiddenHostError } from "../domain/errors.js";

/**
 * DNS-rebinding protection: while the server listens on a loopback address, a request must name a local host in
 * its Host header (localhost, a loopback/private IP, this machine's name, *.localhost/.local/.internal). A page on
 * an attacker's domain that resolves to 127.0.0.1 is refused with 403. A server bound to other addresses is
 * meant to be reached by name, so it skips the check.
 */
export function hostChecker(listenHost: string): (hostHeader: string | undefined) => void {
  if (!isLoopback(listenHost)) return () => {};
  const machine = os.hostname().toLowerCase();
  return (hostHeader) => {
    if (hostHeader === undefined || hostHeader === "") return;
    const host = hostHeader.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase();
    if (host === "localhost" || host === machine || /\.(localhost|local|internal)$/.test(host)) return;
    if (isIP(host) !== 0 && isLocalAddress(host)) return;
    throw new ForbiddenHostError(`host "${hostHeader}" is not allowed`);
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

function isLocalAddress(ip: string): boolean {
  if (isLoopback(ip) || ip === "0.0.0.0" || ip === "::") return true;
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|fe80:|fc|fd)/i.test(ip);
}
