/**
 * Who may use the web UI: whoever holds the node's token, as for every gRPC call
 * (docs/security.md), on loopback too, because other local users and web pages that
 * rebind a name to 127.0.0.1 can reach a loopback port. A browser brings the token once in
 * the URL heddle prints (`?token=…`); the server answers with an HttpOnly, SameSite=Strict
 * cookie and a redirect that drops the token from the address bar. Tools send
 * `Authorization: Bearer <token>` (Prometheus, curl). A POST (Stop, Start again) also needs
 * the page's own origin: a cross-origin POST is refused whatever it carries.
 */
import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";

export const COOKIE = "heddle_ui";

function sameToken(given: string | null, expected: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieOf(request: Request): string | null {
  const header = request.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === COOKIE) return value.join("=");
  }
  return null;
}

function bearerOf(request: Request): string | null {
  const value = request.headers.get("authorization");
  return value?.startsWith("Bearer ") ? value.slice("Bearer ".length) : null;
}

/** The answer to a request that may not go on, or null when it may. */
export function checkRequest(request: Request, token: string): Response | null {
  const url = new URL(request.url);
  const bearer = bearerOf(request);
  const viaHeader = sameToken(bearer, token);
  const viaCookie = sameToken(cookieOf(request), token);
  if (request.method === "GET" && url.searchParams.has("token")) {
    // The URL heddle printed: trade the token for a cookie, and take it out of the address.
    if (!sameToken(url.searchParams.get("token"), token)) return refused(401, "wrong token");
    url.searchParams.delete("token");
    const secure = url.protocol === "https:" ? "; Secure" : "";
    return new Response(null, {
      status: 303,
      headers: {
        location: url.pathname + url.search,
        "set-cookie": `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/${secure}`,
      },
    });
  }
  if (!viaHeader && !viaCookie) {
    return refused(
      401,
      "open the address heddle printed (it carries the token once), or send " +
        "`Authorization: Bearer <token>` (the token is in the state directory)",
    );
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    // A browser always sends Origin with a POST; a tool with the bearer header need not.
    const origin = request.headers.get("origin");
    const site = request.headers.get("sec-fetch-site");
    const sameOrigin = origin === url.origin && (site === null || site === "same-origin");
    if (!sameOrigin && !(origin === null && viaHeader)) {
      return refused(403, "cross-origin requests may not change anything");
    }
  }
  return null;
}

function refused(status: number, message: string): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
