"""The forms a requirement takes: a user story ("As a ..., I want ..., so that ..."), an EARS
line, a sentence with a modal or capability verb. ``in`` and ``find`` over lower-cased text
only: linear."""

from __future__ import annotations

from contracts.documents import UserStoryParts
from services.gateway.ingest.statements.priorities import modal_of

_STORY_LEADS = ("user story:", "story:", "user story -", "user story")
_WANTS = (
    " i want to ",
    " i want ",
    " i need to ",
    " i need ",
    " i can ",
    " i would like to ",
    " i'd like to ",
    " i wish to ",
)
_BENEFITS = (" so that ", " in order to ", " so i can ", " so ")


def user_story_of(plain: str) -> UserStoryParts | None:
    """``"As a dispatcher, I want to see jobs, so that I can plan"`` → its three parts
    (``so_that`` may be empty); None when ``plain`` is not a user story."""
    lowered = plain.lower()
    for lead in _STORY_LEADS:
        if lowered.startswith(lead):
            cut = len(lead)
            plain, lowered = plain[cut:].lstrip(" :-*"), lowered[cut:].lstrip(" :-*")
            break
    if lowered.startswith("as an "):
        role_at = 6
    elif lowered.startswith("as a "):
        role_at = 5
    else:
        return None
    for want in _WANTS:
        at = lowered.find(want, role_at)
        comma = lowered.find(",", role_at)
        if at < 0 and comma >= 0 and lowered.startswith(want[1:], comma + 2):
            at = comma + 1
        if at >= 0:
            role = plain[role_at:at].strip(" ,")
            rest_at = at + len(want)
            break
    else:
        return None
    goal, benefit = plain[rest_at:], ""
    lowered_rest = lowered[rest_at:]
    for marker in _BENEFITS[:3]:
        at = lowered_rest.find(marker)
        if at < 0:
            at = lowered_rest.find(marker.replace(" ", ", ", 1))
            if at >= 0:
                at += 1
        if at >= 0:
            goal, benefit = plain[rest_at : rest_at + at], plain[rest_at + at + len(marker) :]
            break
    if not role or not goal.strip(" ,."):
        return None
    return UserStoryParts(
        as_a=role, i_want=goal.strip(" ,"), so_that=benefit.strip(" ,").rstrip(".")
    )


_EARS_LEADS = ("when ", "if ", "while ", "where ", "after ", "once ", "upon ")


def is_ears(plain: str) -> bool:
    """An EARS sentence: ``WHEN``/``IF``/``WHILE``/``WHERE`` ... ``SHALL`` ..., or
    ``THE <system> SHALL ...`` (any case)."""
    lowered = plain.lower()
    if " shall " not in f" {lowered} ":
        return False
    return lowered.startswith(_EARS_LEADS) or lowered.startswith("the ")


_LOWER_MODALS = (
    " must ",
    " shall ",
    " should ",
    " needs to ",
    " need to ",
    " is required to ",
    " are required to ",
    " has to ",
    " have to ",
    " will be able to ",
    " can ",
    " allows ",
    " allow ",
    " supports ",
    " support ",
    " provides ",
    " enables ",
)


def is_requirement_sentence(plain: str) -> bool:
    """``plain`` states what something must do: a user story, an EARS line, an RFC 2119
    keyword in capitals, or a modal or capability verb ("must", "should", "needs to",
    "can", "allows", "supports")."""
    if modal_of(plain) or user_story_of(plain) or is_ears(plain):
        return True
    lowered = f" {plain.lower()} "
    return any(modal in lowered for modal in _LOWER_MODALS)
