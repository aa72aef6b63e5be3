"""The manual stays true to the code: every setting documented, every link and section found.

- Every environment variable that reviewapp/settings.py or the scripts read has a row in
  docs/operations.md's configuration table.
- Every relative link (and its #anchor) in README.md, CONTRIBUTING.md and docs/*.md points at
  a file (and a heading) that exists.
- Every pointer into docs/ from the code, tests, templates and docs (``docs/design.md, "Queue
  contract"``) names a page and a section that exist, and nothing points at a design document
  outside the repository.
- Every example in docs/ingest.md's "Formats" parses, one per format.

Each check is a function; each has a positive control showing it catches what it is for.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from reviewapp.ingest.parsing import ALL_FORMATS, ItemRecord, parse_document
from tests.conftest import ROOT

DOCS = ROOT / "docs"
MANUAL = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]
# Where the code's comments, docstrings and templates live (not .venv, var, artifacts).
SOURCE_FOLDERS = ["reviewapp", "tests", "templates", "static", "bench", "scripts", "fixtures", "docs", ".ci"]
SOURCE_SUFFIXES = {".py", ".md", ".html", ".js", ".css", ".txt", ".toml", ".yml", ""}
# The design document this project once pointed at, outside the repository (spelt in pieces
# so this file does not name it).
OUTSIDE = ("shared/" + "DESIGN", "DESIGN" + ".md")

SETTING = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
SCRIPT_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):-")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
DOC_POINTER = re.compile(r"""docs/([\w-]+\.md)(?:,\s*["“]([^"”\n]+)["”])?""")


# --- the checks --------------------------------------------------------------------------


def variables_read(settings_text: str, script_texts: list[str]) -> set[str]:
    """Environment variables read by the settings (env.*("NAME", ...)) and the scripts (${NAME:-...})."""
    names = set(SETTING.findall(settings_text))
    for text in script_texts:
        names |= set(SCRIPT_VARIABLE.findall(text))
    return names


