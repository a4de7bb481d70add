"""The one task adaptor of `zhipu` channels: CogVideoX videos (video.py) and asynchronous chats
(async_chat.py) share GLM's `/async-result/{id}`, so one adaptor serves both, choosing by the task's
action. Its own `prepare` makes videos (the `/v1/videos` view uses it); `for_chat()` makes chats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gengate.core.adaptor import (
    Account,
    HttpCall,
    HttpReply,
    OutputSpec,
    Prepared,
    Progress,
    Resolver,
    TaskRef,
    TaskView,
)
from gengate.core.pricing import PriceTable
from gengate.providers.zhipu import async_chat
from gengate.providers.zhipu.video import ZhipuVideoAdaptor


class ZhipuTaskAdaptor(ZhipuVideoAdaptor):
    def for_chat(self) -> ZhipuTaskAdaptor:
        """The adaptor of `POST /async/chat/completions`: `prepare` makes chat tasks."""
        return _ChatAdaptor()

    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        if async_chat.ACTION in units:
            return async_chat.price(units, prices)
        return super().price(units, prices)

    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...], prices: PriceTable) -> int:
        if async_chat.ACTION in units:
            return async_chat.final_price(units, outputs, prices)
        return super().final_price(units, outputs, prices)

    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall:
        if ref.action == async_chat.ACTION:
            return HttpCall("POST", async_chat.PATH, json_body=dict(ref.upstream_request),
                            headers=self._headers(account))
        return super().build_submit(account, ref)

    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress:
        if ref.action != async_chat.ACTION:
            return super().parse_poll(reply, ref)
        body = reply.json()
        if str(body.get("task_status")) == "SUCCESS":
            return async_chat.parse_success(body, "SUCCESS")
        return super().parse_poll(reply, ref)  # PROCESSING, FAIL and unknown states read alike

    def render(self, task: TaskView) -> dict[str, Any]:
        out = super().render(task)
        if task.action == async_chat.ACTION:
            out.pop("video_result", None)
            async_chat.render_result(task, out)
        return out


class _ChatAdaptor(ZhipuTaskAdaptor):
    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        return async_chat.prepare(body)
