"""Adapters to real model clients. Each lives in its own module and needs an extra:

- ``flujo_trio.agents.openai`` (``pip install flujo-trio[openai]``): any
  OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, LiteLLM).
- ``flujo_trio.agents.pydantic_ai`` (``pip install flujo-trio[pydantic-ai]``).

Importing ``flujo_trio`` (or this package) imports neither SDK.
"""

from .pricing import Pricing as Pricing
from .pricing import estimate_tokens as estimate_tokens