def configuration_table(markdown: str) -> set[str]:
    """The variables named in the first column of the "## Configuration" section's table."""
    section = markdown.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", html.unescape(heading)).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(markdown: str) -> list[str]:
    return HEADING.findall(FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in headings(markdown):
        base = slug(heading)
        count = seen.get(base, 0)
        out.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return out


def broken_links(path: Path, markdown: str) -> list[str]:
    """Relative links of a Markdown file whose file or #anchor does not exist."""
    problems = []
    for target in LINK.findall(FENCE.sub("", markdown)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        if not file_part:
            if anchor not in anchors(markdown):
                problems.append(f"{path.name}: {target}: no such heading")
            continue
        linked = (path.parent / file_part).resolve()
        if not linked.exists():
            problems.append(f"{path.name}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            problems.append(f"{path.name}: {target}: no such heading")
    return problems


def broken_pointers(where: str, text: str) -> list[str]:
    """Pointers into docs/ (page, and "Section" when given) that name no page or no heading."""
    problems = []
    for page, section in DOC_POINTER.findall(text):
        target = DOCS / page
        if not target.exists():
            problems.append(f"{where}: docs/{page}: no such page")
        elif section and section not in headings(target.read_text()):
            problems.append(f'{where}: docs/{page}, "{section}": no such section')
    return problems


def outside_references(where: str, text: str) -> list[str]:
    return [f"{where}: {name}" for name in OUTSIDE if name in text]


def example_formats(markdown: str) -> list[str]:
    """The source format of each JSON example under "## Formats"; raises on one that does not parse."""
    section = markdown.split("\n## Formats\n", 1)[1].split("\n## ", 1)[0]

    def decision(value):
        return None if value in ("approve", "reject") else f"{value!r} is not one of approve, reject"

    formats = []
    for block in re.findall(r"^```json\n(.*?)^```", section, re.M | re.S):
        results = list(parse_document(block.encode(), decision_check=decision))
        problems = [str(r) for r in results if not isinstance(r, ItemRecord)]
        if problems or not results:
            raise ValueError(f"example does not parse: {problems or 'no records'}")
        formats += [r.source_format for r in results]
    return formats


def source_files() -> list[Path]:
    files = []
    for folder in SOURCE_FOLDERS:
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES]
    files += [p for p in ROOT.iterdir() if p.is_file() and p.suffix in SOURCE_SUFFIXES]
    return [p for p in files if "__pycache__" not in p.parts and p.resolve() != Path(__file__).resolve()]


# --- the tests ---------------------------------------------------------------------------


class TestDocs:
    def test_it_documents_every_environment_variable_the_app_reads(self):
        read = variables_read(
            (ROOT / "reviewapp" / "settings.py").read_text(),
            [p.read_text() for p in sorted((ROOT / "scripts").iterdir()) if p.is_file()],
        )
        assert {"SECRET_KEY", "DATABASE_URL", "INGEST_MAX_BODY_BYTES", "PORT", "RUN_MAX_RESTARTS"} <= read
        documented = configuration_table((DOCS / "operations.md").read_text())
        assert sorted(read - documented) == []

    def test_the_variable_check_catches_an_undocumented_one(self):
        """The control: a setting, and a script variable, missing from the table are found."""
        settings = 'A = env.int("DOCUMENTED", default=1)\nB = env.str(\n    "NEW_SETTING", default="")\n'
        script = 'port="${NEW_PORT:-8000}"\n'
        table = "# Ops\n\n## Configuration\n\n| variable | default |\n|---|---|\n| `DOCUMENTED` | `1` |\n"
        read = variables_read(settings, [script])
        assert read == {"DOCUMENTED", "NEW_SETTING", "NEW_PORT"}
        assert read - configuration_table(table) == {"NEW_SETTING", "NEW_PORT"}

    def test_every_relative_link_of_the_manual_points_at_a_file_and_heading_that_exist(self):
        assert len(MANUAL) >= 7  # README, CONTRIBUTING and the five pages of docs/
        problems = [problem for path in MANUAL for problem in broken_links(path, path.read_text())]
        assert problems == []

    def test_the_link_check_catches_a_missing_file_and_a_missing_heading(self):
        page = DOCS / "page.md"
        markdown = (
            "# Page\n\n## The queue contract\n\n[ok](design.md) [ok](#the-queue-contract) "
            "[web](https://example.org/x) ![gone](images/gone.png) [gone](#no-such-heading) "
            "[gone](design.md#no-such-heading)\n\n```\n[ignored](in-a-code-block.md)\n```\n"
        )
        assert broken_links(page, markdown) == [
            "page.md: images/gone.png: no such file",
            "page.md: #no-such-heading: no such heading",
            "page.md: design.md#no-such-heading: no such heading",
        ]

    def test_every_pointer_into_docs_names_a_page_and_section_that_exist(self):
        problems = []
        for path in source_files():
            text = path.read_text(errors="replace")
            where = str(path.relative_to(ROOT))
            problems += broken_pointers(where, text) + outside_references(where, text)
        assert problems == []

    def test_the_pointer_check_catches_a_missing_section_and_an_outside_document(self):
        comment = (
            '"""The queue (docs/design.md, "Queue contract"); the rest (docs/design.md,\n'
            '"No such section"); docs/nowhere.md. See ../' + OUTSIDE[0] + '.md."""'
        )
        assert broken_pointers("x.py", comment) == [
            'x.py: docs/design.md, "No such section": no such section',
            "x.py: docs/nowhere.md: no such page",
        ]
        assert outside_references("x.py", comment) == [f"x.py: {OUTSIDE[0]}", f"x.py: {OUTSIDE[1]}"]

    def test_every_ingest_format_has_an_example_that_parses(self):
        formats = example_formats((DOCS / "ingest.md").read_text())
        assert sorted(formats) == sorted(ALL_FORMATS)

    def test_the_example_check_catches_an_example_that_does_not_parse(self):
        good = '{"external_id": "a", "messages": [{"role": "user", "content": "hi"}]}'
        bad = '{"external_id": "b", "messages": [{"role": "bot", "content": "hi"}]}'
        markdown = "# Ingest\n\n## Formats\n\n```json\n{}\n```\n\n```json\n{}\n```\n\n## API\n"
        assert example_formats(markdown.format(good, good)) == ["native", "native"]
        try:
            example_formats(markdown.format(good, bad))
        except ValueError as exc:
            assert "messages[0].role" in str(exc)
        else:
            raise AssertionError("an example that does not parse passed")
