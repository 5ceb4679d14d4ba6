"""Assign a study to a collection by the rules of the collections file (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .config import CollectionsConfig, Rule, normalise_text


@dataclass(frozen=True)
class StudyFacts:
    """What rules can look at. Text is compared after :func:`normalise_text`.

    ``description`` is the StudyDescription *after* de-identification (Clean Descriptors has
    removed identifying words), so rules never see, and never need, an identifying value.
    """

    modalities: frozenset[str]
    body_parts: frozenset[str]
    description: str = ""
    calling_aet: str | None = None

    @classmethod
    def of(cls, modalities: Iterable[str], body_parts: Iterable[str], description: str | None = None,
           calling_aet: str | None = None) -> StudyFacts:
        return cls(frozenset(normalise_text(m) for m in modalities), frozenset(normalise_text(b) for b in body_parts),
                   normalise_text(description), normalise_text(calling_aet) or None)


def _has_phrase(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {text} "


def rule_matches(rule: Rule, facts: StudyFacts) -> bool:
    if rule.calling_aets and facts.calling_aet not in rule.calling_aets:
        return False
    if rule.modalities and not facts.modalities & set(rule.modalities):
        return False
    if rule.body_parts and not facts.body_parts & set(rule.body_parts):
        return False
    if rule.description_keywords and not any(_has_phrase(facts.description, k) for k in rule.description_keywords):
        return False
    return True


def assign_collection(config: CollectionsConfig, facts: StudyFacts, default_collection: str) -> str:
    """The first collection (file order) with a matching rule, else the default collection."""
    for collection in config.collections:
        if any(rule_matches(rule, facts) for rule in collection.rules):
            return collection.id
    return default_collection
