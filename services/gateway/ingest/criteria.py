"""Acceptance criteria as trackers hold them (a column, a checklist, a section of a body):
Given/When/Then scenarios and plain bullets, each an :class:`AcceptanceCriterion` whose
``text`` is the author's line. Linear: string scans only, no pattern over user text."""

from __future__ import annotations

from contracts.backlog import AcceptanceCriterion
from services.gateway.ingest.normalise import _LIST_MARKER, clean_title

_STEPS = ("given", "when", "then")
_CONTINUATIONS = ("and", "but")
_LABEL_MAX_CHARS = 60
_SECTION_NAMES = frozenset({"acceptance criteria", "acceptance criterion", "acceptance", "ac"})


def strip_marks(line: str) -> str:
    """A line without its bullet or checkbox, bold marks, or heading hashes."""
    text = _LIST_MARKER.sub("", line, count=1).strip()
    if text[:1] == "h" and text[1:2].isdigit() and text[2:3] == ".":
        text = text[3:]  # a Jira wiki heading: "h3. Acceptance Criteria"
    text = text.lstrip("#").strip().replace("**", "").replace("__", "")
    if text.startswith("*") and text[1:2] != " ":
        text = text.replace("*", "")  # Jira wiki bold: "*Given* a cart, *when* ..."
    return clean_title(text)


def _leading_word(text: str) -> str:
    word = text.split(" ", 1)[0].lower().rstrip(":,")
    return word


def _split_inline(text: str) -> tuple[str, str, str] | None:
    """ "Given a cart, when I pay, then the order is placed" → its three parts."""
    lowered = text.lower()
    if not lowered.startswith("given "):
        return None
    when_at = lowered.find(" when ", 6)
    if when_at < 0:
        return None
    then_at = lowered.find(" then ", when_at + 6)
    if then_at < 0:
        return None
    given = text[6:when_at].strip(" ,;")
    when = text[when_at + 6 : then_at].strip(" ,;")
    then = text[then_at + 6 :].strip(" ,;.")
    return (given, when, then) if given and when and then else None


def parse_criteria(lines: list[str]) -> list[AcceptanceCriterion]:
    """Criteria from lines: a Given line opens a scenario that its When/Then/And lines fill
    (one criterion, ``text`` the lines joined); a one-line "Given ..., when ..., then ..."
    is split; any other non-blank line is a criterion of its own with only ``text``."""
    found: list[AcceptanceCriterion] = []
    scenario: dict[str, list[str]] | None = None
    scenario_lines: list[str] = []
    last_step = ""

    def close() -> None:
        nonlocal scenario, scenario_lines
        if scenario is not None:
            found.append(
                AcceptanceCriterion(
                    given=" and ".join(scenario["given"]),
                    when=" and ".join(scenario["when"]),
                    then=" and ".join(scenario["then"]),
                    text=" ".join(scenario_lines),
                )
            )
        scenario, scenario_lines = None, []

    for raw in lines:
        text = strip_marks(raw)
        if not text or not any(char.isalnum() for char in text):
            continue
        word = _leading_word(text)
        rest = text.split(" ", 1)[1].strip() if " " in text else ""
        inline = _split_inline(text)
        if inline is not None:
            close()
            found.append(
                AcceptanceCriterion(given=inline[0], when=inline[1], then=inline[2], text=text)
            )
            continue
        if word == "given" and rest:
            close()
            scenario = {step: [] for step in _STEPS}
            scenario["given"].append(rest)
            scenario_lines.append(text)
            last_step = "given"
        elif scenario is not None and word in ("when", "then") and rest:
            scenario[word].append(rest)
            scenario_lines.append(text)
            last_step = word
        elif scenario is not None and word in _CONTINUATIONS and rest:
            scenario[last_step].append(rest)
            scenario_lines.append(text)
        elif word in ("scenario", "background", "examples"):
            close()  # a scenario's name, not a criterion
        else:
            close()
            found.append(AcceptanceCriterion(given="", when="", then="", text=text))
    close()
    return found


def criteria_section(body: str) -> list[str]:
    """The lines under an "Acceptance criteria" line (a heading, a bold label, a line ending
    with ":") of a body, up to the next heading or the first blank line after its items."""
    lines = body.split("\n")
    for index, line in enumerate(lines):
        if len(line) > _LABEL_MAX_CHARS:
            continue  # cheap: only a short line can be the label
        label = strip_marks(line).rstrip(":").strip().lower()
        if label not in _SECTION_NAMES:
            continue
        taken: list[str] = []
        for following in lines[index + 1 :]:
            if following.lstrip().startswith("#"):
                break
            if not following.strip():
                if taken:
                    break
                continue
            taken.append(following)
        return taken
    return []
