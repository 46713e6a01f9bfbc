"""NATO Multimedia API client: `Client`, the models, `ApiError`; `natomedia-sync` mirrors."""

from natomedia_client.client import Client, FeedItem, FeedPage
from natomedia_client.errors import ApiError
from natomedia_client.models import (
    Article,
    ArticleSummary,
    DownloadUrl,
    RenditionOut,
    VideoDetail,
    VideoSummary,
    VideoTombstone,
)

__all__ = [
    "ApiError",
    "Article",
    "ArticleSummary",
    "Client",
    "DownloadUrl",
    "FeedItem",
    "FeedPage",
    "RenditionOut",
    "VideoDetail",
    "VideoSummary",
    "VideoTombstone",
]
