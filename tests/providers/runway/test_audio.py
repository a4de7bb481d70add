"""Runway's audio creates through the official `runwayml` SDK (bodies and models from its 5.24 types):
`text_to_speech`, `sound_effect`, `speech_to_speech`, `voice_dubbing`, `voice_isolation`,
`video_to_audio`; client → gengate → HTTP → a standalone Runway emulator, whose outputs are real MP3s.
Speech is priced per 50 characters, sound per slice of seconds; an input of unknown length is
reserved as 200 s and settled on the cost Runway reports. Bad bodies are Runway's 400 (nothing charged
or sent); a failed task is refunded."""

from __future__ import annotations

import base64
import io
from typing import Any

import av
import pytest
from harness.runway import RunwayRaw, assert_runway_error, download, runway_gateway, sdk
from runwayml.lib import polling
from runwayml.types.task_retrieve_response import Failed, Succeeded

from gengate.emulator.media import MediaSpec, render

pytestmark = pytest.mark.timeout(240)

CREDIT = 10_000
VOICE = {"type": "runway-preset", "preset_id": "Maya"}


def mp3_data_uri(seconds: float) -> str:
    return "data:audio/mpeg;base64," + base64.b64encode(render(MediaSpec("mp3", "in", duration=seconds))).decode()


def mp4_data_uri(seconds: float) -> str:
    return "data:video/mp4;base64," + base64.b64encode(render(MediaSpec("mp4", "v", 160, 90, seconds, 8))).decode()


def probe_mp3(data: bytes) -> float:
    """Seconds of a playable MP3 (decoded frame by frame)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3"), stream.codec_context.name  # mp3 or mp3float
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


@pytest.fixture(scope="module")
def setup(make_server, emulator):
    yield from runway_gateway(make_server, emulator, "rw-audio", "eleven_*,mirelo_sfx_2_0,seed_audio")


async def _done(created: Any) -> Succeeded:
    task = await created.wait_for_task_output(timeout=90)
    assert isinstance(task, Succeeded), task
    return task


async def test_text_to_speech_is_a_playable_mp3_priced_per_50_characters(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=1_000_000)
    text = "The lighthouse keeper counted the ships until the fog rolled in."  # 65 characters: 2 units
    created = await sdk(server.url, key).text_to_speech.create(model="eleven_multilingual_v2", prompt_text=text,
                                                               voice=VOICE)
    assert created.estimated_cost.credits == 2
    task = await _done(created)
    assert task.cost.credits == 2
    seconds = probe_mp3(await download(http, task.output[0]))
    assert abs(seconds - len(text) / 15) <= 0.2, seconds
    assert server.credits(name) == 1_000_000 - 2 * CREDIT
    assert "Traceback" not in server.log_text()


async def test_sound_effects_by_duration_and_variants(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    task = await _done(await client.sound_effect.create(model="eleven_text_to_sound_v2", prompt_text="rain on a roof",
                                                        duration=5, loop=True))
    assert task.cost.credits == 1 and abs(probe_mp3(await download(http, task.output[0])) - 5) <= 0.2
    task = await _done(await client.sound_effect.create(model="mirelo_sfx_2_0", prompt_text="a door creaks",
                                                        duration=12, num_variants=2))
    assert task.cost.credits == 4 and len(task.output) == 2, task  # 2 slices of 6 s, twice
    assert {round(probe_mp3(await download(http, url))) for url in task.output} == {12}
    assert server.credits(name) == 1_000_000 - 5 * CREDIT


async def test_inputs_of_unknown_length_settle_on_runways_cost(setup, http, fast_polls):
    server, _ = setup
    name, key = server.make_named_key(credits=10_000_000)
    client = sdk(server.url, key)
    isolated = await client.voice_isolation.create(model="eleven_voice_isolation", audio_uri=mp3_data_uri(3))
    assert isolated.estimated_cost.credits == 34  # 200 s in slices of 6 s, reserved
    task = await _done(isolated)
    assert task.cost.credits == 1 and abs(probe_mp3(await download(http, task.output[0])) - 3) <= 0.2
    dubbed = await _done(await client.voice_dubbing.create(model="eleven_voice_dubbing", audio_uri=mp3_data_uri(4),
                                                           target_lang="es", num_speakers=1))
    assert dubbed.cost.credits == 2, dubbed  # 4 s in slices of 2 s
    revoiced = await _done(await client.speech_to_speech.create(
        model="eleven_multilingual_sts_v2", media={"type": "video", "uri": mp4_data_uri(5)}, voice=VOICE,
        remove_background_noise=True))
    assert revoiced.cost.credits == 2, revoiced  # 5 s in slices of 3 s
    scored = await _done(await client.video_to_audio.create(model="mirelo_sfx_2_0", video_uri=mp4_data_uri(2),
                                                            duration=6, prompt_text="footsteps"))
    assert scored.cost.credits == 1 and abs(probe_mp3(await download(http, scored.output[0])) - 6) <= 0.2
    assert server.credits(name) == 10_000_000 - 6 * CREDIT


TTS = {"model": "eleven_v3", "promptText": "hello", "voice": {"type": "runway-preset", "presetId": "Maya"}}


@pytest.mark.parametrize(("action", "body", "path"), [
    ("text_to_speech", {**TTS, "promptText": ""}, ["promptText"]),
    ("text_to_speech", {**TTS, "voice": None}, ["voice"]),
    ("text_to_speech", {**TTS, "voice": {"type": "runway-preset", "presetId": "Nobody"}}, ["voice", "presetId"]),
    ("text_to_speech", {**TTS, "model": "eleven_multilingual_v2", "promptText": "x" * 1001}, ["promptText"]),
    ("text_to_speech", {**TTS, "model": "tts-1"}, ["model"]),
    ("sound_effect", {"model": "mirelo_sfx_2_0", "promptText": "boom"}, ["duration"]),
    ("sound_effect", {"model": "eleven_text_to_sound_v2", "promptText": "boom", "duration": 31}, ["duration"]),
    ("speech_to_speech", {"model": "eleven_multilingual_sts_v2", "media": {"type": "text", "uri": "x"},
                          "voice": TTS["voice"]}, ["media", "type"]),
    ("voice_dubbing", {"model": "eleven_voice_dubbing", "audioUri": "https://cdn.example.com/a.mp3",
                       "targetLang": "xx"}, ["targetLang"]),
    ("voice_isolation", {"model": "eleven_voice_isolation", "audioUri": "data:image/png;base64,AAAA"}, ["audioUri"]),
    ("video_to_audio", {"model": "mirelo_sfx_2_0", "videoUri": "https://cdn.example.com/v.mp4"}, ["duration"]),
])
async def test_bad_audio_bodies_are_runway_400s_and_cost_nothing(setup, http, action, body, path):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    before = server.upstream.creates(secret, "runway")
    assert_runway_error(await RunwayRaw(http, server.url, key).create(body, action=action), 400, issue_path=path)
    assert server.credits(name) == 1_000_000 and server.upstream.creates(secret, "runway") == before


async def test_a_failed_speech_is_refunded(setup, fast_polls):
    server, secret = setup
    name, key = server.make_named_key(credits=1_000_000)
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=secret)
    created = await sdk(server.url, key).text_to_speech.create(model="eleven_v4", prompt_text="hello there",
                                                               voice=VOICE)
    with pytest.raises(polling.TaskFailedError) as err:
        await created.wait_for_task_output(timeout=60)
    assert isinstance(err.value.task_details, Failed) and err.value.task_details.cost.credits == 0
    assert server.credits(name) == 1_000_000
