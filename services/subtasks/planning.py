"""The offline plan of one story's subtasks: the kinds of work the story needs, read from its
own words, each named for that story.

A story that stores or changes records gets data work ("Store technician availability"),
one that exposes or integrates gets API work ("Add API to reassign a job"), one a user sees,
taps or drags gets UI work ("Show the customer's address on a job"), one that tells someone
gets a notification, one limited to a role gets an access check, one with a time limit gets
tuning; then a test per acceptance criterion named after it ("Test: the technician is
notified when a job is reassigned") and docs when users, admins or developers need to know.
Different stories get different subtasks. The plan is then fitted to the run's options.

Linear in the story's size: words are looked up in sets, never matched by patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from contracts.backlog import AcceptanceCriterion, Story, SubtaskKind
from contracts.events import StoryInContext, SubtaskOptions
from services.runtime.text import shorten

MIN_HOURS = 0.5
MAX_HOURS = 16.0
"""An offline subtask is at most two days of work."""


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_UI = _set(
    """
    see sees view views show shows shown display displays displayed tap taps click clicks
    drag drags drop drops screen screens page pages button toolbar form forms board
    dashboard map phone mobile canvas draw draws drawn menu tab dialog preview highlight
    highlighted ui select selects"""
)
_DATA = _set(
    """
    store stores stored save saves saved persist persists persisted record records recorded
    keep keeps kept history log logs logged audit database field fields archive archived
    delete deletes deleted update updates updated edit edits edited change changes changed
    create creates created add adds added assign assigns assigned reassign reassigns
    reassigned availability status profile settings attachments attachment upload uploads
    uploaded queue queues queued invite invites invited"""
)
_API = _set(
    """
    api apis endpoint endpoints webhook webhooks integrate integrates integration sync syncs
    export exports exported import imports imported csv pdf json xml s3 oauth sso calendar
    payment payments stripe third-party rest graphql feed"""
)
_NOTIFY = _set(
    """
    notify notifies notified notification notifications alert alerts sms push remind reminds
    reminder reminders"""
)
_STORAGE = _set(
    """
    store stores stored save saves persist persists persisted history log logs logged audit
    database record records recorded attachments attachment availability profile settings
    queue queues queued archive archived"""
)
_EMAIL = _set("email emails emailed")
_SENDING = _set("send sends sent receive receives received")
_ACCESS = _set("only admin admins administrator permission permissions role roles authorised")
_ACCESS |= _set("authorized refused forbidden")
_SETTINGS = _set("configure configures settings setting admin admins administrator")
_CHANGE_VERBS = _set(
    """
    edit update change assign reassign drag move reset cancel approve reject mark reorder
    rename reschedule transfer merge"""
)
_CREATE_VERBS = _set(
    "add create save store record upload import set enter register book invite submit"
)
_SEE_VERBS = _set("see view show display get receive find")
_TIME_WORDS = _set("within under")
_TIME_UNITS = _set("ms millisecond milliseconds second seconds minute minutes hour hours")
_PREPOSITIONS = _set(
    "about after at before between by during for from in into of on over per to via with within"
)
_ARTICLES = _set("a an the")
_POINT_FACTOR = {1: 0.5, 2: 0.75, 3: 1.0, 5: 1.5, 8: 2.0, 13: 3.0}


@dataclass(frozen=True, slots=True)
class Work:
    """One subtask of the plan (``area`` says which kind of work it is, for ordering)."""

    area: str
    title: str
    description: str
    kind: SubtaskKind
    hours: float
    after: tuple[str, ...] = ()
    """The areas that come first."""
    folded: list[str] = field(default_factory=list)
    """Work merged into this one (the options asked for fewer subtasks)."""


def plan(story_in_context: StoryInContext, options: SubtaskOptions) -> list[Work]:
    """The story's work, in the order a team would do it, before fitting to the options."""
    story = story_in_context.story
    words = _words(story, story_in_context)
    user_side, product_side = _actions(story)
    verb, thing, rest = _parts(user_side)
    factor = _POINT_FACTOR.get(story.estimate_points, 1.0)
    persona = story.as_a or "user"
    done = _done_when(story.acceptance_criteria)
    negative = user_side.lower().startswith(("not ", "never ")) or story.title.startswith("Never")
    ui = bool(words & _UI) and not negative
    api = bool(words & _API) and not negative
    data = not negative and (verb in _CHANGE_VERBS | _CREATE_VERBS | {"delete"} or bool(
        words & _STORAGE
    ))  # fmt: skip
    notify = bool(words & _NOTIFY) or (bool(words & _EMAIL) and bool(words & _SENDING))
    work: list[Work] = []
    if data:
        work.append(_data(verb, _whose(thing, persona), rest, story.title, done, factor))
    if api:
        work.append(_api(verb, user_side, done, factor))
    if ui:
        work.append(_ui(verb, thing, rest, user_side, persona, done, factor))
    if notify:
        work.append(_notify(story, product_side, persona, words, factor))
    role = _role(story) if words & _ACCESS else ""
    if role:
        work.append(_access(user_side, role, factor))
    if not work:
        work.append(_core(story.title, product_side, done, factor))
    limit = _time_limit(story, story_in_context)
    if limit:
        work.append(_performance(limit, factor))
    if options.include_tests:
        work += [_test(c) for c in story.acceptance_criteria]
        if not story.acceptance_criteria:
            work.append(_test_story(story.title, user_side))
    if options.include_docs and (ui or api or words & _SETTINGS):
        work.append(_docs(user_side, persona, api and not ui, words & _SETTINGS))
    return work


