"""Zhipu GLM: `zhipu` channels serve the synchronous relay (routes.py: chat) and the task engine
(tasks.py: CogVideoX videos and asynchronous chats). Chat models are priced as tokens under the relay's price names
(`openai:tokens:<model>:input|output`, credits per million); videos per started 5 seconds."""

from __future__ import annotations

from gengate.providers.zhipu.images import PRICES as IMAGE_PRICES
from gengate.providers.zhipu.tasks import ZhipuTaskAdaptor

PRICES: dict[str, int] = {
    "openai:tokens:glm-4-flash:input": 100_000,
    "openai:tokens:glm-4-flash:output": 100_000,
    "openai:tokens:glm-4-plus:input": 700_000,
    "openai:tokens:glm-4-plus:output": 700_000,
    "openai:tokens:glm-4.5:input": 300_000,
    "openai:tokens:glm-4.5:output": 1_400_000,
}

ADAPTORS = [ZhipuTaskAdaptor()]
CHANNEL_PROVIDERS = ("zhipu",)
EXTRA_PRICES = [PRICES, IMAGE_PRICES]
