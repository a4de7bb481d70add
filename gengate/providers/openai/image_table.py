"""Which provider serves each `/v1/images/generations` model that no `openai` channel serves, and how
an OpenAI images request becomes that provider's native body (interface.md: `/v1/images/generations`).

A `sync` route is relayed to the provider's own synchronous images endpoint (CogView); a task route is
created as the provider's task (`action` given to `prepare_action`, else `prepare`) and awaited. A
string value of the body template that is exactly a placeholder is replaced:

    $model   the model sent        $prompt  the prompt     $n      the number of images (int)
    $size    the size as sent      $aspect  "16:9" | "9:16" | "1:1" from `size`
    $ratio   the route's `ratios[aspect]`

Adding a model is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageRoute:
    provider: str
    body: Mapping[str, Any]
    sync: bool = False  # relayed synchronously (the provider answers the images at once)
    action: str | None = None  # the provider action of a task route (None: `prepare` reads the body)
    url_field: str = "url"  # the output's file field holding the image (task routes)
    max_n: int = 1
    ratios: Mapping[str, str] = field(default_factory=dict)


MODELS: dict[str, ImageRoute] = {
    # CogView: synchronous on the GLM images endpoint; size WxH as sent.
    "cogview-4": ImageRoute("zhipu", {"model": "$model", "prompt": "$prompt", "size": "$size"}, sync=True),
    # Kling: an image_generation task, up to 9 images, aspect ratio from the size.
    "kling-v1": ImageRoute("kling", {"model_name": "$model", "prompt": "$prompt", "n": "$n",
                                     "aspect_ratio": "$aspect"}, action="image_generation", max_n=9),
    # Runway: text_to_image, ratio in pixels (1080p).
    "gen4_image": ImageRoute("runway", {"model": "$model", "promptText": "$prompt", "ratio": "$ratio"},
                             action="text_to_image",
                             ratios={"16:9": "1920:1080", "9:16": "1080:1920", "1:1": "1024:1024"}),
    # Luma Photon: an image generation; the output's `image` file.
    "photon-1": ImageRoute("luma", {"generation_type": "image", "model": "$model", "prompt": "$prompt",
                                    "aspect_ratio": "$aspect"}, url_field="image"),
}


def aspect_of(size: str) -> str:
    """The aspect ratio a `WxH` size is closest to, of the three every provider offers."""
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        return "1:1"
    if width <= 0 or height <= 0:
        return "1:1"
    ratio = width / height
    return "16:9" if ratio > 1.2 else "9:16" if ratio < 1 / 1.2 else "1:1"


def fill(template: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(template, str) and template.startswith("$"):
        return values[template[1:]]
    if isinstance(template, Mapping):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template