# --- reading the story ------------------------------------------------------------------


def _words(story: Story, context: StoryInContext) -> frozenset[str]:
    texts = [story.title, story.i_want]
    texts += [f"{c.given} {c.when} {c.then}" for c in story.acceptance_criteria]
    texts += [r.text for r in context.requirements]
    return frozenset(
        w.strip(".,;:!?()[]\"'").lower() for text in texts for w in text.split() if w.strip()
    )


def _actions(story: Story) -> tuple[str, str]:
    """(what the persona does, what the product does) as verb phrases. "I want to reset my
    password" gives "reset their password" for both; "I want the app to show the address",
    titled "See the address on a job", gives "see the address on a job" and "show the
    address"."""
    want = " ".join(_third_person(w) for w in story.i_want.split())
    title = story.title
    lowered_title = title[:1].lower() + title[1:] if title[1:2].islower() else title
    if want.lower().startswith("to "):
        return want[3:], want[3:]
    subject, found, rest = want.partition(" to ")
    if found and len(subject.split()) <= 4:
        # The title names the subject ("Search results load ..."): it says no user's action.
        starts_with_subject = title.lower().startswith(subject.lower())
        return (rest if starts_with_subject else lowered_title), rest
    return lowered_title, lowered_title


def _third_person(word: str) -> str:
    return {"my": "their", "me": "them", "myself": "themselves", "I": "they"}.get(word, word)


def _parts(action: str) -> tuple[str, str, str]:
    """(verb, object, the rest): "reset my password by email" → ("reset", "my password",
    "by email")."""
    words = action.split()
    if not words:
        return "", "", ""
    verb = words[0].lower()
    rest = words[1:]
    for index, word in enumerate(rest):
        if index and word.lower() in _PREPOSITIONS and rest[index - 1].lower() != "up":
            return verb, " ".join(rest[:index]), " ".join(rest[index:])
    return verb, " ".join(rest), ""


def _whose(thing: str, persona: str) -> str:
    """ "their availability" → "technician availability"."""
    words = thing.split()
    if words and words[0].lower() in {"their", "my", "his", "her", "your", "our"}:
        return " ".join([persona, *words[1:]])
    return thing


