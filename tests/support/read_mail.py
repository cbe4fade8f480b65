"""Print the messages of a Maildir as JSON, parsed by Python's email package.

    read_mail.py MAILDIR

The integration tests read back what smtp_server.py stored with this, so
what they check is what a real mail reader makes of the bytes sent. The
output is a JSON array, oldest delivery first (file time, then file name),
of objects:

    from          the From header, decoded ("Name <addr>"), or ""
    to            the address (addr-spec) of each mailbox in To
    subject       the Subject header, decoded, or ""
    message_id    the Message-ID header, or null
    in_reply_to   the In-Reply-To header, or null
    references    the References header, or null
    date          the Date header, or null
    content_type  the top-level content type, e.g. "multipart/alternative"
    text          the text/plain body, decoded, or null
    html          the text/html body, decoded, or null
    parts         the content type of every leaf part, in order

A missing or empty Maildir gives [].
"""

import json
import os
import sys
from email.parser import BytesParser
from email.policy import default as default_policy


def delivered_files(maildir):
    """Message files in new/ and cur/, oldest first; ties broken by name."""
    found = []
    for sub in ("new", "cur"):
        folder = os.path.join(maildir, sub)
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            if entry.is_file() and not entry.name.startswith("."):
                found.append((entry.stat().st_mtime_ns, entry.name, entry.path))
    found.sort()
    return [path for _, _, path in found]


def body(msg, subtype):
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != "text/" + subtype:
        return None
    return part.get_content()


def header(msg, name):
    value = msg.get(name)
    return None if value is None else str(value)


def addresses(msg, name):
    value = msg.get(name)
    if value is None:
        return []
    return [a.addr_spec for a in getattr(value, "addresses", ())]


def describe(path):
    with open(path, "rb") as f:
        msg = BytesParser(policy=default_policy).parse(f)
    return {
        "from": header(msg, "From") or "",
        "to": addresses(msg, "To"),
        "subject": header(msg, "Subject") or "",
        "message_id": header(msg, "Message-ID"),
        "in_reply_to": header(msg, "In-Reply-To"),
        "references": header(msg, "References"),
        "date": header(msg, "Date"),
        "content_type": msg.get_content_type(),
        "text": body(msg, "plain"),
        "html": body(msg, "html"),
        "parts": [p.get_content_type() for p in msg.walk() if not p.is_multipart()],
    }


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: read_mail.py MAILDIR")
    messages = [describe(p) for p in delivered_files(sys.argv[1])]
    json.dump(messages, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
