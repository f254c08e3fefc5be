"""The simulated workspace: namespaces, catalogs, tables, deployments and their job instances.

Generation and every change are driven by one seeded random generator, so the same seed and the
same sequence of `advance()` calls always give the same lineage.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

# catalog name -> (connector, databases)
CATALOGS: dict[str, tuple[str, list[str]]] = {
    "paimon": ("paimon", ["paimon-ods", "paimon-dwd"]),
    "hive": ("hive", ["warehouse"]),
    "mysql_cdc": ("mysql-cdc", ["orders_db", "users_db"]),
    "kafka": ("kafka", ["events"]),
}
TEMP_CATALOG, TEMP_DATABASE = "default_catalog", "default_database"
COLUMN_TYPES = ["STRING", "BIGINT", "INT", "DOUBLE", "DECIMAL(18, 2)", "TIMESTAMP(3)", "BOOLEAN"]
NATIVE_TYPES = {
    "STRING": "varchar",
    "BIGINT": "bigint",
    "INT": "int",
    "DOUBLE": "double",
    "DECIMAL(18, 2)": "decimal(18,2)",
    "TIMESTAMP(3)": "datetime(3)",
    "BOOLEAN": "tinyint(1)",
}
EXTERNAL_SYSTEMS = ["kafka://broker-1:9092/clickstream", "oss://bucket/landing/", "sls://logs/app"]
BASE_TIME_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class WorldSize:
    """How big the generated workspace is."""

    namespaces: int = 2
    deployments_per_namespace: int = 6
    tables_per_namespace: int = 12
    columns: tuple[int, int] = (3, 8)
    sources_per_job: tuple[int, int] = (1, 3)
    temporary_fraction: float = 0.3
    external_fraction: float = 0.2
    no_job_fraction: float = 0.1

    @classmethod
    def benchmark(cls) -> WorldSize:
        """About 1,000 deployments, 80,000 columns and 45,000 column edges."""
        return cls(
            namespaces=2,
            deployments_per_namespace=500,
            tables_per_namespace=1000,
            columns=(20, 60),
            sources_per_job=(1, 2),
            temporary_fraction=0.1,
            external_fraction=0.1,
            no_job_fraction=0.0,
        )


@dataclass
class SimColumn:
    id: str
    name: str
    type: str
    nullable: bool
    description: str
    created_at: int  # epoch seconds or milliseconds, as the real API mixes them


@dataclass
class SimTable:
    id: str
    catalog: str
    database: str
    name: str
    connector: str
    temporary: bool
    with_: dict[str, Any]
    properties: dict[str, Any]
    columns: list[SimColumn]

    @property
    def qualified_name(self) -> str:
        return f"{self.catalog}.{self.database}.{self.name}"


@dataclass
class SimJob:
    id: str
    created_at_ms: int
    status: str = "RUNNING"
    ended_at_ms: int | None = None  # set once it is no longer running


@dataclass
class SimDeployment:
    id: str
    name: str
    namespace: str
    created_at_ms: int
    sources: list[str]  # table IDs
    sink: str  # table ID
    temporary: SimTable | None = None
    external_source: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    jobs: list[SimJob] = field(default_factory=list)
    # How this deployment's lineage names its edge endpoints: "id", "name" or "mixed".
    endpoint_style: str = "id"

    @property
    def current_job(self) -> SimJob | None:
        return max(self.jobs, key=lambda j: j.created_at_ms) if self.jobs else None


@dataclass
class SimNamespace:
    name: str
    tables: dict[str, SimTable] = field(default_factory=dict)
    deployments: dict[str, SimDeployment] = field(default_factory=dict)


class World:
    """A generated workspace whose lineage changes each time `advance()` is called."""

    def __init__(
        self, workspace_id: str = "sim-workspace", *, seed: int = 7, size: WorldSize | None = None
    ) -> None:
        self.workspace_id = workspace_id
        self.size = size or WorldSize()
        self.tick = 0
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        # Job status changes draw from their own generator: the lineage a seed gives, and its
        # changes, stay what they were before statuses changed at all.
        self._status_rng = random.Random(seed + 1)
        self._ids = 0
        self._restarts = 0
        self.namespaces: dict[str, SimNamespace] = {}
        for index in range(self.size.namespaces):
            name = "default-namespace" if index == 0 else f"namespace-{index}"
            self.namespaces[name] = self._generate_namespace(name)

    # -- generation --------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids:06d}-{self._rng.randrange(16**6):06x}"

    def _now_ms(self) -> int:
        return BASE_TIME_MS + self.tick * 3_600_000 + self._ids

    def _generate_namespace(self, name: str) -> SimNamespace:
        ns = SimNamespace(name)
        for index in range(self.size.tables_per_namespace):
            table = self._generate_table(index)
            ns.tables[table.id] = table
        for _ in range(self.size.deployments_per_namespace):
            deployment = self._generate_deployment(ns)
            ns.deployments[deployment.id] = deployment
        return ns

    def _generate_table(self, index: int, temporary: bool = False) -> SimTable:
        rng = self._rng
        if temporary:
            catalog, database, connector = TEMP_CATALOG, TEMP_DATABASE, "datagen"
            name = rng.choice(["tmp_enriched", "tmp_dedup", "tmp_window"])
        else:
            catalog = rng.choice(sorted(CATALOGS))
            connector, databases = CATALOGS[catalog]
            database = rng.choice(databases)
            name = f"{rng.choice(['orders', 'users', 'events', 'payments', 'items'])}_{index}"
        count = rng.randint(*self.size.columns)
        columns = [self._generate_column(i) for i in range(count)]
        table_id = self.new_id("t")
        return SimTable(
            id=table_id,
            catalog=catalog,
            database=database,
            name=name,
            connector=connector,
            temporary=temporary,
            with_=self._free_form("with") | connector_credentials(connector, table_id),
            properties=self._free_form("prop"),
            columns=columns,
        )

    def _generate_column(self, index: int) -> SimColumn:
        rng = self._rng
        column_type = rng.choice(COLUMN_TYPES)
        created = BASE_TIME_MS // 1000 + rng.randrange(10**6)
        return SimColumn(
            id=self.new_id("c"),
            name=f"col_{index}_{rng.choice(['id', 'amount', 'ts', 'name'])}",
            type=column_type,
            nullable=rng.random() < 0.7,
            description=f"column {index}",
            created_at=created * 1000 if rng.random() < 0.5 else created,
        )

    def _free_form(self, prefix: str) -> dict[str, Any]:
        rng = self._rng
        return {
            f"{prefix}.mode": rng.choice(["append", "upsert"]),
            f"{prefix}.parallelism": rng.randint(1, 8),
            f"{prefix}.ratio": round(rng.random(), 3),
            f"{prefix}.enabled": rng.random() < 0.5,
            f"{prefix}.tags": ["a", rng.randint(1, 3)],
        }

    def _generate_deployment(self, ns: SimNamespace) -> SimDeployment:
        rng = self._rng
        table_ids = sorted(ns.tables)
        sink = rng.choice(table_ids)
        candidates = [t for t in table_ids if t != sink]
        sources = rng.sample(
            candidates, min(len(candidates), rng.randint(*self.size.sources_per_job))
        )
        deployment = SimDeployment(
            id=self.new_id("d"),
            name=f"job-{len(ns.deployments)}-{ns.tables[sink].name}",
            namespace=ns.name,
            created_at_ms=self._now_ms(),
            sources=sources,
            sink=sink,
            properties={
                "owner": rng.choice(["ana", "bo", "chen"]),
                "parallelism": rng.randint(1, 8),
                "checkpointing": rng.random() < 0.8,
            },
            endpoint_style=rng.choice(["id", "name", "mixed"]),
        )
        if rng.random() < self.size.temporary_fraction:
            deployment.temporary = self._generate_table(0, temporary=True)
        if rng.random() < self.size.external_fraction:
            deployment.external_source = rng.choice(EXTERNAL_SYSTEMS)
        if rng.random() >= self.size.no_job_fraction:
            for _ in range(rng.randint(1, 3)):  # older instances are cancelled restarts
                self._add_job(deployment)
        return deployment

    def _add_job(self, deployment: SimDeployment, job_id: str | None = None) -> SimJob:
        for old in deployment.jobs:
            if old.status == "RUNNING":
                old.status, old.ended_at_ms = "CANCELLED", self._now_ms()
        job = SimJob(job_id or self.new_id("job-"), self._now_ms() + len(deployment.jobs))
        deployment.jobs.append(job)
        return job

    def set_status(self, deployment: SimDeployment, status: str) -> None:
        """The deployment's current job reaches `status` (FAILED, CANCELLED, FINISHED, ...)."""
        job = deployment.current_job
        assert job is not None, f"deployment {deployment.id} has no job"
        job.status = status
        job.ended_at_ms = None if status == "RUNNING" else self._now_ms()

    def _change_a_status(self) -> str:
        """A running job fails or is cancelled, or a stopped one is restarted as a new job."""
        rng = self._status_rng
        ns = self.namespaces[rng.choice(sorted(self.namespaces))]
        with_jobs = [ns.deployments[d] for d in sorted(ns.deployments) if ns.deployments[d].jobs]
        if not with_jobs:
            return ""
        deployment = rng.choice(with_jobs)
        job = deployment.current_job
        assert job is not None
        if job.status == "RUNNING":
            status = rng.choice(["FAILED", "FAILED", "CANCELLED"])
            self.set_status(deployment, status)
            return f"{ns.name}: {deployment.name} job {job.id} {status}"
        self._restarts += 1
        new = self._add_job(deployment, f"job-r{self._restarts:05d}-{rng.randrange(16**6):06x}")
        return f"{ns.name}: {deployment.name} restarted after {job.status} as {new.id}"

    # -- change over time --------------------------------------------------------------------

    def advance(self, changes: int | None = None) -> list[str]:
        """Apply a round of random changes; returns what changed, for logs and tests."""
        with self.lock:
            self.tick += 1
            count = changes if changes is not None else max(1, self.deployment_count() // 20)
            mutations = [self._mutate() for _ in range(count)]
            if self._status_rng.random() < 0.5:
                mutations.append(self._change_a_status())
            return [m for m in mutations if m]

    def deployment_count(self) -> int:
        return sum(len(ns.deployments) for ns in self.namespaces.values())

    def _mutate(self) -> str:
        rng = self._rng
        ns = self.namespaces[rng.choice(sorted(self.namespaces))]
        kind = rng.choice(
            [
                "column_type",
                "add_column",
                "drop_column",
                "with",
                "job_properties",
                "drop_source",
                "add_source",
                "restart",
                "delete_deployment",
                "add_deployment",
            ]
        )
        if kind == "add_deployment" or not ns.deployments:
            deployment = self._generate_deployment(ns)
            ns.deployments[deployment.id] = deployment
            return f"{ns.name}: deployment {deployment.id} added"
        deployment = ns.deployments[rng.choice(sorted(ns.deployments))]
        table = ns.tables[deployment.sink]
        if kind == "column_type" and table.columns:
            column = rng.choice(table.columns)
            column.type = rng.choice([t for t in COLUMN_TYPES if t != column.type])
            return f"{ns.name}: {table.qualified_name}.{column.name} type -> {column.type}"
        if kind == "add_column":
            table.columns.append(self._generate_column(len(table.columns)))
            return f"{ns.name}: {table.qualified_name} column added"
        if kind == "drop_column" and len(table.columns) > 1:
            column = table.columns.pop(rng.randrange(len(table.columns)))
            return f"{ns.name}: {table.qualified_name}.{column.name} dropped"
        if kind == "with":
            table.with_["with.parallelism"] = rng.randint(9, 99)
            return f"{ns.name}: {table.qualified_name} with changed"
        if kind == "job_properties":
            deployment.properties["parallelism"] = rng.randint(9, 99)
            return f"{ns.name}: {deployment.name} properties changed"
        if kind == "drop_source" and len(deployment.sources) > 1:
            deployment.sources.pop()
            return f"{ns.name}: {deployment.name} lost a source"
        if kind == "add_source":
            extra = [
                t for t in sorted(ns.tables) if t not in deployment.sources and t != deployment.sink
            ]
            if extra:
                deployment.sources.append(rng.choice(extra))
                return f"{ns.name}: {deployment.name} gained a source"
        if kind == "restart":
            job = self._add_job(deployment)
            return f"{ns.name}: {deployment.name} restarted as {job.id}"
        if kind == "delete_deployment":
            del ns.deployments[deployment.id]
            return f"{ns.name}: deployment {deployment.name} deleted"
        return ""

    # -- what the API returns ------------------------------------------------------------------

    def find_job(self, namespace: str, job_id: str) -> SimDeployment | None:
        ns = self.namespaces.get(namespace)
        if ns is None:
            return None
        for deployment in ns.deployments.values():
            if any(job.id == job_id for job in deployment.jobs):
                return deployment
        return None

    def lineage(
        self, namespace: str, deployment: SimDeployment, job_id: str, column_level: bool = True
    ) -> dict[str, Any]:
        """The LineageInfo of a job, in the API's wire format (nodes, edges, jobInfos)."""
        ns = self.namespaces[namespace]
        sources = [ns.tables[t] for t in deployment.sources if t in ns.tables]
        sink = ns.tables[deployment.sink]
        tables = [*sources, sink] + ([deployment.temporary] if deployment.temporary else [])
        table_edges: list[dict[str, Any]] = []
        column_edges: list[dict[str, Any]] = []
        upstream = sources if deployment.temporary is None else [deployment.temporary]
        if deployment.temporary is not None:
            for source in sources:
                self._link(
                    deployment, job_id, source, deployment.temporary, table_edges, column_edges
                )
        for source in upstream:
            self._link(deployment, job_id, source, sink, table_edges, column_edges)
        if deployment.external_source:
            table_edges.append(
                {
                    "source": deployment.external_source,
                    "destination": self._endpoint(deployment, sink, 0),
                    "jobId": job_id,
                }
            )
            if sink.columns:
                column_edges.append(
                    {
                        "source": f"{deployment.external_source}#payload",
                        "destination": sink.qualified_name + "." + sink.columns[0].name,
                        "jobId": job_id,
                    }
                )
        return {
            "nodes": _nodes(tables),
            "edges": {
                "tableLineage": table_edges,
                "columnLineage": column_edges if column_level else [],
            },
            "jobInfos": [
                {
                    "id": job_id + ("\n" if len(job_id) % 2 else ""),
                    "properties": dict(deployment.properties),
                }
            ],
        }

    def _endpoint(
        self, deployment: SimDeployment, table: SimTable, salt: int, column: SimColumn | None = None
    ) -> str:
        by_id = deployment.endpoint_style == "id" or (
            deployment.endpoint_style == "mixed" and salt % 2 == 0
        )
        if column is None:
            return table.id if by_id else table.qualified_name
        return column.id if by_id else f"{table.qualified_name}.{column.name}"

    def _link(
        self,
        deployment: SimDeployment,
        job_id: str,
        source: SimTable,
        sink: SimTable,
        table_edges: list[dict[str, Any]],
        column_edges: list[dict[str, Any]],
    ) -> None:
        table_edges.append(
            {
                "source": self._endpoint(deployment, source, 1),
                "destination": self._endpoint(deployment, sink, 2),
                "jobId": job_id,
            }
        )
        if not source.columns:
            return
        for index, column in enumerate(sink.columns):
            origin = source.columns[index % len(source.columns)]
            column_edges.append(
                {
                    "source": self._endpoint(deployment, source, index, origin),
                    "destination": self._endpoint(deployment, sink, index + 1, column),
                    "jobId": job_id,
                }
            )


def _nodes(tables: list[SimTable]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, bool, str], list[SimTable]] = {}
    for table in tables:
        groups.setdefault(
            (table.catalog, table.database, table.temporary, table.connector), []
        ).append(table)
    nodes = []
    for (catalog, database, temporary, connector), members in sorted(groups.items()):
        unique = list({t.id: t for t in members}.values())
        nodes.append(
            {
                "id": f"node-{catalog}-{database}",
                "catalogName": catalog,
                "databaseName": database,
                "isTemporary": temporary,
                "connector": connector,
                "tables": [_table_json(t) for t in unique],
            }
        )
    return nodes


def _table_json(table: SimTable) -> dict[str, Any]:
    return {
        "id": table.id,
        "tableName": table.name,
        "with": dict(table.with_),
        "properties": dict(table.properties),
        "columns": [
            {
                "id": c.id,
                "columnName": c.name,
                "nullable": c.nullable,
                "description": c.description,
                "columnType": c.type,
                "columnNativeType": NATIVE_TYPES.get(c.type, c.type.lower()),
                "createdAt": c.created_at,
                "modifiedAt": c.created_at,
                "creator": "userA",
                "modifier": "userA",
            }
            for c in table.columns
        ],
    }


def connector_credentials(connector: str, table_id: str) -> dict[str, Any]:
    """Connector options holding credentials, as real Flink SQL tables have them (the exporter
    must never store them). Derived from the table ID, so seeded worlds stay as they were.
    """
    if connector == "mysql-cdc":
        return {"hostname": "mysql.internal", "username": "flink", "password": f"pw-{table_id}"}
    if connector == "kafka":
        jaas = f'PlainLoginModule required username="flink" password="pw-{table_id}";'
        return {"properties.sasl.jaas.config": jaas}
    if connector == "hive":
        return {"password": "${secret_values.hive_password}"}  # a reference, not a secret
    return {}
