"""Serving an index to agents: the MCP server and what it runs on."""
