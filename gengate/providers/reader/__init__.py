"""URL analysis: `GET /r/{url}` in Jina Reader's format and `POST /v1/scrape` in Firecrawl v1's
(url-analysis.md). gengate fetches the page itself through the SSRF guard (`gengate.net`) and
extracts it with its own code: trafilatura for the main content, markdownify for chosen parts."""
