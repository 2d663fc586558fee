# ruff: noqa: W291  (the sources have trailing spaces inside §12.4; the examples stay verbatim)
"""The JSON examples of MODELARK.md §12, character for character (the contract lives outside
the repository). Bodies with comments are kept with them; `strip_comments` removes them as the
contract says to before parsing."""

from __future__ import annotations

import re

# §12.1 (S1a, id 61332333000)
CREATE_TEXT_TO_VIDEO = r"""{
    "model": "seedance-1-5-pro-251215",
    "content": [
        {
            "type": "text",
            "text": "The kitten is yawning at the camera."
        }
    ],
    "resolution": "720p",
    "ratio": "16:9",
    "duration": 5,
    "seed": 11,
    "camera_fixed": false,
    "watermark": true
}
"""

# §12.2 (S7, id 71000738670)
CREATE_FIRST_LAST_FRAME = r"""{
    "model": "dreamina-seedance-2-5-260628",
    "content": [
        {
            "type": "text",
            "text": "A strawberry sandwich cookie slowly completes one full rotation while the camera moves smoothly around it and keeps the product centered."
        },
        {
            "type": "image_url",
            "image_url": {
                "url": "https://arkdocs-en.tos-ap-southeast-1.volces.com/images/video-generation/seedance2.5_reference1.png"
            },
            "role": "first_frame"
        },
        {
            "type": "image_url",
            "image_url": {
                "url": "https://arkdocs-en.tos-ap-southeast-1.volces.com/images/video-generation/seedance2.5_reference1.png"
            },
            "role": "last_frame"
        }
    ],
    "generate_audio": true,
    "ratio": "adaptive",
    "duration": 5
}
"""

# §12.3 (S6, id 66136428362; SDK kwargs as the JSON body)
CREATE_MULTIMODAL_REFERENCE = r"""{
    "model": "dreamina-seedance-2-0-260128",
    "content": [
        {
            "type": "text",
            "text": "Use the first-person POV framing from Video 1 throughout, and use Audio 1 as the background music throughout. First-person POV fruit tea promotional ad, seedance limited-edition apple fruit tea; opening frame is Image 1, your hand picks a dew-covered Aksu red apple, a light, crisp apple tapping sound; 2–4 seconds: fast cuts, your hand drops apple chunks into a shaker, adds ice and tea base, shakes forcefully, ice clinking and shaking sounds sync with upbeat rhythmic beats, background audio: {Fresh-cut, shaken fresh}; 4–6 seconds: first-person close-up of the finished drink, layered fruit tea is poured into a clear cup, your hand gently squeezes milk foam to spread across the top, a pink brand sticker is applied to the cup, the camera moves closer to show the layered textures of the foam and fruit tea; 6–8 seconds: first-person hand-held toast shot, you raise the fruit tea from Image 2 toward the camera (simulating handing it to the viewer), the cup label is clearly visible, background audio {Take a sip of fresh refreshment}, the final frame freezes on Image 2. All background voice audio uses a female voice."
        },
        {
            "type": "image_url",
            "image_url": {
                "url": "https://ark-doc.tos-ap-southeast-1.bytepluses.com/doc_image/r2v_tea_pic1.jpg"
            },
            "role": "reference_image"
        },
        {
            "type": "image_url",
            "image_url": {
                "url": "https://ark-doc.tos-ap-southeast-1.bytepluses.com/doc_image/r2v_tea_pic2.jpg"
            },
            "role": "reference_image"
        },
        {
            "type": "video_url",
            "video_url": {
                "url": "https://ark-doc.tos-ap-southeast-1.bytepluses.com/doc_video/r2v_tea_video1.mp4"
            },
            "role": "reference_video"
        },
        {
            "type": "audio_url",
            "audio_url": {
                "url": "https://ark-doc.tos-ap-southeast-1.bytepluses.com/doc_audio/r2v_tea_audio1.mp3"
            },
            "role": "reference_audio"
        }
    ],
    "generate_audio": true,
    "ratio": "16:9",
    "duration": 11,
    "watermark": true
}
"""

# §12.4 (S5, id 59208421674); the `//` comment line is in the original
QUERY_SUCCEEDED = r"""{
    "id": "cgt-2025****",
    "model": "dreamina-seedance-2-0-260128",
    "status": "succeeded", 
    "content": {
        // Video download URL (file format is MP4)
        "video_url": "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/****" 
    },
    "usage": {
        "completion_tokens": 246840,
        "total_tokens": 246840
    },
    "created_at": 1765510475,
    "updated_at": 1765510559,
    "seed": 58944,
    "resolution": "1080p",
    "ratio": "16:9",
    "duration": 5,
    "framespersecond": 24,
    "service_tier": "default",
    "execution_expires_after": 172800
}
"""

# §12.4, second block (S13, the PowerTokens copy of the route)
QUERY_SUCCEEDED_MIRROR = r"""{
  "id": "cgt-2026****-****",
  "model": "doubao-seedance-2-0-260128",
  "status": "succeeded",
  "content": {
    "video_url": "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/xxx"
  },
  "usage": {
    "completion_tokens": 108900,
    "total_tokens": 108900
  },
  "created_at": 1779348818,
  "updated_at": 1779348874,
  "seed": 78674,
  "resolution": "720p",
  "ratio": "16:9",
  "duration": 5,
  "framespersecond": 24,
  "service_tier": "default",
  "execution_expires_after": 172800,
  "generate_audio": true,
  "draft": false,
  "priority": 0
}
"""

# §12.5 (S5 "Use Webhook notifications"); the `#` comment is in the original
CALLBACK_RUNNING = r"""{
  "id": "cgt-2025****",
  "model": "dreamina-seedance-2-0-260128",
  "status": "running", # Possible status values: queued, running, succeeded, failed, expired
  "created_at": 1765434920,
  "updated_at": 1765434920,
  "service_tier": "default",
  "execution_expires_after": 172800
}
"""

# §12.6 (S10)
ERROR_ENVELOPE = r"""{
    "error": {
        "code": "MissingParameter",
        "message": "The request failed because it is missing one or multiple required parameters. Request id: 02172046847020185d65de0b597df************************",
        "param": "input",
        "type": "BadRequest"
    }
}
"""


def strip_comments(text: str) -> str:
    """Drop the `// …` lines and trailing `# …` comments the sources carry."""
    text = re.sub(r"(?m)^\s*//.*\n", "", text)
    return re.sub(r"(?m)\s#[^\n]*$", "", text)