def _role(story: Story) -> str:
    """The one role a criterion allows: "admin" in "a user who is not an admin" or "only an
    admin can ..."."""
    for criterion in story.acceptance_criteria:
        words = f"{criterion.given} {criterion.when} {criterion.then}".lower().split()
        for index, word in enumerate(words):
            opens = word == "only" or (word == "not" and index and words[index - 1] == "is")
            if not opens:
                continue
            follower = next((w for w in words[index + 1 : index + 3] if w not in _ARTICLES), "")
            if follower:
                return _singular(follower.strip(".,;"))
    return ""


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _time_limit(story: Story, context: StoryInContext) -> str:
    texts = [c.then for c in story.acceptance_criteria] + [r.text for r in context.requirements]
    for text in texts:
        words = text.split()
        for index, word in enumerate(words[:-2]):
            unit = words[index + 2].lower().strip(".,;")
            if (
                word.lower() in _TIME_WORDS
                and words[index + 1][:1].isdigit()
                and unit in (_TIME_UNITS)
            ):
                return " ".join(words[index : index + 3]).rstrip(".,;")
    return ""


def _done_when(criteria: list[AcceptanceCriterion]) -> str:
    if not criteria:
        return ""
    thens = "; ".join(shorten(c.then, 120) for c in criteria[:2])
    return f" Done when {thens}."


# --- the kinds of work -----------------------------------------------------------------


def _data(verb: str, thing: str, rest: str, title: str, done: str, factor: float) -> Work:
    target = thing or f"the records behind {_lower(title)}"
    if verb in _CHANGE_VERBS:
        heading = f"Persist changes to {target}"
    elif verb == "delete":
        heading = f"Delete {target} with the records that refer to it"
    else:
        heading = f"Store {target}"
    return Work(
        "data",
        shorten(heading, 120),
        f"Add or change the tables and fields for {target}{_space(rest)}, with a migration." + done,
        SubtaskKind.DEV,
        _hours(3.0, factor),
    )


def _api(verb: str, action: str, done: str, factor: float) -> Work:
    phrase = ("get " + action.split(" ", 1)[1]) if verb in _SEE_VERBS and " " in action else action
    return Work(
        "api",
        shorten(f"Add API to {phrase}", 120),
        f"Expose {phrase} through the service (request, response, errors) and wire any "
        "integration it needs." + done,
        SubtaskKind.DEV,
        _hours(4.0, factor),
        after=("data",),
    )


def _core(title: str, action: str, done: str, factor: float) -> Work:
    return Work(
        "core",
        shorten(title, 120),
        f"Build the logic to {action}." + done,
        SubtaskKind.DEV,
        _hours(4.0, factor),
    )


def _ui(
    verb: str, thing: str, rest: str, action: str, persona: str, done: str, factor: float
) -> Work:
    if verb in _SEE_VERBS and thing:
        title = f"Show {thing}{_space(rest)}"
    else:
        title = f"Let {_plural(persona)} {action} in the app"
    return Work(
        "ui",
        shorten(title, 120),
        f"Build the screens and controls the {persona} uses to {action}, with their empty, "
        "loading and error states." + done,
        SubtaskKind.DEV,
        _hours(5.0, factor),
        after=("data", "api"),
    )


def _notify(
    story: Story, product_side: str, persona: str, words: frozenset[str], factor: float
) -> Work:
    told = _told(story)
    first = product_side.split(" ", 1)[0].lower()
    if told:
        title = f"Notify {told}"
    elif first in {"send", "email", "notify", "alert", "remind"}:
        title = product_side[:1].upper() + product_side[1:]
    else:
        title = f"Notify the {persona} when they {product_side}"
    channel = next((w for w in ("email", "sms", "push") if w in words), "the user's channel")
    return Work(
        "notify",
        shorten(title, 120),
        f"Send it by {channel} when it happens, once, with a link back to what changed.",
        SubtaskKind.DEV,
        _hours(3.0, factor),
        after=("data", "api"),
    )


