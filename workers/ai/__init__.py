"""The AI side of the agents: the LLM client, the tools, and the bounded tool loop."""
