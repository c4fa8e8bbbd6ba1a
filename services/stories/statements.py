"""Reading one requirement as its author wrote it: who acts, what they do, under which
condition, why, and the limits it names (numbers, roles).

The forms read are those real specs use: user stories ("As a dispatcher, I want ..., so that
..."), EARS ("WHEN x THE system SHALL y", "IF x THEN ...", "WHILE x, ..."), modal sentences
("System MUST allow users to ...", "Technicians can see ..."), imperative bullets ("Export
invoices to CSV") and plain phrases ("Page load under 2 seconds").

Everything here works on words found with ``str`` methods, never on patterns that could
backtrack over user text: each function is linear in its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# --- vocabulary ---------------------------------------------------------------------------


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


VERBS = word_set(
    """
    accept access add adjust allow apply approve archive assign attach book browse calculate
    cancel capture change check choose clear close collect comment compare complete configure
    confirm connect convert copy create customise customize decline define delete deliver
    disable display download drag draw duplicate edit email enable encrypt enter escalate
    estimate export fetch filter find flag follow generate get group hide import invite join
    keep label link list load lock log login manage map mark merge message monitor move mute
    notify open order pay pick pin plan post preview print prioritise prioritize provide
    publish rate read reassign receive record redirect refresh register reject reload remember
    remove rename reorder reply report request reschedule reset resize restore retry return
    review rotate save scan schedule search see select send set share show sign skip snooze
    sort split start stop store submit subscribe suggest support switch sync tag tap track
    transfer translate undo unlock update upload use validate verify view vote watch write
    zoom
    """
)
PURPOSE_VERBS = VERBS | word_set(
    """
    avoid communicate comply decrease ensure give help improve increase indicate know let
    make maximise maximize meet minimise minimize prevent protect reduce represent speed
    understand
    """
)
"""Verbs a requirement commonly starts its action with (imperative bullets, after a modal)."""

ROLE_WORDS = word_set(
    """
    admin administrator agent analyst approver architect attendee author buyer caller cashier
    clerk facilitator stakeholder trainee
    client coach contributor coordinator courier creator customer designer developer
    dispatcher doctor driver editor employee engineer guest host instructor investor learner
    maintainer manager member merchant moderator nurse officer operator organiser organizer
    owner participant partner patient planner player practitioner publisher reader
    recruiter requester researcher reviewer rider seller shopper staff student subscriber
    supervisor supplier teacher technician tenant tester traveller traveler user vendor viewer
    visitor volunteer worker writer
    """
)
"""Words naming a person who uses the product (singular)."""

OPENED_WORDS = frozenset({"dashboard", "page", "portal", "screen", "site", "view", "website"})
"""Parts of the product a person opens (to see what they show)."""
SIZE_UNITS = word_set("b bytes kb mb gb tb characters chars words pages pixels px")
"""Units that measure a thing ("files of 11 MB"), not count them ("51 members")."""
SYSTEM_WORDS = word_set(
    """
    api app application backend component database dashboard endpoint engine feature
    frontend interface module page pipeline platform portal product screen server service
    site software solution system tool ui website widget
    """
)
"""Words naming the product or a part of it, when they are a sentence's subject."""

_SHOW_VERBS = frozenset({"show", "shows", "display", "displays", "present", "presents", "render"})
_SEND_VERBS = frozenset({"send", "sends", "email", "emails"})
_ENABLING = frozenset(
    {"allow", "allows", "enable", "enables", "let", "lets", "permit", "permits", "help", "helps"}
)
_ARTICLES = frozenset({"a", "an", "the", "all", "each", "every", "any", "only", "our", "their"})
_POSSESSIVES = frozenset({"their", "his", "her", "its", "your"})
_PREPOSITIONS = word_set(
    """
    about across after against along at before between by during for from in inside into
    of on onto over per through to toward towards under until via with within without
    """
)
_MODALS: tuple[tuple[str, ...], ...] = (
    ("shall",),
    ("must",),
    ("should",),
    ("will",),
    ("can",),
    ("could",),
    ("may",),
    ("needs", "to"),
    ("need", "to"),
    ("has", "to"),
    ("have", "to"),
    ("is", "able", "to"),
    ("are", "able", "to"),
    ("cannot",),
    ("can't",),
)
_MODALS_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _modal_words in _MODALS:
    _MODALS_BY_FIRST.setdefault(_modal_words[0], []).append(_modal_words)
