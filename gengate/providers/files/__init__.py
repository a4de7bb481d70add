"""The file service: `/v1/files` in OpenAI's format, with Kimi-style text extraction for
`purpose=file-extract` (openai.md §6)."""
