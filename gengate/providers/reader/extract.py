"""Turning a fetched HTML page into what both formats need: title, description, metadata, the main
content (or chosen parts) as markdown, HTML or text, and the page's links and images, all absolute.

Synchronous and CPU-bound: the routes run it in a worker thread, on a body the guard already capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import trafilatura
from bs4 import BeautifulSoup, Tag
from markdownify import markdownify

_PUBLISHED = ("article:published_time", "og:published_time", "datePublished", "date", "pubdate",
              "publish_date", "dc.date", "dcterms.created")
_MODIFIED = ("article:modified_time", "og:updated_time", "dateModified", "last-modified")
_DROPPED = ("script", "style", "noscript", "template", "iframe", "svg", "canvas")
_BLANK_LINES = re.compile(r"\n{3,}")
_DATA_IMAGE = re.compile(r"!\[([^\]]*)\]\(data:[^)]*\)")


@dataclass
class Options:
    target: list[str] = field(default_factory=list)  # keep only these (CSS selectors)
    remove: list[str] = field(default_factory=list)  # drop these
    main_only: bool = True  # main content (trafilatura) unless `target` chose the parts


@dataclass
class Extraction:
    title: str
    description: str
    language: str
    markdown: str
    html: str
    text: str
    links: list[tuple[str, str]]  # (text, absolute URL), in page order, no duplicates
    images: list[tuple[str, str]]  # (alt, absolute URL)
    metadata: dict[str, str]  # every <meta> name/property with content, plus og* and times
    published: str | None


def _absolute(soup: BeautifulSoup, base: str) -> str:
    tag = soup.find("base", href=True)
    if isinstance(tag, Tag):
        base = urljoin(base, str(tag["href"]))
    for name, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("source", "src")):
        for el in soup.find_all(name):
            value = el.get(attr)
            if isinstance(value, str) and value.strip() and not value.startswith(("data:", "javascript:", "#")):
                el[attr] = urljoin(base, value.strip())
    return base


def _meta(soup: BeautifulSoup) -> dict[str, str]:
    found: dict[str, str] = {}
    for el in soup.find_all("meta"):
        name = el.get("property") or el.get("name") or el.get("itemprop")
        content = el.get("content")
        if isinstance(name, str) and isinstance(content, str) and name not in found:
            found[name] = content
    return found


def _select(soup: BeautifulSoup, selectors: list[str]) -> list[Tag]:
    chosen: list[Tag] = []
    for selector in selectors:
        try:
            chosen.extend(soup.select(selector))
        except Exception:  # soupsieve's SelectorSyntaxError and friends: the client's selector is wrong
            raise ValueError(f"invalid CSS selector {selector!r}") from None
    return chosen


def _markdown(html: str) -> str:
    text = markdownify(html, heading_style="ATX", bullets="-", strip=["script", "style"])
    return _BLANK_LINES.sub("\n\n", text).strip()


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for text, url in pairs:
        if url not in seen and urlsplit(url).scheme in ("http", "https"):
            seen.add(url)
            out.append((text, url))
    return out


def extract_html(raw: str, url: str, options: Options, *, keep_data_images: bool = False) -> Extraction:
    """Raises ValueError for an invalid selector."""
    soup = BeautifulSoup(raw, "lxml")
    _absolute(soup, url)
    meta = _meta(soup)
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else meta.get("og:title", "")
    html_tag = soup.find("html")
    language = str(html_tag.get("lang") or "") if isinstance(html_tag, Tag) else ""
    for el in soup.find_all(_DROPPED):
        el.decompose()
    for el in _select(soup, options.remove):
        el.decompose()
    body = soup.body or soup
    links = _unique([(a.get_text(" ", strip=True), str(a["href"])) for a in body.find_all("a", href=True)])
    images = _unique([(str(i.get("alt") or ""), str(i["src"])) for i in body.find_all("img", src=True)])

    chosen = _select(soup, options.target) if options.target else []
    if chosen:
        part_html = "\n".join(str(el) for el in chosen)
        markdown, html = _markdown(part_html), part_html
    else:
        page_html = str(soup)
        main_md = main_html = None
        if options.main_only:
            main_md = trafilatura.extract(page_html, output_format="markdown", include_links=True,
                                          include_images=True, include_tables=True, url=url, favor_recall=True)
            main_html = trafilatura.extract(page_html, output_format="html", include_links=True,
                                            include_images=True, include_tables=True, url=url, favor_recall=True)
        # A page too short for trafilatura to find an article still has content: take the whole body.
        html = main_html or str(body)
        markdown = main_md.strip() if main_md else _markdown(str(body))
    if not keep_data_images:
        markdown = _DATA_IMAGE.sub(r"![\1]()", markdown)
    text = BeautifulSoup(html, "lxml").get_text("\n", strip=True)
    published = next((meta[k] for k in _PUBLISHED if meta.get(k)), None)
    metadata = dict(meta)
    if published:
        metadata["publishedTime"] = published
    modified = next((meta[k] for k in _MODIFIED if meta.get(k)), None)
    if modified:
        metadata["modifiedTime"] = modified
    return Extraction(title=title, description=meta.get("description") or meta.get("og:description", ""),
                      language=language, markdown=markdown, html=html, text=text, links=links, images=images,
                      metadata=metadata, published=published)


def extract_text(text: str, title: str = "") -> Extraction:
    """A page that is not HTML (plain text, JSON, a PDF's extracted text)."""
    return Extraction(title=title, description="", language="", markdown=text, html="", text=text, links=[],
                      images=[], metadata={}, published=None)


def token_count(text: str) -> int:
    """About how many tokens a model sees in `text` (Jina reports `usage.tokens`)."""
    return len(re.findall(r"\w+|[^\w\s]", text))