_NEGATIVE_MODALS = frozenset({("cannot",), ("can't",)})
_LEADING_MODALS = frozenset({"must", "shall", "should", "may", "will"})
_CONDITION_OPENERS = (" when ", " whenever ", " if ", " once ", " after ")
_EARS_OPENERS = frozenset({"when", "if", "while", "where", "once", "after", "upon"})
_STATE_OPENERS = frozenset({"while", "where"})
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "twenty": 20,
    "thirty": 30,
    "fifty": 50,
    "hundred": 100,
}
_MAX_LIMIT = (
    ("up", "to"),
    ("at", "most"),
    ("no", "more", "than"),
    ("not", "more", "than"),
    ("maximum", "of"),
    ("a", "maximum", "of"),
    ("max",),
    ("max.",),
)
_MIN_LIMIT = (("at", "least"), ("minimum", "of"), ("a", "minimum", "of"), ("min",), ("min.",))
_TIME_LIMIT = (("within",), ("in", "under"), ("under",), ("less", "than"), ("below",), ("in",))
_LIMIT_OPENERS: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
for _kind, _openers in (("max", _MAX_LIMIT), ("min", _MIN_LIMIT), ("time", _TIME_LIMIT)):
    for _opener in _openers:
        _LIMIT_OPENERS.setdefault(_opener[0], []).append((_kind, _opener))
_TIME_UNITS = word_set(
    """
    ms millisecond milliseconds s sec secs second seconds min mins minute minutes h hr hrs
    hour hours day days week weeks month months
    """
)
_PURPOSE = (" so that ", ", so that", " in order to ", ", because ", " because ", ", which ")


# --- cleaning ------------------------------------------------------------------------------


def clean(text: str) -> str:
    """The text as a reader sees it: markup, leading bullets and the author's id gone,
    whitespace folded (the id is kept apart as ``author_id``)."""
    plain = _unlink(text).replace("**", "").replace("__", "").replace("`", "")
    words = plain.split()
    # A bullet, a number or the author's own id in front ("- ", "3.", "FR-001:", "REQ-12 -").
    start = 0
    while start < len(words) and (_is_marker(words[start]) or words[start] in _MARKS):
        start += 1
    if start:
        start = _after_label(words, start)
    return " ".join(words[start:])


def _after_label(words: list[str], start: int) -> int:
    """Past an aside between the id and its colon: "FR-3.28 *(intentional non-capability)*:
    Tool selection ..." starts at "Tool" (at most twelve words, else it is no label)."""
    if start >= len(words) or not words[start].lstrip("*_").startswith("("):
        return start
    for index in range(start, min(start + 12, len(words))):
        if words[index].replace("*", "").replace("_", "").endswith("):"):
            return index + 1
    return start


_MARKS = frozenset({"-", "\u2013", "\u2014", ":", "*", "\u2022"})


def _unlink(text: str) -> str:
    """``[label](url)`` → ``label``, in one pass."""
    if "](" not in text:
        return text
    out: list[str] = []
    index = 0
    while True:
        middle = text.find("](", index)
        if middle < 0:
            break
        opening = text.rfind("[", index, middle)
        closing = text.find(")", middle + 2)
        if opening < 0 or closing < 0 or " " in text[middle + 2 : closing]:
            out.append(text[index : middle + 2])
            index = middle + 2
            continue
        out.append(text[index:opening])
        out.append(text[opening + 1 : middle])
        index = closing + 1
    out.append(text[index:])
    return "".join(out)


