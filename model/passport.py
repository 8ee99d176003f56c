"""The data passport's general part, life cycle and questionnaire (DM385 Appendix 1 §1-2, R394
Appendix 1), as the regulation's `passport:` block declares them (docs/passport.md).

The allowed values are DM385's, translated, as enums: a value outside them is refused on load
with the list. What Qoima knows better than a form is derived, not asked: a CDC provider's update
frequency is continuous (streaming), a marker-mode one's is "as data arrive"; the DBMS, the DML
kinds and the minimum-load window come from `source:`. A passport that states one of them
otherwise is refused with the value Qoima derives.
"""
from __future__ import annotations

from datetime import date
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UseLevel(str, Enum):
    """Interdepartmental use level."""
    republican = "republican"
    local = "local"
    not_used = "not_used_interdepartmentally"


class KeepingMethod(str, Enum):
    paper = "paper"
    electronic = "electronic"
    mixed = "mixed"


class DataForm(str, Enum):
    primary = "primary"
    combined = "combined"


class Accessibility(str, Enum):
    restricted = "restricted"
    unrestricted = "unrestricted"   # open data
    both = "both"                   # parts differ


class Restriction(str, Enum):
    personal_data = "personal_data"
    commercial_secret = "commercial_secret"
    official_secret = "official_secret"
    other = "other_secret_protected_by_law"


class DescribedObject(str, Enum):
    individuals = "individuals"
    legal_entities = "legal_entities"
    property = "property"
    works_and_services = "results_of_work_and_services"
    intellectual_property = "intellectual_property"
    intangibles = "intangibles"


class UpdateFrequency(str, Enum):
    not_set = "not_set"
    as_needed = "as_needed"
    as_data_arrive = "as_data_arrive"
    continuous = "continuous_streaming"
    by_legal_act = "set_by_legal_act"


class Creation(str, Enum):
    primary = "primary"
    from_sources = "from_sources"


class Transfer(str, Enum):
    file = "file"
    integration_service = "integration_service"


class Stage(str, Enum):
    collect = "collect"
    store = "store"
    use = "use"
    quality_management = "quality_management"
    archive = "archive"


class LegalActs(_Model):
    creation: list[str] = []
    collection: list[str] = []
    access: list[str] = []


class LifeCycle(_Model):
    """DM385 Appendix 1 §2."""
    creation: Creation = Creation.primary
    creation_acts: list[str] = []           # the acts the data are created from, when from sources
    primary_source: bool = True             # is this system the data's primary source?
    transfer: Transfer = Transfer.integration_service
    users_and_purposes: list[str] = []
    stage: Stage = Stage.use


class Questionnaire(_Model):
    """R394 Appendix 1: what the provider tells about its database (DBMS, DML kinds and load
    window come from `source:`)."""
    history_since: date | None = None       # the oldest data the database holds
    size_gb: float | None = Field(default=None, ge=0)
    growth_gb_per_month: float | None = Field(default=None, ge=0)
    backups: str = ""                       # how and how often the database is backed up


class Passport(_Model):
    """DM385 Appendix 1 §1 (organization and information system are the regulation's own)."""
    use_level: UseLevel
    keeping_method: KeepingMethod = KeepingMethod.electronic
    data_form: list[DataForm] = Field(min_length=1)
    accessibility: Accessibility
    restrictions: list[Restriction] = []
    users_by_law: list[str] = []
    sources_by_law: list[str] = []
    actual_sources: list[str] = []
    describes: list[DescribedObject] = Field(min_length=1)
    update_frequency: UpdateFrequency | None = None   # derived from the capture mode when absent
    update_schedule: str | None = None                # derived when absent; "undefined" otherwise
    update_procedure: str = ""
    legal_acts: LegalActs = LegalActs()
    data_class: str = ""                    # DM385 §64: per the information system's classifier
    created: date
    life_cycle: LifeCycle = LifeCycle()
    questionnaire: Questionnaire = Questionnaire()

    @model_validator(mode="after")
    def _restrictions(self) -> "Passport":
        if self.accessibility is Accessibility.unrestricted and self.restrictions:
            raise ValueError("accessibility 'unrestricted' (open data) takes no 'restrictions'; remove them or "
                             "set accessibility to 'restricted' or 'both'")
        if self.accessibility is not Accessibility.unrestricted and not self.restrictions:
            raise ValueError(f"accessibility '{self.accessibility.value}' needs 'restrictions' (one or more of "
                             f"{', '.join(r.value for r in Restriction)})")
        return self


def derived_frequency(capture: str, refresh: str) -> UpdateFrequency:
    """What Qoima knows of a provider's update frequency from its capture mode."""
    if capture == "cdc" and refresh == "continuous":
        return UpdateFrequency.continuous
    return UpdateFrequency.as_data_arrive if capture == "marker" else UpdateFrequency.by_legal_act


def derived_schedule(capture: str, refresh: str, poll_seconds: int) -> str:
    if capture == "marker":
        return f"polled every {poll_seconds} s"
    return "each change within seconds of its commit" if refresh == "continuous" else f"{refresh}"
