"""The administrations config (include/administrations.yaml): model and validation.

Imported by the DAG file at parse time: stdlib, pydantic and yaml only.

``load_administrations(path)`` never raises for a broken entry: it returns the valid
administrations (sorted by id) and one ``ConfigError`` per broken entry, naming the administration
(its id, or its position when it has no usable id) and the field, so one typo does not take the
other administrations' DAGs down with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z0-9_]+$"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def cron_interval(minutes: int) -> int:
    """An interval the window's cron expressions can say in a few: a divisor of 60 or a multiple
    of 15 (13 would need one expression per hour, and Airflow keeps a timetable's description of
    them in 1,000 characters)."""
    if 60 % minutes and minutes % 15:
        divisors = "1, 2, 3, 4, 5, 6, 10, 12, 20, 30"
        raise ValueError(f"must divide 60 ({divisors}) or be a multiple of 15, not {minutes}")
    return minutes


# an interval in minutes, within a day, that the window's cron expressions can say (cron_interval)
CronInterval = Annotated[int, Field(ge=1, le=1440), AfterValidator(cron_interval)]


class Schedule(_Strict):
    """The daily window in which the 15-minute DAGs (master data, invoice export) run."""

    start: str = "07:00"
    end: str = "20:00"
    interval_minutes: CronInterval = 15

    @field_validator("start", "end")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not _TIME.match(value):
            raise ValueError(f"must be a time HH:MM (00:00..23:59), got {value!r}")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> Schedule:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class Pools(_Strict):
    """Airflow pool sizes per external API of this administration (concurrent calls)."""

    king: int = Field(1, ge=1)
    qics: int = Field(1, ge=1)


class Defaults(_Strict):
    """Values for Qics fields King does not have (see docs/mapping.md for where each is used)."""

    # articles (ItemCompany)
    item_type: str = "Expense"  # ItemType of an article whose unit (EENHVERK) is not "uur"
    will_be_invoiced: bool = True
    allow_time_entry: bool = False  # AllowTimeEntry of an article whose unit is not "uur"
    allow_price_modifications: bool = True
    gl_account_revenue: str | None = None  # when the article group has no GRBOMZ
    # payment conditions
    payment_condition_type: str = "Days"
    # debtors (CustomerCompany)
    country_code: str = Field("NL", pattern=r"^[A-Z]{2}$")  # when DEB.LAND is empty
    # King's DEB has no VAT-code field: a debtor's VAT liability (DEB.BTWPL: B plichtig, L laag,
    # I binnen EU, U buiten EU, N niet plichtig) -> the King BTW.NR its Qics VatCodeId is set to;
    # a liability not listed leaves VatCodeId empty (the articles' VAT codes apply). Example:
    # {I: 3, U: 0} (reverse charge within the EU, 0 % outside).
    customer_vat_codes: dict[str, int] = Field(default_factory=dict)
    # items (ItemCompany.VatCodeId): an article's VAT code letter (ART.BTW) -> the King BTW.NR,
    # for letters King's BTW table does not tell apart (several BTW rows hold it in BTWPL); a
    # letter not listed is translated through the BTW table (items.yaml). Example: {B: 1}.
    item_vat_codes: dict[str, int] = Field(default_factory=dict)
    # projects (Project): booleans Qics requires and King has no equivalent for
    project_allow_planning: bool = True
    project_hide_budgets_on_timesheet: bool = False
    project_is_contract_received: bool = False
    project_is_budget_mandatory_on_time_entry: bool = False


class Notifications(_Strict):
    """Where an administration's alerts go and which are sent (README *Alerts*). The top-level
    ``notifications`` block is the default; an administration's own block overrides it key by key.
    Nothing is sent while no channel is set (no ``email_conn_id`` + ``email_to``, no webhook)."""

    email_conn_id: str | None = None  # an Airflow SMTP connection (providers-smtp)
    email_to: list[str] = Field(default_factory=list)
    email_from: str | None = None  # default: the SMTP connection's from_email
    webhook_conn_id: str | None = None  # an HTTP connection whose host is the incoming-webhook URL
    webhook_kind: Literal["slack", "teams"] = "slack"
    task_failed: bool = True  # a task failed after its last attempt (never per retry)
    credentials: bool = True  # Qics token chain broken, King partner key / environment code refused
    invoices_waiting_hours: float | None = Field(24, gt=0)  # None: off
    stalled_minutes: int | None = Field(90, ge=1)  # no export run through for this long, in the window
    daily_digest: str | None = None  # HH:MM (Amsterdam): everything failing or waiting, once a day
    max_items: int = Field(20, ge=1)  # keys or invoices listed per message, then "and N more"

    @field_validator("daily_digest")
    @classmethod
    def _digest_hh_mm(cls, value: str | None) -> str | None:
        if value is not None and not _TIME.match(value):
            raise ValueError(f"must be a time HH:MM (00:00..23:59), got {value!r}")
        return value

    @model_validator(mode="after")
    def _email_complete(self) -> Notifications:
        if bool(self.email_conn_id) != bool(self.email_to):
            raise ValueError("email_conn_id and email_to go together (an SMTP connection and its recipients)")
        return self

    @property
    def has_channel(self) -> bool:
        return bool(self.email_conn_id or self.webhook_conn_id)


class Administration(_Strict):
    """One King administration synced to one Qics company."""

    id: str = Field(pattern=ID_PATTERN, max_length=60)
    name: str = Field(min_length=1)
    king_conn_id: str = Field(min_length=1)
    qics_conn_id: str = Field(min_length=1)
    qics_company_id: int = Field(ge=1)
    sales_journal: int = Field(ge=1)  # King DAGBOEK.NR of the sales journal
    book_invoices_from: date  # go-live cutoff: invoices dated before it are never booked
    missing_pdf: Literal["book_without", "wait"] = "wait"
    projects_table: str = Field("KDR", pattern=r"^[A-Z][A-Z0-9_]*$")
    projects_employees_interval_minutes: CronInterval = 240
    schedule: Schedule = Schedule()
    pools: Pools = Pools()
    # Qics requests one master-data task keeps in flight at once (1: one after the other); a 429 or
    # 503 from Qics lowers it for the rest of the task (README, "Bounded concurrency").
    qics_write_concurrency: int = Field(4, ge=1, le=32)
    defaults: Defaults = Defaults()
    notifications: Notifications = Notifications()
    enabled: bool = True

    @property
    def company_id(self) -> int:
        """The Qics CompanyId every record of this administration carries."""
        return self.qics_company_id


class Settings(_Strict):
    """Top level of administrations.yaml; ``administrations`` is validated entry by entry."""

    state_store_conn_id: str | None = None
    notifications: dict[str, Any] = Field(default_factory=dict)  # the default of every entry's block
    administrations: list[Any] = Field(default_factory=list)


@dataclass(frozen=True)
class ConfigError:
    """One broken entry (or a broken file, when ``administration`` is None)."""

    administration: str | None  # its id, when it has a usable one
    message: str
    fields: tuple[str, ...] = ()
    position: int | None = None  # 1-based position in the administrations list

    def __str__(self) -> str:
        if self.administration and self.position:
            where = f"administration {self.administration!r} (entry {self.position})"
        elif self.position:
            where = f"administration entry {self.position} (no valid id)"
        else:
            where = "config file"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    administrations: list[Administration] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    state_store_conn_id: str | None = None
    path: Path | None = None

    def get(self, administration_id: str) -> Administration | None:
        return next((adm for adm in self.administrations if adm.id == administration_id), None)


def _describe(exc: ValidationError, prefix: str = "") -> tuple[str, tuple[str, ...]]:
    parts, fields = [], []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(entry)"
        loc = f"{prefix}{loc}"
        fields.append(loc)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (typo?)"
        elif error["type"] == "missing":
            message = "required, missing"
        elif "input" in error and not isinstance(error["input"], dict | list):
            message = f"{message} (got {error['input']!r})"
        parts.append(f"{loc}: {message}")
    return "; ".join(parts), tuple(fields)


def _entry_id(entry: Any) -> str | None:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"].strip():
        return entry["id"]
    return None


def parse_administrations(data: Any) -> LoadResult:
    """Validate already-parsed YAML (a dict with ``administrations``)."""
    result = LoadResult()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        result.errors.append(ConfigError(None, "must be a mapping with an 'administrations' list"))
        return result
    top = {key: value for key, value in data.items() if key != "administrations"}
    default_notifications: dict[str, Any] = {}
    try:
        settings = Settings.model_validate({**top, "administrations": []})
        result.state_store_conn_id = settings.state_store_conn_id
        Notifications.model_validate(settings.notifications)
        default_notifications = settings.notifications
    except ValidationError as exc:
        prefix = "notifications." if exc.title == Notifications.__name__ else ""
        message, fields = _describe(exc, prefix)
        result.errors.append(ConfigError(None, message, fields))
    entries = data.get("administrations") or []
    if not isinstance(entries, list):
        result.errors.append(
            ConfigError(None, "administrations: must be a list of entries", ("administrations",))
        )
        return result

    seen: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        name = _entry_id(entry)
        if not isinstance(entry, dict):
            result.errors.append(ConfigError(name, "must be a mapping of settings", (), position))
            continue
        if default_notifications and isinstance(entry.get("notifications", {}), dict):
            entry = {**entry, "notifications": {**default_notifications, **entry.get("notifications", {})}}
        try:
            adm = Administration.model_validate(entry)
        except ValidationError as exc:
            message, fields = _describe(exc)
            result.errors.append(ConfigError(name, message, fields, position))
            continue
        if adm.id in seen:
            result.errors.append(
                ConfigError(
                    name,
                    f"id: duplicate id {adm.id!r} (already used by entry {seen[adm.id]})",
                    ("id",),
                    position,
                )
            )
            continue
        seen[adm.id] = position
        result.administrations.append(adm)
    _refuse_shared_books(result, seen)
    result.administrations.sort(key=lambda adm: adm.id)
    return result


def _refuse_shared_books(result: LoadResult, positions: dict[str, int]) -> None:
    """Two entries for the same Qics company or the same King administration would each book every
    invoice: none of them loads, and one error names them all (the other administrations load)."""
    sharing: dict[tuple, list[Administration]] = {}
    for adm in result.administrations:
        sharing.setdefault(("qics", adm.qics_conn_id, adm.qics_company_id), []).append(adm)
        sharing.setdefault(("king", adm.king_conn_id), []).append(adm)
    shared: dict[tuple[str, ...], list[tuple]] = {}  # entries -> what they share
    for key, group in sharing.items():
        if len(group) > 1:
            shared.setdefault(tuple(adm.id for adm in group), []).append(key)
    for ids, keys in shared.items():
        what = " and ".join(
            f"Qics company {key[2]} of connection {key[1]!r}"
            if key[0] == "qics"
            else f"the King administration of connection {key[1]!r}"
            for key in keys
        )
        names = " and ".join(f"{adm_id!r} (entry {positions[adm_id]})" for adm_id in ids)
        result.errors.append(
            ConfigError(
                ids[0],
                f"entries {names} all sync {what}: every invoice would be booked twice; keep one entry "
                "(none of them is loaded until then)",
                tuple("qics_company_id" if key[0] == "qics" else "king_conn_id" for key in keys),
                positions[ids[0]],
            )
        )
    refused = {adm_id for ids in shared for adm_id in ids}
    result.administrations = [adm for adm in result.administrations if adm.id not in refused]


def load_administrations(path: str | Path) -> LoadResult:
    """Read and validate the administrations file at ``path`` (callers pass an absolute path,
    e.g. relative to the DAG file, never relative to the working directory)."""
    path = Path(path)
    try:
        # libyaml's safe loader when present: the pure-Python one dominates parsing many entries
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except OSError as exc:
        result = LoadResult(errors=[ConfigError(None, f"cannot read {path}: {exc.strerror or exc}")])
    except yaml.YAMLError as exc:
        result = LoadResult(errors=[ConfigError(None, f"{path} is not valid YAML: {exc}")])
    else:
        result = parse_administrations(data)
    result.path = path
    return result