def _is_marker(word: str) -> bool:
    """A list marker or an author's id: "1.", "2)", "FR-001:", "NFR2", "REQ-12", "US-3"."""
    core = word.strip("[]():.").replace("-", "").replace("_", "").replace(".", "")
    if not core or len(core) > 12:
        return False
    letters = len(core) - len(core.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    digits = core[letters:]
    return digits.isdigit() and (letters == 0 or word[:letters].isupper()) and letters <= 6


def drop_parentheses(text: str) -> str:
    """Text without its (asides), for titles."""
    out: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    words = "".join(out).split()
    # "multi-step (not a single form), capturing" → "multi-step, capturing".
    joined: list[str] = []
    for word in words:
        if joined and word[:1] in ",;:." and not word.strip(",;:."):
            joined[-1] += word
        elif joined and word[:1] in ",;:" and len(word) > 1:
            joined[-1] += word[0]
            joined.append(word[1:])
        else:
            joined.append(word)
    return " ".join(joined)


def sentences(text: str) -> list[str]:
    """The sentences of a cleaned text, split where a word ends in ".", "!", "?" or ";" and
    the next begins a sentence (a capital or a digit); "e.g." and "v1.2" split nothing."""
    words = text.split()
    out: list[str] = []
    start = 0
    for index, word in enumerate(words[:-1]):
        follower = words[index + 1]
        if (
            index > start
            and word.endswith((".", "!", "?", ";"))
            and word.count(".") <= 1
            and word.lower() not in _NO_SENTENCE_END
            and (follower[:1].isupper() or follower[:1].isdigit())
        ):
            out.append(" ".join(words[start : index + 1]))
            start = index + 1
    if start < len(words):
        out.append(" ".join(words[start:]))
    return out


_NO_SENTENCE_END = frozenset({"etc.", "vs.", "approx.", "incl.", "e.g.", "i.e.", "no.", "fig."})


def thing_used(text: str) -> str:
    """What a present-tense statement is about, when it is a thing a person uses: "the path
    picker" in "The path picker accepts text input"; "" unless it reads "<the|each> <one to
    three words> <verb>s ..." and names no person."""
    words = text.split()
    if len(words) < 3 or words[0].lower() not in _THING_ARTICLES:
        return ""
    for index in range(2, min(len(words) - 1, 5)):
        lower = words[index].lower()
        if lower.isalpha() and lower.endswith("s") and not lower.endswith("ss"):
            subject = words[1:index]
            if not all(w.isalpha() and w.islower() for w in subject) or is_role(subject[-1]):
                return ""
            return " ".join([words[0].lower(), *subject])
    return ""


_THING_ARTICLES = frozenset({"the", "each", "every"})


# --- the statement -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One requirement read into its parts (all plain text, "" when absent)."""

    text: str
    form: str
    """user_story, ears, modal, imperative or phrase."""
    persona: str = ""
    """The role it names, singular and lower case ("dispatcher")."""
    subject: str = ""
    """Who acts as written when that is the product ("the app"); "" when a person acts."""
    action: str = ""
    """The verb phrase, from the actor's side ("reset their password by email")."""
    condition: str = ""
    """The event it reacts to ("a technician opens a job")."""
    state: str = ""
    """The state it holds in ("the device is offline")."""
    why: str = ""
    negative: bool = False
    limits: list[Limit] = field(default_factory=list)
    only_role: str = ""
    """The one role allowed ("admin" in "only an admin can ...")."""

    @property
    def person_acts(self) -> bool:
        return bool(self.action) and not self.subject


@dataclass(frozen=True, slots=True)
class Limit:
    """A bound the requirement names: "up to 50 items", "within 2 seconds"."""

    kind: str
    """max, min or time."""
    phrase: str
    number: float
    unit: str


def read(text: str, personas: frozenset[str] = frozenset()) -> Statement:
    """The statement's parts; ``personas`` are roles known from elsewhere (the epic)."""
    plain = clean(text)
    lower = plain.lower()
    limits = find_limits(plain)
    only_role = _only_role(lower, personas)
    if lower.startswith(("as a ", "as an ")):
        story = _user_story(plain, lower)
        if story is not None:
            return _with(story, limits, only_role)
    first = lower.split(" ", 1)[0].rstrip(",")
    if first in _EARS_OPENERS:
        ears = _ears(plain, personas)
        if ears is not None:
            return _with(ears, limits, only_role)
    modal = _modal(plain, personas) or _present(plain, personas)
    if modal is not None:
        return _with(modal, limits, only_role)
    # "Must comply with GDPR": a bullet whose heading says who must.
    leading = first in _LEADING_MODALS and " " in plain
    if first in VERBS or leading:
        action, why = split_purpose(plain.partition(" ")[2] if leading else plain)
        action, negative = _strip_negation(_strip_ability(action))
        return Statement(
            plain, "imperative", action=_lower_first(action), why=why, negative=negative,
            limits=limits, only_role=only_role,
        )  # fmt: skip
    _, why = split_purpose(plain)
    return Statement(plain, "phrase", why=why, limits=limits, only_role=only_role)


def _with(statement: Statement, limits: list[Limit], only_role: str) -> Statement:
    return Statement(
        statement.text,
        statement.form,
        persona=statement.persona,
        subject=statement.subject,
        action=statement.action,
        condition=statement.condition,
        state=statement.state,
        why=statement.why,
        negative=statement.negative,
        limits=limits,
        only_role=only_role,
    )


_WANT_MARKERS = (
    " i want to ",
    " i want ",
    " i need to ",
    " i need ",
    " i would like to ",
    " i'd like to ",
    " i would like ",
    " i can ",
    " i should be able to ",
    " i am able to ",
    " we want to ",
    " we want ",
    " we need to ",
    " we need ",
)


def _user_story(plain: str, lower: str) -> Statement | None:
    spaced = lower.replace(",", " ,")
    best: tuple[int, str] | None = None
    for marker in _WANT_MARKERS:
        index = spaced.find(marker)
        if index > 0 and (best is None or index < best[0]):
            best = (index, marker)
    if best is None:
        return None
    # Positions in ``spaced`` map back to ``plain`` by counting the commas before them.
    start = best[0] - spaced.count(",", 0, best[0])
    persona = plain[len("as a ") if lower.startswith("as a ") else len("as an ") : start]
    want_at = best[0] + len(best[1])
    want_at -= spaced.count(",", 0, want_at)
    action, why = split_purpose(plain[want_at:])
    return Statement(
        plain, "user_story", persona=_role(persona.strip(" ,")), action=action, why=why
    )


def _ears(plain: str, personas: frozenset[str]) -> Statement | None:
    words = plain.split()
    lower = [w.lower().strip(",") for w in words]
    at = _find_modal(lower, start=1, within=len(lower))
    if at is None:
        return None
    position, modal = at
    prefix = words[:position]
    action_words = words[position + len(modal) :]
    if not action_words:
        return None
    keyword = lower[0]
    # The subject begins at the last "THE" (EARS writes it upper case), else after "then"
    # or the last comma, else at the last "the".
    split = _last(prefix, lambda w: w == "THE")
    if split is None:
        split = _last(prefix, lambda w: w.lower() == "then")
        if split is not None:
            split += 1
    if split is None:
        comma = _last(prefix, lambda w: w.endswith(","))
        split = comma + 1 if comma is not None else None
    if split is None:
        split = _last(prefix, lambda w: w.lower() == "the")
    if split is None or split <= 1:
        return None
    clause = [w for w in prefix[1:split] if w.lower() not in {"then", "then,"}]
    subject = " ".join(prefix[split:]).strip(" ,")
    clause_text = " ".join(clause).strip(" ,")
    state, condition = "", clause_text
    if keyword in _STATE_OPENERS:
        state, condition = clause_text, ""
        inner = clause_text.lower().find(", when ")
        if inner >= 0:
            state, condition = clause_text[:inner], clause_text[inner + len(", when ") :]
    action, why = split_purpose(" ".join(action_words))
    action, negative = _strip_negation(_strip_ability(action))
    person = _subject_role(subject, personas)
    persona = person or recipient(action, personas) or _condition_role(condition or state, personas)
    if person:
        subject = ""
    return Statement(
        plain,
        "ears",
        persona=persona,
        subject=_lower_article(subject),
        action=action,
        condition=condition,
        state=state,
        why=why,
        negative=negative,
    )


def _modal(plain: str, personas: frozenset[str]) -> Statement | None:
    words = plain.split()
    lower = [w.lower().strip(",") for w in words]
    at = _find_modal(lower, start=1, within=min(len(lower), 9))
    if at is None:
        return None
    position, modal = at
    subject = " ".join(words[:position]).strip(" ,")
    action, why = split_purpose(" ".join(words[position + len(modal) :]))
    action, negative = _strip_negation(_strip_ability(action))
    if not action:
        return None
    if modal in _NEGATIVE_MODALS and not negative:
        action, negative = f"not {action}", True
    person = _subject_role(subject, personas)
    persona = person or recipient(action, personas)
    if not person:
        allowed, enabled = _enabled(action, personas)
        if enabled:
            # "System MUST allow users to X": the users act.
            return Statement(
                plain, "modal", persona=allowed, action=enabled, why=why, negative=negative
            )
    condition = ""
    if not person:
        # "System SHALL send a notification when a job is reassigned": the event apart.
        action, condition = split_condition(action)
    return Statement(
        plain,
        "modal",
        persona=persona,
        subject="" if person else _lower_article(subject),
        action=action,
        condition=condition,
        why=why,
        negative=negative,
    )


def split_condition(action: str) -> tuple[str, str]:
    """(the action, the event) split at a trailing "when ..." of at least three words."""
    lower = action.lower()
    cut = -1
    marker = ""
    for candidate in _CONDITION_OPENERS:
        index = lower.find(candidate)
        if index > 0 and (cut < 0 or index < cut):
            cut, marker = index, candidate
    if cut < 0:
        return action, ""
    condition = action[cut + len(marker) :].strip()
    if len(condition.split()) < 3:
        return action, ""
    return action[:cut].strip(" ,"), condition


def _present(plain: str, personas: frozenset[str]) -> Statement | None:
    """A statement in the present tense, read as the modal it means: "The dashboard displays
    the open jobs" as "The dashboard will display ...", "Dispatchers see ..." likewise."""
    words = plain.split()
    for index in range(1, min(len(words) - 1, 5)):
        base = base_verb(words[index].lower())
        if base not in VERBS:
            continue
        subject = " ".join(words[:index])
        lower = subject.lower().replace(",", " ").split()
        # "90% of users complete onboarding ..." is a measure, kept as the author wrote it.
        if has_number(subject) or any(w in _PREPOSITIONS for w in lower):
            return None
        if singular(lower[-1]) not in SYSTEM_WORDS and _subject_role(subject, personas) == "":
            return None
        read_as = " ".join([subject, "will", base, *words[index + 1 :]])
        statement = _modal(read_as, personas)
        return None if statement is None else replace(statement, text=plain)
    return None


def base_verb(word: str) -> str:
    """ "displays" → "display", "notifies" → "notify", "pushes" → "push"; "" otherwise.
    Base forms themselves count only after a plural subject ("Dispatchers see")."""
    if word in VERBS:
        return word
    for ending, base in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(ending) and word[: -len(ending)] + base in VERBS:
            return word[: -len(ending)] + base
    return ""


def _find_modal(lower: list[str], start: int, within: int) -> tuple[int, tuple[str, ...]] | None:
    for index in range(start, within):
        for modal in _MODALS_BY_FIRST.get(lower[index], ()):
            if tuple(lower[index : index + len(modal)]) == modal:
                return index, modal
    return None


def _last(words: list[str], test: object) -> int | None:
    for index in range(len(words) - 1, -1, -1):
        if test(words[index]):  # type: ignore[operator]
            return index
    return None


def split_purpose(text: str) -> tuple[str, str]:
    """(the action, why) split at "so that" and its kin."""
    lower = text.lower()
    cut = -1
    marker = ""
    for candidate in _PURPOSE:
        index = lower.find(candidate)
        if index >= 0 and (cut < 0 or index < cut):
            cut, marker = index, candidate
    if cut < 0:
        return text.strip().rstrip(".!;:,"), ""
    why = text[cut + len(marker) :].strip().rstrip(".!;:,")
    if marker.strip(" ,") != "so that":
        why = ""
    return text[:cut].strip().rstrip(".!;:,"), why


def _strip_ability(action: str) -> str:
    lower = action.lower()
    for opening in ("be able to ", "also ", "always "):
        if lower.startswith(opening):
            action, lower = action[len(opening) :], lower[len(opening) :]
    for opening in ("provide the ability to ", "provide a way to ", "support the ability to "):
        if lower.startswith(opening):
            return action[len(opening) :]
    return action


def _strip_negation(action: str) -> tuple[str, bool]:
    lower = action.lower()
    if lower.startswith("not "):
        return "not " + action[4:], True
    return action, False


def _enabled(action: str, personas: frozenset[str]) -> tuple[str, str]:
    """("user", "reset their password") from "allow users to reset their password"."""
    words = action.split()
    if not words or words[0].lower() not in _ENABLING:
        return "", ""
    lower = [w.lower() for w in words]
    if lower[0] in {"let", "lets"}:
        # "let dispatchers assign a job": the role runs up to the first verb.
        for index in range(2, min(len(words), 5)):
            if lower[index] in VERBS:
                return _role(" ".join(words[1:index])) or "user", " ".join(words[index:])
        return "", ""
    # "allow users to reset ...", "enable the account owner to ..."
    for index in range(2, min(len(words), 6)):
        if lower[index] == "to":
            return _role(" ".join(words[1:index])) or "user", " ".join(words[index + 1 :])
    return "", ""


def _subject_role(subject: str, personas: frozenset[str]) -> str:
    """The role a subject names when a person (not the product) acts, else ""."""
    words = [w for w in subject.lower().replace(",", " ").split() if w not in _ARTICLES]
    if not words or len(words) > 4:
        return ""
    head = singular(words[-1])
    if head in SYSTEM_WORDS:
        return ""
    if head in ROLE_WORDS or head in personas or " ".join(words) in personas:
        return _role(" ".join(words))
    return ""


def recipient(action: str, personas: frozenset[str] = frozenset()) -> str:
    """The role the product tells something: "technician" in "notify the technician"."""
    words = action.lower().split()
    if words and words[0] in _SEND_VERBS:
        return sent_to(words, personas)[0]
    if not words or words[0] not in {"notify", "alert", "email", "remind", "message"}:
        return ""
    for word in words[1:4]:
        head = singular(word.strip(",.'\u2019s"))
        if head in ROLE_WORDS or head in personas:
            return head
        if word not in _ARTICLES:
            break
    return ""


def sent_to(words: list[str], personas: frozenset[str] = frozenset()) -> tuple[str, int, int]:
    """(role, start, end) of "to the assigned technician" in a send's words, else ("", 0,
    0): whom the product sends something to."""
    lower = [w.lower() for w in words]
    for index, word in enumerate(lower):
        if word != "to":
            continue
        for end in range(index + 1, min(index + 4, len(lower))):
            head = singular(lower[end].strip(",.'\u2019s"))
            if head in ROLE_WORDS or head in personas:
                return head, index, end + 1
    return "", 0, 0


def _condition_role(condition: str, personas: frozenset[str]) -> str:
    """The role acting in a condition: "technician" in "a technician opens a job"."""
    words = condition.lower().split()[:4]
    for word in words:
        head = singular(word.strip(",'\u2019s"))
        if head in ROLE_WORDS or head in personas:
            return head
    return ""


def _only_role(lower: str, personas: frozenset[str]) -> str:
    """The role in "only an admin can ...", "available to admins only" is not read."""
    words = lower.split()
    for index, word in enumerate(words):
        if word != "only":
            continue
        for follower in words[index + 1 : index + 4]:
            head = singular(follower.strip(",."))
            if head in ROLE_WORDS or head in personas:
                return head
            if follower not in _ARTICLES:
                break
    return ""


def _role(text: str) -> str:
    """A persona as it reads after "As a": lower case, singular, without articles."""
    words = [w for w in text.lower().replace(",", " ").split() if w not in _ARTICLES]
    if not words:
        return ""
    words = words[:4]
    words[-1] = singular(words[-1])
    return " ".join(words)


def singular(word: str) -> str:
    if word in {"staff", "data", "status", "news", "series"} or len(word) < 4:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def names_a_thing(subject: str) -> bool:
    """Whether a subject is what the product handles ("Search results", "Saved carts"), not
    the product itself ("the app", "ETL_Pipeline"): a plain plural noun."""
    words = [w for w in subject.split() if w.lower() not in _ARTICLES]
    if not words:
        return False
    head = words[-1]
    lower = head.lower()
    return (
        head.isalpha()
        and head[1:].islower()
        and lower not in SYSTEM_WORDS
        and singular(lower) != lower
        and singular(lower) not in SYSTEM_WORDS
    )


def plural(word: str) -> bool:
    """Whether a noun phrase's head reads as plural (for "is"/"are"): the word before a
    preposition or a limit ("files up to 10 MB" is plural)."""
    lower = word.lower().rstrip(".,")
    if " and " in f" {lower} ":
        return True
    words = lower.split()
    for index, token in enumerate(words):
        if index and (token in _PREPOSITIONS or token in _LIMIT_OPENERS):
            words = words[:index]
            break
    head = words[-1] if words else ""
    return singular(head) != head


def _lower_article(subject: str) -> str:
    words = subject.split()
    if len(words) == 1 and words[0].lower() in SYSTEM_WORDS:
        # "System MUST ..." reads "the system sends ..." in a sentence.
        word = words[0]
        return "the " + (word if word.isupper() else word.lower())
    if words and words[0].lower() in {"the", "a", "an"}:
        words[0] = words[0].lower()
    return " ".join(words)


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


# --- limits ----------------------------------------------------------------------------------


def find_limits(text: str) -> list[Limit]:
    """The bounds a requirement states, in order: "up to 50 items", "at least 8 characters",
    "within 2 seconds"."""
    words = text.split()
    lower = [w.lower().strip(",;:()") for w in words]
    found: list[Limit] = []
    index = 0
    while index < len(lower):
        matched = _limit_at(words, lower, index)
        if matched is None:
            index += 1
            continue
        limit, end = matched
        found.append(limit)
        index = end
    return found


def _limit_at(words: list[str], lower: list[str], index: int) -> tuple[Limit, int] | None:
    for kind, opener in _LIMIT_OPENERS.get(lower[index], ()):
        end = index + len(opener)
        if tuple(lower[index:end]) != opener or end >= len(lower):
            continue
        number = number_of(lower[end])
        if number is None:
            continue
        unit_words = _unit(lower, end)
        counted = kind
        if kind == "time" and (not unit_words or unit_words[0] not in _TIME_UNITS):
            # "under 2 MB" is a maximum; "in 3 steps" no limit at all.
            if opener == ("in",) or not unit_words:
                continue
            counted = "max"
        stop = end + 1 + len(unit_words)
        phrase = " ".join(w.strip(",;:()") for w in words[index:stop])
        # The unit as written ("MB", not "mb"): it is quoted back in criteria.
        unit = " ".join(w.strip(",;:()") for w in words[end + 1 : stop])
        return Limit(counted, phrase, number, unit), stop
    return None


def _unit(lower: list[str], at: int) -> list[str]:
    """The word(s) after a number that say what it counts: "items", "failed attempts"."""
    unit: list[str] = []
    for word in lower[at + 1 : at + 3]:
        if not word or word in _PREPOSITIONS or word in {"and", "or", "per"} or word[0].isdigit():
            break
        unit.append(word)
        if word in _TIME_UNITS or word.endswith("s"):
            break
    return unit


def number_of(word: str) -> float | None:
    if word in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[word])
    digits = word.rstrip("%+").replace(",", "")
    for suffix in ("ms", "s", "k", "h", "m"):
        if digits.endswith(suffix) and digits[: -len(suffix)].replace(".", "", 1).isdigit():
            digits = digits[: -len(suffix)]
            break
    if digits.replace(".", "", 1).isdigit():
        return float(digits)
    return None


