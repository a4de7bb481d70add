"""Outbound requests to client-influenced URLs, behind the SSRF guard: import from `gengate.net.ssrf`."""
