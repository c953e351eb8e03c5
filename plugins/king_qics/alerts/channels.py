"""Sending a message: e-mail through providers-smtp's SmtpNotifier (an Airflow SMTP connection),
Slack or Teams through an incoming webhook (an HTTP connection whose host is the webhook URL)."""

from __future__ import annotations

import logging

from airflow.sdk import BaseNotifier

from king_qics.alerts.compose import Message

log = logging.getLogger(__name__)


class WebhookNotifier(BaseNotifier):
    """POST a message to a Slack or Teams incoming webhook (JSON, over providers-http's HttpHook)."""

    def __init__(self, http_conn_id: str, kind: str, subject: str, text: str):
        super().__init__()
        self.http_conn_id, self.kind, self.subject, self.text = http_conn_id, kind, subject, text

    def payload(self) -> dict:
        if self.kind == "teams":  # a Workflows ("When a Teams webhook request is received") card
            card = {
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": self.subject, "weight": "bolder", "wrap": True},
                    {"type": "TextBlock", "text": self.text, "wrap": True},
                ],
            }
            return {
                "type": "message",
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
            }
        return {"text": self.text}

    def notify(self, context) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        HttpHook(method="POST", http_conn_id=self.http_conn_id).run(
            json=self.payload(), extra_options={"timeout": 30}
        )


def send(message: Message, notifications, context: dict) -> list[str]:
    """Send ``message`` through every channel ``notifications`` names; the channels it went to.
    The notifiers' ``notify`` is called directly: the message is final text, never a template."""
    sent = []
    if notifications.email_conn_id and notifications.email_to:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(
            to=list(notifications.email_to),
            from_email=notifications.email_from,
            subject=message.full_subject,
            html_content=message.html(),
            smtp_conn_id=notifications.email_conn_id,
            custom_headers={"X-King-Qics-Alert": message.kind},
        ).notify(context)
        sent.append(f"e-mail ({notifications.email_conn_id})")
    if notifications.webhook_conn_id:
        WebhookNotifier(
            notifications.webhook_conn_id, notifications.webhook_kind, message.full_subject, message.text()
        ).notify(context)
        sent.append(f"{notifications.webhook_kind} ({notifications.webhook_conn_id})")
    log.info("alert %s of %s sent: %s (%s)", message.kind, message.administration, message.full_subject, sent)
    return sent