def has_number(text: str) -> bool:
    return any(number_of(w.lower().strip(",;:()")) is not None for w in text.split())


# --- verb forms ------------------------------------------------------------------------------

_THIRD_IRREGULAR = {"be": "is", "have": "has", "do": "does", "go": "goes", "can": "can"}
_PARTICIPLE_IRREGULAR = {
    "build": "built",
    "buy": "bought",
    "choose": "chosen",
    "do": "done",
    "draw": "drawn",
    "find": "found",
    "get": "got",
    "give": "given",
    "hide": "hidden",
    "keep": "kept",
    "know": "known",
    "leave": "left",
    "lose": "lost",
    "make": "made",
    "pay": "paid",
    "put": "put",
    "read": "read",
    "reset": "reset",
    "run": "run",
    "see": "shown",
    "sell": "sold",
    "send": "sent",
    "set": "set",
    "show": "shown",
    "split": "split",
    "take": "taken",
    "view": "shown",
    "write": "written",
}
_DOUBLING = word_set(
    """
    admit chat commit drag drop flag log map permit pin plan scan ship skip stop submit swap
    tag tap zip
    """
)
_ADVERB_ENDING = "ly"
_LY_VERBS = PURPOSE_VERBS | word_set("apply comply fly multiply rally rely reply supply tally")


