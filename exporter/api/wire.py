"""Pydantic models of the three API responses, as tolerant as the real API requires.

Tolerant: unknown fields are kept, IDs are stripped of stray whitespace, "" / the two-character
string `""` / null all mean "no error", times may be epoch seconds or milliseconds (or strings of
them), numbers may arrive as strings. Strict where it matters: `data` and the lists inside it must
have the documented shape, and a violation names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import from_json, to_json

from exporter.errors import ApiContext, PayloadError
from exporter.storable import storable

# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_MILLISECONDS_THRESHOLD = 100_000_000_000


def _strip_id(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _no_error(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() in ("", '""', "null"):
        return None
    return value


def _epoch(value: object) -> object:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            return text  # let pydantic try ISO-8601, and name the field if that fails too
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= _MILLISECONDS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    return value


def _storable_dict(value: object) -> object:
    """Free-form maps become JSON columns: nothing in them may be non-finite (see storable)."""
    if value is None:
        return {}
    return storable(value) if isinstance(value, dict) else value


def _list_or_empty(value: object) -> object:
    return [] if value is None else value


# The common cases are validated by pydantic-core itself (a lineage body carries tens of
# thousands of IDs and times); the Python validators only see what it rejects.
_RUST_FIRST = Field(union_mode="left_to_right")
Id = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, strict=True)]
    | Annotated[str, BeforeValidator(_strip_id)],
    _RUST_FIRST,
]
OptionalId = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, strict=True)]
    | Annotated[str | None, BeforeValidator(_strip_id)],
    _RUST_FIRST,
]
ErrorText = Annotated[str | None, BeforeValidator(_no_error)]
EpochTime = Annotated[
    Annotated[datetime, Strict(False)] | Annotated[datetime | None, BeforeValidator(_epoch)],
    _RUST_FIRST,
]
FreeForm = Annotated[dict[str, Any], BeforeValidator(_storable_dict)]
T = TypeVar("T")
ListOf = Annotated[list[T], BeforeValidator(_list_or_empty)]


W = TypeVar("W", bound="WireModel")


class WireModel(BaseModel):
    """Keeps unknown fields; coerces numbers sent as strings (pydantic's lax mode)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class Envelope(WireModel):
    """The common part of every API response."""

    success: bool = True
    http_code: int | None = Field(default=None, alias="httpCode")
    error_code: ErrorText = Field(default=None, alias="errorCode")
    error_message: ErrorText = Field(default=None, alias="errorMessage")
    request_id: str | None = Field(default=None, alias="requestId")
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def raw(self) -> dict[str, Any]:
        """The body exactly as the API sent it (for `fetch` and for the stored audit copy)."""
        return self._raw


class Page(Envelope):
    page_index: int = Field(default=1, alias="pageIndex")
    page_size: int = Field(default=10, alias="pageSize")
    total_size: int = Field(default=0, alias="totalSize")


class Authored(WireModel):
    """What deployments and jobs both say of how they run and who made them."""

    engine_version: str | None = Field(default=None, alias="engineVersion")
    execution_mode: str | None = Field(default=None, alias="executionMode")
    creator: str | None = None
    creator_name: str | None = Field(default=None, alias="creatorName")
    modifier: str | None = None
    modifier_name: str | None = Field(default=None, alias="modifierName")


class Deployment(Authored):
    deployment_id: Id = Field(alias="deploymentId")
    name: str = ""
    description: str | None = None
    namespace: str | None = None
    workspace: OptionalId = None
    created_at: EpochTime = Field(default=None, alias="createdAt")
    modified_at: EpochTime = Field(default=None, alias="modifiedAt")
    labels: FreeForm = Field(default_factory=dict)
    deployment_target: FreeForm = Field(default_factory=dict, alias="deploymentTarget")

    def record(self) -> dict[str, Any]:
        """What is kept of the deployment, as JSON: its declared fields. Never its
        configuration (`artifact` holds SQL text, `flinkConf` keys), which the API sends too."""
        return self.model_dump(mode="json", by_alias=True, include=set(type(self).model_fields))

    def listed(self) -> ListedDeployment:
        """What a sync keeps of this deployment to its end (see ListedDeployment)."""
        return ListedDeployment(self.deployment_id, self.name, to_json(self.record()))


@dataclass(frozen=True, slots=True)
class ListedDeployment:
    """A listed deployment as a sync holds it until the run's end: its ID, its name and its
    record packed as JSON. One object and three values instead of a validated model with its
    labels, target and times (about 3.5 KB of objects each, and twice that of memory once the
    pages they came from are freed around them: 10,000 deployments held 73 MB)."""

    deployment_id: str
    name: str
    packed_record: bytes

    def record(self) -> dict[str, Any]:
        """The deployment's record, as `Deployment.record` made it."""
        return cast(dict[str, Any], from_json(self.packed_record))


class DeploymentPage(Page):
    data: ListOf[Deployment]


class JobStatus(WireModel):
    current_job_status: str | None = Field(default=None, alias="currentJobStatus")


class Job(Authored):
    job_id: Id = Field(alias="jobId")
    deployment_id: OptionalId = Field(default=None, alias="deploymentId")
    deployment_name: str | None = Field(default=None, alias="deploymentName")
    namespace: str | None = None
    workspace: OptionalId = None
    created_at: EpochTime = Field(default=None, alias="createdAt")
    modified_at: EpochTime = Field(default=None, alias="modifiedAt")
    start_time: EpochTime = Field(default=None, alias="startTime")
    end_time: EpochTime = Field(default=None, alias="endTime")
    status: JobStatus | None = None

    def identity(self) -> JobRef:
        """Just the job's ID: what a sync keeps of a job once its lineage is digested (its
        record is in the digested payload)."""
        return JobRef(self.job_id)

    def record(self) -> dict[str, Any]:
        """What is kept of the job instance, as JSON: its declared fields and its status name
        (not its configuration, nor the status details that change by the minute)."""
        fields: dict[str, Any] = dict.fromkeys(type(self).model_fields, True)
        fields["status"] = {"current_job_status"}
        return self.model_dump(mode="json", by_alias=True, include=fields)

    @classmethod
    def trimmed(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """A job as earlier releases stored it (whole) cut to what `record` keeps."""
        names = {field.alias or name for name, field in cls.model_fields.items()}
        kept = {key: value for key, value in raw.items() if key in names}
        status = kept.get("status")
        if isinstance(status, dict):
            kept["status"] = {"currentJobStatus": status.get("currentJobStatus")}
        return kept


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job by its ID alone (a validated `Job` held about 0.8 KB for each of a run's jobs)."""

    job_id: str


class JobPage(Page):
    data: ListOf[Job]


class LineagePart(BaseModel):
    """A part of a lineage body. Only the fields the exporter uses are validated: a body holds
    tens of thousands of them, and the raw body (stored with each contribution) keeps the rest.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Column(LineagePart):
    id: OptionalId = None
    column_name: str = Field(alias="columnName", min_length=1)
    nullable: bool | None = None
    description: str | None = None
    column_type: str | None = Field(default=None, alias="columnType")
    column_native_type: str | None = Field(default=None, alias="columnNativeType")
    created_at: EpochTime = Field(default=None, alias="createdAt")
    modified_at: EpochTime = Field(default=None, alias="modifiedAt")
    creator: str | None = None
    modifier: str | None = None


class Table(LineagePart):
    id: OptionalId = None
    table_name: str = Field(alias="tableName", min_length=1)
    with_: FreeForm = Field(default_factory=dict, alias="with")
    properties: FreeForm = Field(default_factory=dict)
    columns: ListOf[Column] = Field(default_factory=list)


class Node(LineagePart):
    id: OptionalId = None
    catalog_name: str = Field(alias="catalogName")
    database_name: str = Field(alias="databaseName")
    is_temporary: bool = Field(default=False, alias="isTemporary")
    connector: str | None = None
    tables: ListOf[Table] = Field(default_factory=list)


class Relation(LineagePart):
    source: Id
    destination: Id
    job_id: OptionalId = Field(default=None, alias="jobId")


class Edges(LineagePart):
    table_lineage: ListOf[Relation] = Field(default_factory=list, alias="tableLineage")
    column_lineage: ListOf[Relation] = Field(default_factory=list, alias="columnLineage")


class JobInfo(LineagePart):
    id: Id
    properties: FreeForm = Field(default_factory=dict)


class LineageInfo(LineagePart):
    nodes: ListOf[Node] = Field(default_factory=list)
    edges: Edges = Field(default_factory=Edges)
    job_infos: ListOf[JobInfo] = Field(default_factory=list, alias="jobInfos")


class LineageResponse(Envelope):
    data: LineageInfo | None = None


def _object_or_none(value: object) -> object:
    if value is None or isinstance(value, dict):
        return value
    raise ValueError(f"Input should be a valid dictionary, got {_kind(value)}")


class LineageBody(Envelope):
    """A GetLineageInfo response whose lineage is not validated yet: a sync validates a changed
    one's (`validated`) and only the tables and edge jobs of an unchanged one's (`tables`), as
    the whole of it was when it was stored. Validating every body whole cost a sync of 10,000
    unchanged deployments more CPU than parsing them."""

    data: Annotated[dict[str, Any] | None, PlainValidator(_object_or_none)] = None

    def validated(self, context: ApiContext) -> LineageResponse:
        """The whole response validated; a shape error is a PayloadError naming the field."""
        return parse_body(LineageResponse, self.raw, context, "GetLineageInfo")

    def tables(self, context: ApiContext) -> LineageTables:
        """Just what `normalize.reports` reads: node and table names, and the edges' jobs."""
        try:
            return LineageTables.model_validate(self.data)
        except ValidationError:  # not as stored after all: the whole validation says where
            self.validated(context)
            raise


class RelationJob(LineagePart):
    job_id: OptionalId = Field(default=None, alias="jobId")


class EdgeJobs(LineagePart):
    table_lineage: ListOf[RelationJob] = Field(default_factory=list, alias="tableLineage")
    column_lineage: ListOf[RelationJob] = Field(default_factory=list, alias="columnLineage")


class TableName(LineagePart):
    table_name: str = Field(alias="tableName", min_length=1)


class NodeTables(LineagePart):
    catalog_name: str = Field(alias="catalogName")
    database_name: str = Field(alias="databaseName")
    is_temporary: bool = Field(default=False, alias="isTemporary")
    tables: ListOf[TableName] = Field(default_factory=list)


class LineageTables(LineagePart):
    """The part of `LineageInfo` that names tables and edge jobs, with the same field types."""

    nodes: ListOf[NodeTables] = Field(default_factory=list)
    edges: EdgeJobs = Field(default_factory=EdgeJobs)


M = TypeVar("M", bound=Envelope)


def parse_body(model: type[M], body: Any, context: ApiContext, action: str) -> M:
    """Validate a decoded JSON body; a shape error becomes a PayloadError naming the field."""
    if not isinstance(body, dict):
        raise PayloadError(context, action, "(body)", f"expected a JSON object, got {_kind(body)}")
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        problems: dict[str, str] = {}  # field -> message of its most tolerant union member
        for error in exc.errors(include_url=False):
            field = ".".join(str(p) for p in error["loc"] if not _is_union_tag(p)) or "(body)"
            problems[field] = error["msg"]
        field, message = next(iter(problems.items()))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PayloadError(context, action, field, f"{message}{more}") from None
    parsed._raw = body
    return parsed


_UNION_TAGS = {"str", "constrained-str", "datetime", "none"}


def _is_union_tag(part: object) -> bool:
    """Parts of an error location that name a union member, not a field."""
    return isinstance(part, str) and (part in _UNION_TAGS or part.startswith("function-"))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
