"""The offline draft of an epic's stories: deterministic, from the requirements' own words.

Every requirement of the epic is cited by exactly one story. A section holding one user story
("As a ..., I want ...") and other lines (its EARS criteria, its scenarios) becomes one story
citing them all, with those lines as its criteria; every other requirement is a story of its
own. A story's title says what its persona gets ("Reset password by email"); its criteria are
the author's own when written, else built from the requirement's own parts (its condition,
numbers, limits and roles); its priority is the author's when given.

Linear in the epic's size: each requirement is read once (``statements.read``), and groups
are found with one dictionary of sections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from contracts.backlog import (
    AcceptanceCriterion,
    Epic,
    Priority,
    Requirement,
    RequirementKind,
    SourceSpan,
)
from services.runtime.restatements import originals
from services.runtime.text import shorten
from services.stories import statements
from services.stories.models import (
    MAX_CRITERIA,
    MAX_DRAFT_STORIES,
    DraftCriterion,
    DraftStory,
    Points,
    StoriesDraft,
)
from services.stories.statements import Limit, Statement

TITLE_CHARS = 70
_TITLE_STOPWORDS = statements.word_set(
    "a an and the of to for with on in by or at from as via into their its your is are was "
    "were be been than that which who whose not does do so per each every between within "
    "after before about over under like such"
)
_OPENING_VERBS = statements.word_set(
    "open opens opened view views visit visits select selects navigate navigates go goes "
    "access accesses load loads display displays"
)
_INPUT_VERBS = statements.word_set(
    "add book change create edit enter import invite pay register reset save sign submit "
    "update upload"
)
_CHECKED_KINDS = frozenset(
    {RequirementKind.NON_FUNCTIONAL, RequirementKind.SUCCESS_CRITERION, RequirementKind.CONSTRAINT}
)
_CLAUSE_WORDS = statements.word_set(
    "when whenever if once after while where which that unless until because"
)
_SUBORDINATORS = statements.word_set("after before when whenever if once while until unless as")
_COMMA_CLAUSES = statements.word_set("so which including such e.g. i.e. but whereas")
_PARTICLES = frozenset({"in", "out", "up", "down", "off", "back"})
_PRIORITIES: tuple[tuple[Priority, tuple[str, ...]], ...] = (
    (Priority.P1, ("p0", "p1", "must", "critical", "high", "highest", "blocker", "urgent")),
    (Priority.P2, ("p2", "should", "medium", "normal", "major")),
    (Priority.P3, ("p3", "p4", "may", "could", "won't", "wont", "low", "lowest", "minor", "nice")),
)
_STEPS: tuple[Points, ...] = (1, 2, 3, 5, 8, 13)


@dataclass(frozen=True, slots=True)
class _Read:
    """A requirement with its statement read."""

    requirement: Requirement
    statement: Statement
    """Its first sentence read (a title says one thing)."""
    more: tuple[str, ...] = ()
    """Its other sentences: each a criterion in the author's words."""


def offline_draft(epic: Epic) -> StoriesDraft:
    """Stories covering every requirement of ``epic``, for running without an LLM."""
    if not epic.requirements:
        text = epic.goal or epic.title
        return StoriesDraft(stories=[_story(epic, [_read_one(text, frozenset())], "user")])
    return StoriesDraft(stories=stories_for(epic, list(epic.requirements)))


def stories_for(epic: Epic, requirements: list[Requirement]) -> list[DraftStory]:
    """The offline stories of these requirements of ``epic`` (all of them cited)."""
    by_card = _user_story_personas(requirements)
    everyone = [p for personas in by_card.values() for p in personas]
    known = frozenset(everyone)
    fallback = _most_common(everyone) or "user"
    reads = [_read(r, known) for r in requirements]
    groups = _groups(reads)
    if len(groups) > MAX_DRAFT_STORIES:
        groups = _packed(groups, MAX_DRAFT_STORIES)
    return [
        _story(epic, group, _most_common(by_card.get(_card(group[0].requirement), [])) or fallback)
        for group in groups
    ]


def _card(requirement: Requirement) -> str:
    """The card a requirement comes from (its id is ``<card id>:R<n>``)."""
    return requirement.id.rpartition(":R")[0]