def third_person(action: str, plural_subject: bool = False) -> str:
    """ "show the address" → "shows the address" (the first verb, past any adverbs);
    "not allow x" → "does not allow x". Plural subjects keep the base form."""
    words = action.split()
    if not words:
        return action
    if words[0].lower() == "not":
        return " ".join(["do" if plural_subject else "does", *words])
    index = 0
    while index < len(words) - 1 and _adverb(words[index]):
        index += 1
    if words[index].lower() == "be":
        # "be filtered by region": "Reports are filtered by region".
        words[index] = "are" if plural_subject else "is"
        return " ".join(words)
    if plural_subject:
        return action
    words[index] = _third(words[index])
    # "select and draw" → "selects and draws"; "reject the file and notify the uploader" →
    # "... and notifies the uploader" (a verb after "and" that takes an object).
    for at in range(index + 1, len(words) - 1):
        if words[at].lower().strip(",") not in {"and", "or"} or words[at + 1].lower() not in VERBS:
            continue
        follower = words[at + 2].lower() if at + 2 < len(words) else ""
        if at == index + 1 or follower in _ARTICLES or follower in _POSSESSIVES:
            words[at + 1] = _third(words[at + 1])
    return " ".join(words)


def _adverb(word: str) -> bool:
    # "quickly", not "comply", "apply" or "reply".
    lower = word.lower()
    return lower.endswith(_ADVERB_ENDING) and lower not in _LY_VERBS


