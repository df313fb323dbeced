"""The security headers on every answer the site sends: a strict CSP and no caching.

The page talks to the proxy and NKN nodes on other origins (http, ws, or wss), so connect-src
is open; scripts come only from this server. nkn-sdk's crypto runs WebAssembly, which CSP
allows only with 'wasm-unsafe-eval'.
"""

from __future__ import annotations

CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' http: https: ws: wss:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