def _read(requirement: Requirement, personas: frozenset[str]) -> _Read:
    said = statements.sentences(statements.clean(requirement.text))
    if len(said) < 2:
        return _Read(requirement, statements.read(requirement.text, personas))
    return _Read(requirement, statements.read(said[0], personas), tuple(said[1:]))


def _read_one(text: str, personas: frozenset[str]) -> _Read:
    requirement = Requirement(id="", text=text, source_span=SourceSpan(start=0, end=len(text)))
    return _Read(requirement, statements.read(text, personas))


def _user_story_personas(requirements: Iterable[Requirement]) -> dict[str, list[str]]:
    """The roles the user stories name, per card: the card's personas, for the requirements
    that name nobody."""
    found: dict[str, list[str]] = {}
    for requirement in requirements:
        plain = statements.clean(requirement.text)
        if plain.lower().startswith(("as a ", "as an ")):
            persona = statements.read(plain).persona
            if persona:
                found.setdefault(_card(requirement), []).append(persona)
    return found


def _most_common(values: list[str]) -> str:
    if not values:
        return ""
    counts = Counter(values)
    # Ties go to the first named: deterministic and the author's own order.
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


# --- grouping ------------------------------------------------------------------------------


def _groups(reads: list[_Read]) -> list[list[_Read]]:
    """One group per requirement, except that a section with exactly one user story gathers
    the section's other lines under it (as many as its criteria have room for), and a
    requirement the author restates ("Throughput: 1000+ concurrent users" twice) joins the
    group of its first statement as one more criterion."""
    by_section: dict[str, list[int]] = {}
    for index, item in enumerate(reads):
        if item.requirement.section.strip():
            by_section.setdefault(item.requirement.section.strip(), []).append(index)
    lead_of: dict[int, int] = {}
    for indexes in by_section.values():
        leads = [i for i in indexes if reads[i].statement.form == "user_story"]
        if len(leads) != 1 or len(indexes) < 2:
            continue
        lead = leads[0]
        room = MAX_CRITERIA - len(reads[lead].requirement.acceptance_criteria)
        for index in indexes:
            if index == lead:
                continue
            needs = max(1, len(reads[index].requirement.acceptance_criteria))
            if needs > room:
                continue  # no room left under the user story: a story of its own
            room -= needs
            lead_of[index] = lead
    for restatement, original in originals([r.requirement.text for r in reads]).items():
        if restatement not in lead_of:
            lead_of[restatement] = lead_of.get(original, original)
    groups: dict[int, list[_Read]] = {}
    for index, item in enumerate(reads):
        groups.setdefault(lead_of.get(index, index), []).append(item)
    # Groups in the order their first requirement comes (insertion order), the lead first.
    return [_lead_first(reads[lead], members) for lead, members in groups.items()]


def _lead_first(head: _Read, members: list[_Read]) -> list[_Read]:
    return [head, *(m for m in members if m is not head)]


def _packed(groups: list[list[_Read]], most: int) -> list[list[_Read]]:
    """Past ``most`` stories, neighbouring groups share a story (each still cited)."""
    if len(groups) <= most:
        return groups
    # As few shared stories as fit: 101 groups in 100 stories share one, not fifty.
    base, extra = divmod(len(groups), most)
    packed: list[list[_Read]] = []
    start = 0
    for index in range(most):
        size = base + (1 if index < extra else 0)
        packed.append([item for group in groups[start : start + size] for item in group])
        start += size
    return packed


# --- one story -----------------------------------------------------------------------------


def _story(epic: Epic, group: list[_Read], default_persona: str) -> DraftStory:
    lead = group[0].statement
    persona = lead.persona or next(
        (g.statement.persona for g in group if g.statement.persona), default_persona
    )
    criteria = _criteria(group, persona)
    why = lead.why or next((g.statement.why for g in group if g.statement.why), "")
    ids = [g.requirement.id for g in group if g.requirement.id]
    return DraftStory(
        title=title(lead, group[0].requirement.section),
        as_a=shorten(persona, 120),
        i_want=shorten(want(lead), 300),
        so_that=shorten(why or goal_clause(epic), 240),
        acceptance_criteria=criteria,
        priority=_priority(group, epic.priority),
        estimate_points=points(group, criteria),
        requirement_ids=list(dict.fromkeys(ids)),
    )


