"""Export Alibaba Cloud Realtime Compute for Apache Flink lineage into SQL tables with history."""

__version__ = "0.1.0"
