"""SNS notices. Without a topic, notices are only logged."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.clients import translated


class SnsNotifier:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str) -> None:
        with translated("sns", "Publish"):
            # SNS subjects: at most 100 ASCII characters, no line breaks.
            self._client.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=message)