# --- titles --------------------------------------------------------------------------------


def title(statement: Statement, section: str = "") -> str:
    """What the persona gets, in a few words: "Reset password by email"."""
    phrase = _title_phrase(statement)
    if not phrase:
        phrase = _section_title(section)
    return _finish_title(phrase) or "Untitled story"


def _title_phrase(statement: Statement) -> str:
    if not statement.action:
        return statements.drop_parentheses(statements.split_purpose(statement.text)[0])
    words = statement.action.split()
    negative = words[0].lower() == "not"
    if negative:
        words = words[1:]
    passive = bool(words) and words[0].lower() == "be"
    if (
        statement.subject
        and not negative
        and (passive or statements.names_a_thing(statement.subject))
    ):
        # A passive says what happens to its subject: "Conflicts are shown before saving",
        # never "Be shown before saving".
        subject = statements.drop_parentheses(statement.subject)
        words = [subject[:1].upper() + subject[1:], *_third_words(words, subject)]
    elif statement.subject and words:
        words = _from_the_users_side(words)
    words = _drop_possessive_after_verb(words)
    words = _cut_purpose(words)
    phrase = " ".join(words)
    if negative and phrase:
        phrase = "Never " + _lower_first(phrase)
    return statements.drop_parentheses(phrase + _context(statement, len(phrase)))


def _third_words(words: list[str], subject: str) -> list[str]:
    return statements.third_person(" ".join(words), _plural(subject)).split()


def _from_the_users_side(words: list[str]) -> list[str]:
    """What the product does, said as what the persona gets: "show X" → "see X", "send X" →
    "receive X", "notify the technician of X" → "get notified of X"."""
    verb = words[0].lower()
    if statements.shows(verb):
        return ["see", *_without_viewer(words[1:])]
    if statements.sends(verb):
        # Whom it is sent to is the story's persona: "receive a notification", not "receive
        # a notification to the assigned technician".
        role, start, end = statements.sent_to(words)
        rest = [*words[1:start], *words[end:]] if role else words[1:]
        return ["receive", *rest]
    if verb in {"notify", "notifies", "alert", "alerts"}:
        _, rest = statements.split_object(words[1:])
        return ["get", "notified", *rest]
    return words


def _without_viewer(rest: list[str]) -> list[str]:
    """ "show the technician the parts list" → "the parts list": whom it is shown to is the
    persona already."""
    at = 1 if rest and rest[0].lower() in {"the", "a", "an", "each", "every"} else 0
    if len(rest) > at + 1 and statements.is_role(rest[at]):
        return rest[at + 1 :]
    return rest


def _drop_possessive_after_verb(words: list[str]) -> list[str]:
    """ "reset their password" → "reset password" (whose it is goes without saying)."""
    at = 2 if _particle(words[1:]) else 1
    if len(words) > at + 1 and statements.is_possessive(words[at]):
        return [*words[:at], *words[at + 1 :]]
    return words


def _particle(rest: list[str]) -> bool:
    """Whether ``rest`` opens with a verb's particle ("sign in"), not "up to 50"."""
    if not rest or rest[0].lower() not in _PARTICLES:
        return False
    return not (rest[0].lower() == "up" and len(rest) > 1 and rest[1].lower() == "to")


def _cut_purpose(words: list[str]) -> list[str]:
    """A second "to <verb>" starts a purpose ("draw lines to represent flows"): cut there."""
    for index in range(2, len(words) - 1):
        if words[index].lower() == "to" and words[index + 1].lower() in statements.PURPOSE_VERBS:
            return words[:index]
    return words


def _context(statement: Statement, length: int) -> str:
    """Where or when, from an EARS condition: " on a job" for "a technician opens a job"."""
    condition = statement.condition
    if not condition:
        return ""
    words = condition.split()
    for index, word in enumerate(words[:5]):
        if word.lower() in _OPENING_VERBS and index + 1 < len(words):
            target, _ = statements.split_object(words[index + 1 : index + 6])
            if target:
                return " on " + " ".join(target)
    clause = " when " + condition
    return clause if length + len(clause) <= TITLE_CHARS else ""


