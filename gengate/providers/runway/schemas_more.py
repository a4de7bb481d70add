"""Runway bodies of `character_performance` and the audio creates, for the OpenAPI document only (the
adaptor validates requests itself: rules_video.py, rules_audio.py). Unknown keys pass upstream."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunwayTypedMedia(_Open):
    type: Literal["image", "video", "audio"]
    uri: str = Field(description="An HTTPS URL on a domain name, a data URI up to 5 MB, or a `runway://` upload")


class RunwayCharacterPerformance(_Open):
    """`POST /runway/v1/character_performance`: `act_two` moves `character` (an image or a video) as the
    person in `reference` (a 3-30 s video) does; the output is as long as the reference."""

    model: Literal["act_two"]
    character: RunwayTypedMedia
    reference: RunwayTypedMedia
    ratio: Literal["1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672"] | None = None
    bodyControl: bool | None = None
    expressionIntensity: int | None = Field(default=None, ge=1, le=5)
    seed: int | None = Field(default=None, ge=0, le=4294967295)


class RunwayVoice(_Open):
    type: Literal["runway-preset", "reference-audio"]
    presetId: str | None = Field(default=None, examples=["Maya", "Bernard"])
    audioUri: str | None = Field(default=None, description="seed_audio's reference-audio voice")


class RunwayTextToSpeech(_Open):
    """`POST /runway/v1/text_to_speech`: `eleven_multilingual_v2` (≤ 1000 characters), `eleven_v3`,
    `eleven_v4` (a `runway-preset` voice), `seed_audio` (voice optional)."""

    model: Literal["eleven_multilingual_v2", "eleven_v3", "eleven_v4", "seed_audio"]
    promptText: str
    voice: RunwayVoice | None = None


class RunwaySoundEffect(_Open):
    """`POST /runway/v1/sound_effect`: `eleven_text_to_sound_v2` (`duration` 0.5-30 s, `loop`),
    `mirelo_sfx_2_0` (`duration` required, `numVariants`), `seed_audio`."""

    model: Literal["eleven_text_to_sound_v2", "mirelo_sfx_2_0", "seed_audio"]
    promptText: str
    duration: float | None = Field(default=None, ge=0.5, le=30)
    loop: bool | None = None
    numVariants: int | None = Field(default=None, ge=1, le=4)


class RunwaySpeechToSpeech(_Open):
    """`POST /runway/v1/speech_to_speech`: `eleven_multilingual_sts_v2` re-voices `media`."""

    model: Literal["eleven_multilingual_sts_v2"]
    media: RunwayTypedMedia
    voice: RunwayVoice
    removeBackgroundNoise: bool | None = None


class RunwayVoiceDubbing(_Open):
    """`POST /runway/v1/voice_dubbing`: `eleven_voice_dubbing` into `targetLang`."""

    model: Literal["eleven_voice_dubbing"]
    audioUri: str
    targetLang: str = Field(examples=["es", "fr", "ja"])
    disableVoiceCloning: bool | None = None
    dropBackgroundAudio: bool | None = None
    numSpeakers: int | None = None


class RunwayVoiceIsolation(_Open):
    """`POST /runway/v1/voice_isolation`: `eleven_voice_isolation` keeps the voice of `audioUri`."""

    model: Literal["eleven_voice_isolation"]
    audioUri: str


class RunwayVideoToAudio(_Open):
    """`POST /runway/v1/video_to_audio`: `mirelo_sfx_2_0` scores `videoUri` with sound for `duration` s."""

    model: Literal["mirelo_sfx_2_0"]
    videoUri: str
    duration: float = Field(ge=0.5, le=30)
    promptText: str | None = None
    numVariants: int | None = Field(default=None, ge=1, le=4)


BODIES: dict[str, tuple[type[BaseModel], str]] = {
    "character_performance": (RunwayCharacterPerformance, "Animate a character as a reference video performs"),
    "text_to_speech": (RunwayTextToSpeech, "Speak a text"),
    "sound_effect": (RunwaySoundEffect, "Make a sound effect from a text"),
    "speech_to_speech": (RunwaySpeechToSpeech, "Re-voice speech"),
    "voice_dubbing": (RunwayVoiceDubbing, "Dub speech into another language"),
    "voice_isolation": (RunwayVoiceIsolation, "Isolate the voice of a recording"),
    "video_to_audio": (RunwayVideoToAudio, "Make the sound of a video"),
}