def _third(verb: str) -> str:
    lower = verb.lower()
    if lower in _THIRD_IRREGULAR:
        return _THIRD_IRREGULAR[lower]
    if not lower.isalpha():
        return verb
    if lower.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def participle(verb: str) -> str:
    lower = verb.lower()
    if lower in _PARTICIPLE_IRREGULAR:
        return _PARTICIPLE_IRREGULAR[lower]
    if lower in _DOUBLING:
        return lower + lower[-1] + "ed"
    if lower.endswith("e"):
        return lower + "d"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ied"
    return lower + "ed"


def split_object(rest: list[str]) -> tuple[list[str], list[str]]:
    """A verb's object and what follows it: (["their", "password"], ["by", "email"]);
    "up to 50 members" stays one object."""
    if rest and rest[0].lower() in _PREPOSITIONS:
        return [], rest
    for index, word in enumerate(rest):
        if index and word.lower() in _PREPOSITIONS and rest[index - 1].lower() != "up":
            return rest[:index], rest[index:]
    return rest, []


def is_preposition(word: str) -> bool:
    return word.lower() in _PREPOSITIONS


def is_role(word: str) -> bool:
    return singular(word.lower().strip(",.")) in ROLE_WORDS


def is_possessive(word: str) -> bool:
    return word.lower() in _POSSESSIVES


def shows(verb: str) -> bool:
    return verb.lower() in _SHOW_VERBS


def sends(verb: str) -> bool:
    return verb.lower() in _SEND_VERBS
