"""Real processes on loopback: moto's server, real HAProxy, real HTTP servers."""
