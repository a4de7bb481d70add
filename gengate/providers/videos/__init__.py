"""OpenAI-shaped `/v1/videos` over every video provider (openai.md §8)."""
