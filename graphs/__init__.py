"""LangGraph state machines of safebench. Each module exposes a compiled `graph` (see langgraph.json)."""