def _section_title(section: str) -> str:
    """A heading as a title: "User Story 2 - Persist arrows (Priority: P2)" → "Persist
    arrows"."""
    text = statements.drop_parentheses(statements.clean(section))
    for separator in (" - ", " \u2013 ", " \u2014 ", ": "):
        head, found, tail = text.partition(separator)
        if found and len(head.split()) <= 3 and statements.has_number(head):
            return tail
    return text


def _finish_title(phrase: str) -> str:
    words = _main_clause(_first_sentence(phrase.replace("…", " ").split()))
    if len(" ".join(words)) > TITLE_CHARS:
        words = _before_a_clause(words)
    cut: list[str] = []
    length = 0
    for word in words:
        if length + len(word) + (1 if cut else 0) > TITLE_CHARS:
            break
        cut.append(word)
        length += len(word) + (1 if len(cut) > 1 else 0)
    while cut and (cut[-1].lower().strip(",;:") in _TITLE_STOPWORDS or cut[-1] in {"-", "\u2013"}):
        cut.pop()
    text = " ".join(cut).rstrip(".,;:!?-\u2013\u2014 ")
    return text[:1].upper() + text[1:]


def _first_sentence(words: list[str]) -> list[str]:
    """A title says one thing: "Streaming output. Inline status ..." → "Streaming output"."""
    for index, word in enumerate(words[:-1]):
        if index >= 1 and word.endswith((".", ";", "!", "?")) and not _abbreviation(word):
            return words[: index + 1]
    return words


def _main_clause(words: list[str]) -> list[str]:
    """ "After tool selection, the portal runs an auth probe" → "the portal runs an auth
    probe": a leading clause says when, the title says what."""
    if not words or words[0].lower() not in _SUBORDINATORS:
        return words
    for index, word in enumerate(words[:-3]):
        if word.endswith(","):
            return words[index + 1 :]
    return words


def _before_a_clause(words: list[str]) -> list[str]:
    """A title too long loses its last clause whole ("... when a job is reassigned", "...,
    so that ...", "... and see ..."), so a cut never ends mid-clause ("... when a job is")."""
    length = 0
    last = 0
    for index, word in enumerate(words):
        length += len(word) + (1 if index else 0)
        if length > TITLE_CHARS:
            break
        lower = word.lower()
        follower = words[index + 1].lower() if index + 1 < len(words) else ""
        if index >= 2 and (
            lower in _CLAUSE_WORDS
            or (lower in {"and", "or", "then"} and statements.base_verb(follower) != "")
            or word in {"-", "\u2013", "\u2014"}
        ):
            last = index
        elif index >= 2 and (
            word.endswith(":") or (word.endswith(",") and _opens_a_clause(follower))
        ):
            last = index + 1
    return words[:last] if last else words


def _opens_a_clause(word: str) -> bool:
    """After a comma: "so", "which", "capturing ..." open a clause; "git, and npx" is a list."""
    return word in _COMMA_CLAUSES or (word.endswith("ing") and len(word) > 5)


def _abbreviation(word: str) -> bool:
    """ "e.g.", "i.e.", "etc.", "vs.": a dot that ends no sentence."""
    return word.count(".") > 1 or word.lower() in {"etc.", "vs.", "approx.", "incl."}


# --- what they want and why ----------------------------------------------------------------


def want(statement: Statement) -> str:
    """What goes after "I want": "to reset my password by email", "the system to send ..."."""
    action = statement.action
    if not action:
        core = statements.split_purpose(statement.text)[0]
        return _lower_first(core) or "what this requirement asks for"
    if statement.subject:
        return f"{_lower_first(statement.subject)} to {action}"
    mine = " ".join(_first_person(w) for w in action.split())
    if statement.form == "user_story" and not _starts_with_verb(action):
        return mine
    return f"to {mine}"


def _starts_with_verb(action: str) -> bool:
    first = action.split(" ", 1)[0].lower()
    return first in statements.VERBS or first == "not"


def _first_person(word: str) -> str:
    return {"their": "my", "them": "me", "themselves": "myself"}.get(word, word)


