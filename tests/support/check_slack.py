"""Check Slack message payloads with the official slack_sdk Block Kit models.

    check_slack.py FILE

FILE holds a JSON array of message payloads (objects with "text",
"blocks", "thread_ts", "channel", ...). Every block is parsed with
slack_sdk.models.blocks.Block.parse_all and turned back into JSON with
to_dict(), which runs slack_sdk's own validation; the result must equal
the input block, so a field slack_sdk does not know (an unknown or
misspelled one) shows up as a difference. On top of that come the limits
Slack documents: at most 50 blocks, a header's plain_text at most 150
characters, a section's text at most 3000, at most 10 section fields of
at most 2000 each, at most 10 context elements.

Prints one line per problem, "payload N block M: problem" (N and M count
from 0) and exits 1, or prints "ok: N payloads" and exits 0.
"""

import json
import logging
import sys

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50
HEADER_TEXT_MAX = 150
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10


def first_difference(want, got, path="block"):
    """Where two JSON values first differ, as a short sentence, or None."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            where = f"{path}.{key}"
            if key not in got:
                return f"{where} is dropped by slack_sdk (unknown or misspelled field?)"
            if key not in want:
                return f"{where} is added by slack_sdk as {json.dumps(got[key])}"
            found = first_difference(want[key], got[key], where)
            if found:
                return found
        return None
    if isinstance(want, list) and isinstance(got, list):
        for i, (w, g) in enumerate(zip(want, got)):
            found = first_difference(w, g, f"{path}[{i}]")
            if found:
                return found
        if len(want) != len(got):
            return f"{path} has {len(want)} items, slack_sdk kept {len(got)}"
        return None
    if want != got or type(want) is not type(got):
        return f"{path} is {json.dumps(want)}, slack_sdk made it {json.dumps(got)}"
    return None


def text_of(obj):
    """The "text" string of a text object, or None when it is not one."""
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return obj["text"]
    return None


def limits(block):
    """Slack's documented limits for the block types alerts use."""
    kind = block.get("type")
    if kind == "header":
        text = block.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            yield "header text must be a plain_text object"
        s = text_of(text)
        if s is not None and len(s) > HEADER_TEXT_MAX:
            yield f"header text is {len(s)} characters, at most {HEADER_TEXT_MAX}"
        if s == "":
            yield "header text is empty"
    elif kind == "section":
        s = text_of(block.get("text"))
        if s is not None and len(s) > SECTION_TEXT_MAX:
            yield f"section text is {len(s)} characters, at most {SECTION_TEXT_MAX}"
        if s == "":
            yield "section text is empty"
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list):
                yield "section fields must be an array"
                fields = []
            if len(fields) > SECTION_FIELDS_MAX:
                yield f"section has {len(fields)} fields, at most {SECTION_FIELDS_MAX}"
            for i, field in enumerate(fields):
                s = text_of(field)
                if s is None:
                    yield f"section field {i} is not a text object"
                elif len(s) > SECTION_FIELD_TEXT_MAX:
                    yield (
                        f"section field {i} is {len(s)} characters, "
                        f"at most {SECTION_FIELD_TEXT_MAX}"
                    )
                elif s == "":
                    yield f"section field {i} is empty"
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            yield "context needs a non-empty elements array"
        elif len(elements) > CONTEXT_ELEMENTS_MAX:
            yield f"context has {len(elements)} elements, at most {CONTEXT_ELEMENTS_MAX}"


def check_block(block):
    if not isinstance(block, dict):
        yield "a block must be an object"
        return
    parsed = None
    try:
        (parsed,) = Block.parse_all([block])  # None for an unknown type
        if parsed is None:
            yield f"slack_sdk does not know block type {json.dumps(block.get('type'))}"
    except Exception as e:  # a TypeError for unknown fields of a text object
        yield f"slack_sdk cannot parse it: {type(e).__name__}: {e}"
    if parsed is not None:
        try:
            back = parsed.to_dict()
        except Exception as e:  # SlackObjectFormationError from validation
            yield f"slack_sdk rejects it: {e}"
            for key in sorted(set(block) - set(parsed.attributes)):
                yield f"block.{key} is not a field slack_sdk knows (misspelled?)"
        else:
            found = first_difference(block, back)
            if found:
                yield found
    yield from limits(block)


def check_payload(payload):
    """(block index or None, problem) for everything wrong with one payload."""
    if not isinstance(payload, dict):
        yield None, "a payload must be an object"
        return
    text, blocks = payload.get("text"), payload.get("blocks")
    if text is not None and not isinstance(text, str):
        yield None, "text must be a string"
    if blocks is None:
        if not text:
            yield None, "has neither text nor blocks"
        return
    if not isinstance(blocks, list):
        yield None, "blocks must be an array"
        return
    if len(blocks) > MAX_BLOCKS:
        yield None, f"has {len(blocks)} blocks, at most {MAX_BLOCKS}"
    for m, block in enumerate(blocks):
        for problem in check_block(block):
            yield m, problem


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_slack.py FILE")
    with open(sys.argv[1], encoding="utf-8") as f:
        payloads = json.load(f)
    if not isinstance(payloads, list):
        sys.exit("FILE must hold a JSON array of payloads")
    # slack_sdk logs skipped blocks and fields; the checks above report them.
    logging.getLogger("slack_sdk").setLevel(logging.ERROR)
    problems = 0
    for n, payload in enumerate(payloads):
        for m, problem in check_payload(payload):
            where = f"payload {n}" if m is None else f"payload {n} block {m}"
            print(f"{where}: {problem}")
            problems += 1
    if problems:
        sys.exit(1)
    print(f"ok: {len(payloads)} payloads")


if __name__ == "__main__":
    main()
