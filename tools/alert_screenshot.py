"""Render a received alert e-mail (an .eml file as the SMTP server got it) in headless Chromium, as
a mail client shows it (its From, To, Date and Subject over the HTML body), and save a PNG.

The e-mails come from real DAG runs: the alert tests keep what their SMTP server received when
$KQS_ALERT_MAILDIR names a folder, e.g.

    KQS_ALERT_MAILDIR=/tmp/alerts .venv/bin/python -m pytest -p no:cacheprovider tests/e2e/test_alerts.py
    .venv/bin/python tools/alert_screenshot.py /tmp/alerts/*-task_failed.eml docs/alert_email.png
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import tempfile
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDTH = 1100


def page(eml: Path) -> str:
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(("html", "plain"))
    content = body.get_content() if body is not None else ""
    if body is not None and body.get_content_type() == "text/plain":
        content = f"<pre>{html.escape(content)}</pre>"
    rows = "".join(
        f"<tr><th>{name}</th><td>{html.escape(str(message[name] or ''))}</td></tr>"
        for name in ("From", "To", "Date", "Subject")
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        "body{margin:0;background:#eef1f5;font-family:sans-serif}"
        ".mail{margin:24px;background:#fff;border:1px solid #ccd3dd;border-radius:6px}"
        ".head{width:100%;padding:12px 20px;border-bottom:1px solid #dde3ea;background:#f7f9fb}"
        ".head th{text-align:right;color:#667;padding:2px 10px 2px 0;font-weight:normal}"
        ".body{padding:16px 20px}"
        "</style></head><body><div class='mail'><table class='head'>"
        + rows
        + "</table><div class='body'><iframe id='content' style='border:0;width:100%' srcdoc=\""
        + html.escape(content, quote=True)
        + '"></iframe></div></div></body></html>'
    )


def screenshot(eml: Path, png: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},900")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "alert.html"
            path.write_text(page(eml), encoding="utf-8")
            driver.get(path.as_uri())
            # the iframe as tall as the e-mail, then the window as tall as the page
            driver.execute_script(
                "const f = document.getElementById('content');"
                "f.style.height = (f.contentDocument.documentElement.scrollHeight + 10) + 'px';"
            )
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WIDTH, height + 90)
            driver.save_screenshot(str(png))
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("eml", type=Path, help="a received e-mail (.eml)")
    parser.add_argument("png", type=Path, help="where the screenshot goes")
    args = parser.parse_args()
    screenshot(args.eml, args.png)
    print(f"{args.png}: {args.eml.name}")


if __name__ == "__main__":
    main()
