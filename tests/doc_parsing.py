"""Reading Markdown, shell snippets and Python source for tests/test_docs.py: small parsers, no checks.

Kept apart so the docs test reads as the list of promises it checks.
"""
from __future__ import annotations

import ast
import re
import shlex

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(text))


def cells(row: str) -> list[str]:
    """A Markdown table row's cells (a ``|`` inside backticks does not split)."""
    return re.split(r"\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", row.strip().strip("|"))


def table_rows(text: str) -> list[list[str]]:
    """Every body row of every table (header and separator left out), as cells."""
    rows, previous = [], ""
    for line in prose(text).splitlines():
        if line.startswith("|") and previous.startswith("|") and not re.match(r"^\|[-| :]+\|$", line):
            rows.append([c.strip() for c in cells(line)])
        previous = line if line.startswith("|") else ""
    return rows


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    return [(len(m.group(1)), m.group(2)) for m in re.finditer(r"^(#{1,6}) (.+)$", prose(text), re.M)]


def section(text: str, title: str) -> str:
    """The text under the heading ``title`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#{1,6}) (.+)$", line)
        if m and m.group(2).strip() == title:
            level, body = len(m.group(1)), []
            for rest in lines[i + 1:]:
                n = re.match(r"^(#{1,6}) ", rest)
                if n and len(n.group(1)) <= level:
                    break
                body.append(rest)
            return "\n".join(body)
    raise AssertionError(f"no heading {title!r}")


def logical_lines(block: str) -> list[str]:
    """A code block's shell lines: backslash continuations joined, and a quote left open carried on."""
    lines, pending = [], ""
    for line in block.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the next line belongs to this one
            continue
        lines.append(pending)
        pending = ""
    return lines + ([pending] if pending else [])


def simple_commands(snippet: str) -> list[list[str]]:
    """The words of each simple command in a shell snippet (split at ``|``, ``&&``, ``;``, ``$(`` …)."""
    lexer = shlex.shlex(snippet, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = snippet.split()
    commands, words = [], []
    for token in tokens:
        if token and set(token) <= set("();<>|&"):
            if words:
                commands.append(words)
            words = []
        else:
            words.append(token)
    return commands + ([words] if words else [])


def shell_commands(text: str) -> list[list[str]]:
    """Every simple command in the text's code blocks and code spans, as words."""
    snippets = [line for block in code_blocks(text) for line in logical_lines(block)] + code_spans(text)
    return [words for snippet in snippets for words in simple_commands(snippet)]



# -- environment reads in Python source -------------------------------------------------------------------

ENVIRON_NAMES = {"environ", "env"}  # os.environ, a Mapping parameter named environ, a copy named env
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]+$")


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or \
        (isinstance(node, ast.Name) and node.id in ENVIRON_NAMES)


def environment_reads(source: str) -> set[str]:
    """Names of the environment variables a module reads: ``os.environ[…]``, ``os.environ.get(…)``,
    ``os.getenv(…)`` and the same on a mapping called ``environ``/``env``, with a string literal or a
    module-level string constant as the name."""
    tree = ast.parse(source)
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    found = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            key = name_of(node.slice)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute)
              and ((node.func.attr in ("get", "setdefault", "pop") and _is_environ(node.func.value))
                   or node.func.attr == "getenv")):
            key = name_of(node.args[0])
        if key and VARIABLE.match(key):
            found.add(key)
    return found


# -- curl examples -------------------------------------------------------------------------------------------

def curl_calls(text: str, base: str) -> list[tuple[str, str]]:
    """(method, path) of every ``curl`` in the code blocks that targets ``base`` (a URL or ``$VAR``)."""
    calls = []
    for words in shell_commands(text):
        if not words or words[0] != "curl":
            continue
        method = words[words.index("-X") + 1] if "-X" in words else ("POST" if "-d" in words else "GET")
        for word in words:
            if word.startswith(base + "/"):
                calls.append((method, word[len(base):].split("?")[0]))
    return calls


def matches(rule: str, path: str) -> bool:
    return re.fullmatch(re.sub(r"<[^>]+>", "[^/]+", rule), path) is not None