def goal_clause(epic: Epic) -> str:
    goal = " ".join(epic.goal.split())
    label, found, rest = goal.partition(": ")
    if found and len(label.split()) <= 3:
        goal = rest
    goal = goal.rstrip(".!")
    return _lower_first(goal) or f"“{epic.title}” is delivered"


# --- acceptance criteria -------------------------------------------------------------------


def _criteria(group: list[_Read], persona: str) -> list[DraftCriterion]:
    lead = group[0]
    found: list[DraftCriterion] = []
    if lead.statement.form == "ears":
        found.append(_ears_criterion(lead.statement, persona, lead.requirement.text))
    found += [_author(c, lead.statement, persona) for c in lead.requirement.acceptance_criteria]
    for member in group[1:]:
        written = member.requirement.acceptance_criteria
        if written:
            found += [_author(c, member.statement, persona) for c in written]
        else:
            found.append(_line(member.statement, persona, member.requirement.text))
    if not found:
        found = specific(lead.statement, persona, lead.requirement.kind)
        found += [_said(lead.statement, persona, sentence) for sentence in lead.more]
    return _unique(found)[:MAX_CRITERIA]


def _said(statement: Statement, persona: str, sentence: str) -> DraftCriterion:
    """A further sentence of the requirement, as the outcome it states."""
    return _criterion(
        given=_a(persona),
        when=_fill_when(statement),
        then=_lower_first(sentence.rstrip(".;")),
        text=sentence,
    )


def _unique(criteria: list[DraftCriterion]) -> list[DraftCriterion]:
    seen: set[str] = set()
    out = []
    for criterion in criteria:
        key = " ".join((criterion.text or criterion.then).lower().split()).rstrip(".")
        if key not in seen:
            seen.add(key)
            out.append(criterion)
    return out


def _author(criterion: AcceptanceCriterion, statement: Statement, persona: str) -> DraftCriterion:
    """The author's criterion, its missing parts filled from the story, its text kept."""
    text = " ".join(criterion.text.split())
    if criterion.then.strip():
        return _criterion(
            given=criterion.given.strip() or _a(persona),
            when=criterion.when.strip() or _fill_when(statement),
            then=criterion.then.strip(),
            text=text,
        )
    return _line(statements.read(text), persona, text, fallback=statement)


def _line(
    statement: Statement, persona: str, text: str, fallback: Statement | None = None
) -> DraftCriterion:
    """An author's line (an EARS line, a "Given ... when ... then" sentence, a bullet) as a
    criterion that keeps its wording in ``text``."""
    plain = " ".join(text.split())
    # EARS first: Kiro writes "WHEN x THEN the system SHALL y", which also splits as
    # Given/When/Then but would leave "the system SHALL y" as the outcome.
    if statement.form == "ears":
        return _ears_criterion(statement, statement.persona or persona, plain)
    gwt = _given_when_then(statements.clean(plain))
    if gwt is not None:
        given, when, then = gwt
        return _criterion(
            given=given or _a(persona),
            when=when or _fill_when(fallback or statement),
            then=then,
            text=plain,
        )
    return _criterion(
        given=_a(persona),
        when=_fill_when(fallback or statement),
        then=_lower_first(statements.split_purpose(statement.text)[0]) or plain,
        text=plain,
    )


def _criterion(given: str, when: str, then: str, text: str = "") -> DraftCriterion:
    """A criterion with no part blank (a blank requirement still yields a valid draft)."""
    return DraftCriterion(
        given=shorten(given.strip(), 400) or "a user",
        when=shorten(when.strip(), 400) or "they use it",
        then=then.strip() or "it works as written",
        text=text,
    )


def _given_when_then(text: str) -> tuple[str, str, str] | None:
    """ "Given x, when y, then z" split into its parts (any of given/when may be missing)."""
    lower = text.lower()
    then_at = lower.find("then ")
    if then_at < 0 or (then_at and lower[then_at - 1] not in " ,"):
        return None
    when_at = lower.rfind("when ", 0, then_at)
    if when_at > 0 and lower[when_at - 1] not in " ,":
        when_at = -1
    given = ""
    if lower.startswith("given "):
        end = when_at if when_at > 0 else then_at
        given = text[len("given ") : end]
    elif when_at != 0:
        return None
    when = text[when_at + len("when ") : then_at] if when_at >= 0 else ""
    then = text[then_at + len("then ") :]
    parts = tuple(p.strip(" ,.;") for p in (given, when, then))
    return (parts[0], parts[1], parts[2]) if parts[2] else None