def _told(story: Story) -> str:
    """Who is notified of what, as the criteria say: "the technician of the change"."""
    for text in [c.then for c in story.acceptance_criteria] + [story.i_want]:
        words = text.split()
        for index, word in enumerate(words):
            if word.lower() in {"notify", "notifies", "alert", "alerts"}:
                return " ".join(words[index + 1 : index + 7]).rstrip(".,;")
            if word.lower() == "notified" and index > 0:
                who = " ".join(words[max(0, index - 3) : index - 1])
                tail = " ".join(words[index + 1 : index + 5])
                return f"{who} {tail}".strip().rstrip(".,;") if who else ""
    return ""


def _access(action: str, role: str, factor: float) -> Work:
    return Work(
        "access",
        shorten(f"Allow only {_plural(role)} to {action}", 120),
        f"Check the caller's role before they {action}; anyone else is refused and nothing "
        "changes.",
        SubtaskKind.DEV,
        _hours(2.0, factor),
        after=("data", "api"),
    )


def _performance(limit: str, factor: float) -> Work:
    return Work(
        "performance",
        f"Measure and tune to stay {limit}",
        f"Measure it with production-like data and tune until it stays {limit}; add the "
        "measurement to monitoring.",
        SubtaskKind.OPS,
        _hours(3.0, factor),
        after=("data", "api", "core", "ui"),
    )


def _test(criterion: AcceptanceCriterion) -> Work:
    """Named after what the criterion checks: "Test: the technician is notified when a job is
    reassigned" (the when is left out when it only repeats the action)."""
    then = criterion.then
    when = criterion.when
    restates = when.lower().startswith("they ") and not then.lower().startswith("it ")
    name = then if restates or len(then) + len(when) > 100 else f"{then} when {when}"
    return Work(
        "test",
        shorten(f"Test: {name}", 120),
        f"Automate the check: given {criterion.given}, when {when}, then {then}."
        + (f" (The author's words: {criterion.text})" if criterion.text else ""),
        SubtaskKind.TEST,
        1.5,
        after=("data", "api", "core", "ui", "notify", "access"),
    )


def _test_story(title: str, action: str) -> Work:
    return Work(
        "test",
        shorten(f"Test: {_lower(title)}", 120),
        f"Automate a check that a user can {action}, and that bad input is refused.",
        SubtaskKind.TEST,
        2.0,
        after=("data", "api", "core", "ui", "notify", "access"),
    )


def _docs(action: str, persona: str, api_only: bool, settings: frozenset[str]) -> Work:
    if api_only:
        title, reader = f"Document the API to {action}", "developers"
    elif settings:
        title, reader = f"Document for admins how to {action}", "admins"
    else:
        title, reader = f"Document for {_plural(persona)} how to {action}", _plural(persona)
    return Work(
        "docs",
        shorten(title, 120),
        f"Write what {reader} need to know: how to {action}, its limits and its errors.",
        SubtaskKind.DOCS,
        1.0,
        after=("api", "ui", "core"),
    )


# --- helpers ------------------------------------------------------------------------------


def _hours(base: float, factor: float) -> float:
    return clamp(round(base * factor * 2) / 2)


def clamp(hours: float) -> float:
    return min(MAX_HOURS, max(MIN_HOURS, hours))


def _space(text: str) -> str:
    return f" {text}" if text else ""


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es" if not noun.endswith("s") else noun
    if noun.endswith("y") and noun[-2:-1] not in {"a", "e", "i", "o", "u"}:
        return noun[:-1] + "ies"
    return noun + "s"


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def merged(first: Work, second: Work) -> Work:
    """Two subtasks as one: titles joined, the work and hours added up."""
    return replace(
        first,
        title=shorten(f"{first.title}; {_lower(second.title)}", 120),
        description=f"{first.description}\n{second.description}",
        hours=clamp(first.hours + second.hours),
        after=tuple(dict.fromkeys((*first.after, *second.after))),
    )
