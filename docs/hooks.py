"""MkDocs hooks: pages that include the repository's top-level files, links rewritten for the
site, and the command reference generated from the argparse parser (so it cannot drift)."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# top-level files shown as site pages
ROOT_PAGES = {
    "README.md": "index.md",
    "RESULTS.md": "results.md",
    "BENCHMARKS.md": "benchmarks.md",
    "CONTRIBUTING.md": "howto/extend.md",
    "CHANGELOG.md": "changelog.md",
}
INCLUDE = re.compile(r"<!-- include: (\S+) -->")
LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)\)")


def _commands() -> str:
    """Every subcommand's --help, as argparse prints it."""
    from weightgen.cliargs import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    parts = ["```text\n" + parser.format_help() + "```"]
    for name, command in sub.choices.items():
        parts.append(f"## weightgen {name}\n\n```text\n{command.format_help()}```")
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    here = page.file.src_uri  # e.g. "howto/extend.md"
    included = INCLUDE.fullmatch(markdown.strip())
    base = "docs/" + posixpath.dirname(here)  # what relative links start from, repo-relative
    if included:
        markdown = (REPO / included.group(1)).read_text()
        base = posixpath.dirname(included.group(1))
    markdown = markdown.replace("<!-- weightgen commands -->", _commands())

    def rewrite(match: re.Match) -> str:
        text, target = match.groups()
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(base, path))
        if repo_path in ROOT_PAGES:
            repo_path = "docs/" + ROOT_PAGES[repo_path]
        if not repo_path.startswith("docs/") or not (REPO / repo_path).is_file():
            # a file outside the site (LICENSE, configs/, scripts/) or a folder: named only
            return text if text.startswith("!") else f"{text[1:-1]} (`{path}`)"
        site_path = posixpath.relpath(repo_path[len("docs/") :], posixpath.dirname(here) or ".")
        return f"{text}({site_path}{'#' + anchor if anchor else ''})"

    return LINK.sub(rewrite, markdown)