def _ears_criterion(statement: Statement, persona: str, text: str) -> DraftCriterion:
    """ "WHEN x THE system SHALL y" → when x, then the system y-s; the line kept as text."""
    subject = _lower_first(statement.subject) or "they"
    then = f"{subject} {statements.third_person(statement.action, _plural(subject))}"
    given = statement.state or (
        f"{_a(persona)} using {statement.subject}" if statement.subject else _a(persona)
    )
    when = statement.condition or _fill_when(statement)
    return _criterion(given=given, when=when, then=then, text=" ".join(text.split()))


def specific(statement: Statement, persona: str, kind: RequirementKind) -> list[DraftCriterion]:
    """Criteria for a requirement the author gave none: its main outcome, then its limits
    ("up to 50 items": the 51st is refused), the one role allowed, and bad input."""
    # A constraint ("Must comply with GDPR") is checked by review, like a quality.
    measurable = kind in _CHECKED_KINDS
    out = [_measured(statement) if measurable else _main(statement, persona)]
    # A measured requirement's numbers are the conditions it is measured under ("for up to 50
    # concurrent users"), not a limit a person runs into.
    for limit in [] if measurable else statement.limits:
        bound = _over_the_limit(statement, persona, limit)
        if bound is not None:
            out.append(bound)
    if statement.only_role and statement.action:
        out.append(
            _criterion(
                given=f"a user who is not {_a(statement.only_role)}",
                when=f"they try to {_bare(statement.action)}",
                then="it is refused and nothing changes",
            )
        )
    verb = statement.action.split(" ", 1)[0].lower() if statement.action else ""
    if verb in _INPUT_VERBS and len(out) == 1 and not measurable:
        out.append(
            _criterion(
                given="the details it needs are missing or invalid",
                when=f"{_a(persona)} tries to {_bare(statement.action)}",
                then="they see what to fix, and nothing is saved",
            )
        )
    return out


def _main(statement: Statement, persona: str) -> DraftCriterion:
    if statement.form == "ears":
        return _ears_criterion(statement, persona, "")
    given = statement.state or _a(persona)
    if statement.subject:
        then = f"{_lower_first(statement.subject)} " + statements.third_person(
            statement.action, _plural(statement.subject)
        )
        return _criterion(given=given, when=_fill_when(statement), then=then)
    if statement.action:
        return _criterion(
            given=given, when=f"they {_bare(statement.action)}", then=_outcome(statement.action)
        )
    text = statements.split_purpose(statement.text)[0]
    return _criterion(given=given, when=_fill_when(statement), then=_lower_first(text))


def _measured(statement: Statement) -> DraftCriterion:
    """A non-functional requirement or success criterion, checked by measuring its numbers."""
    if statement.subject and statement.action:
        then = f"{_lower_first(statement.subject)} " + statements.third_person(
            statement.action, _plural(statement.subject)
        )
    elif statement.action and statement.form != "imperative":
        then = _outcome(statement.action)
    elif statement.action:
        # "Support offline mode" is what the product does: "the product supports ...".
        then = f"the product {statements.third_person(statement.action)}"
    else:
        then = _lower_first(statements.split_purpose(statement.text)[0])
    how = "it is measured" if statements.has_number(statement.text) else "it is reviewed"
    return _criterion(given="the release under production-like conditions", when=how, then=then)


def _over_the_limit(statement: Statement, persona: str, limit: Limit) -> DraftCriterion | None:
    """Just past a count limit: "invite up to 50 members" → they try to invite 51 members,
    and it is refused naming the limit of 50."""
    if limit.kind == "time" or not limit.unit or limit.number != int(limit.number):
        return None
    number = int(limit.number)
    beyond = number + 1 if limit.kind == "max" else number - 1
    if beyond < 0:
        return None
    word = "most" if limit.kind == "max" else "least"
    then = f"it is refused with a message that the limit is at {word} {number} {limit.unit}"
    action = _bare(statement.action)
    if action and limit.phrase in action:
        amount = f"{beyond} {limit.unit}"
        before = action[: action.find(limit.phrase)].split()
        if limit.unit.lower() in statements.SIZE_UNITS and not (
            before and statements.is_preposition(before[-1])
        ):
            amount = f"of {amount}"  # "files of 11 MB"
        return _criterion(
            given=_a(persona),
            when=f"they try to {action.replace(limit.phrase, amount, 1)}",
            then=then,
        )
    return _criterion(
        given=f"{_a(persona)} with {beyond} {limit.unit}",
        when=f"they try to {action or 'go on'}",
        then=then,
    )


def _outcome(action: str) -> str:
    """What can be seen once a person did ``action``: "reset their password by email" →
    "their password is reset by email"."""
    words = action.split()
    verb = words[0].lower()
    rest = words[1:]
    if verb == "not":
        return f"they cannot {' '.join(rest)}"
    if verb in {"receive", "get"}:
        return f"they {action}"
    verbs = [verb]
    if len(rest) > 1 and rest[0].lower() in {"and", "or"} and rest[1].lower() in statements.VERBS:
        verbs.append(rest[1].lower())
        rest = rest[2:]
    particle = ""
    if _particle(rest):
        particle, rest = " " + rest[0], rest[1:]
    done = " and ".join(statements.participle(v) for v in verbs)
    thing, after = statements.split_object(rest)
    tail = (" " + " ".join(after)) if after else ""
    if thing:
        object_text = " ".join(thing)
        be = "are" if _plural(object_text) else "is"
        return f"{object_text} {be} {done}{particle}{tail}"
    if particle:
        return f"they are {done}{particle}{tail}"
    return f"they can {action}"


def _fill_when(statement: Statement) -> str:
    if statement.condition:
        return statement.condition
    if statement.action and not statement.subject:
        return f"they {_bare(statement.action)}"
    if not statement.subject:
        used = statements.thing_used(statement.text)
        return f"they use {used}" if used else "they use it"
    head = statement.subject.lower().split()[-1]
    verb = "open" if head in statements.OPENED_WORDS else "use"
    return f"they {verb} {statement.subject}"


def _bare(action: str) -> str:
    words = action.split()
    return " ".join(words[1:]) if words and words[0].lower() == "not" else action


def _plural(subject: str) -> bool:
    lower = subject.lower()
    return lower == "they" or (lower != "it" and statements.plural(subject))


# --- priority and size ---------------------------------------------------------------------


def priority_of(written: str) -> Priority | None:
    """P0/P1/MUST/Must have/High → P1, P2/SHOULD/Medium → P2, P3/MAY/COULD/Won't/Low → P3."""
    folded = " ".join(written.lower().replace("-", " ").replace("_", " ").split())
    for priority, words in _PRIORITIES:
        if any(folded == w or folded.startswith(w + " ") for w in words):
            return priority
    return None


def _priority(group: list[_Read], default: Priority) -> Priority:
    """The most urgent priority the author gave any of the story's requirements."""
    found = []
    for item in group:
        requirement = item.requirement
        written = requirement.priority or (
            priority_of(requirement.author_priority) if requirement.author_priority else None
        )
        if written is not None:
            found.append(written)
    return min(found) if found else default


def points(group: list[_Read], criteria: list[DraftCriterion]) -> Points:
    """More criteria and more words, more effort: 1 criterion of a short line is 1 point,
    a user story with six criteria 8."""
    count = len(criteria)
    step = 0 if count <= 1 else 1 if count == 2 else 2 if count == 3 else 3 if count <= 5 else 4
    words = sum(len(item.requirement.text.split()) for item in group)
    words += sum(len(c.then.split()) for c in criteria)
    if words > 40 * max(1, count):
        step += 1
    return _STEPS[min(step, len(_STEPS) - 1)]


def _a(noun: str) -> str:
    # By sound, roughly: "an admin", "an editor", but "a user", "a unit manager".
    lower = noun.lower()
    vowel = lower[:1] in {"a", "e", "i", "o"} or (lower[:1] == "u" and not lower.startswith(
        ("us", "uni")
    ))  # fmt: skip
    return f"an {noun}" if vowel else f"a {noun}"


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
